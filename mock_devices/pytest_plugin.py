"""pytest fixtures that start mock Huawei fleets for a test and stop them afterwards.

``mock_fleet`` is a factory: call it with a shipped scenario name, a YAML path or a dict::

    def test_collect(mock_fleet):
        fleet = mock_fleet("demo")                  # or mock_fleet({"devices": [...]}, count=5)
        device = fleet.device("ar-bj-01")
        device.host, device.port, device.username, device.password
        fleet.inventory_path                        # hosts.yaml in tmp_path, no password in it
        device.add_deletions(3); device.journal()

``variants_fleet`` is the shipped ``variants`` scenario already running: one device per device
variant (HA timestamp lines, ``display clock`` styles and DST, NE40E slots, multi-SPU firewall,
extra reasons, row-like noise), with each record's true UTC instant for assertions::

    def test_dst_device(variants_fleet):
        device = variants_fleet.device("ar-clock-dst")
        device.records_utc()                        # ground truth, newest first
        variants_fleet.inventory_path, variants_fleet.password

``mock_fleet_process`` starts the ``mock-huawei-fleet`` console script and waits for READY.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mock_devices.fleet import FleetThread, start_fleet
from mock_devices.process import FleetProcess, start_fleet_process
from mock_devices.server import BindPlan

FleetFactory = Callable[..., FleetThread]


@pytest.fixture
def mock_fleet(tmp_path: Path) -> Iterator[FleetFactory]:
    """Factory fixture: ``mock_fleet(scenario="demo", count=None, password=None, journal=False)``.

    Each call starts a fleet on 127.0.0.1 (a free port per device) in a background thread,
    writes its inventory to ``tmp_path/fleet-<n>/hosts.yaml`` and returns the running
    ``FleetThread``; every fleet is stopped when the test ends.
    """
    running: list[FleetThread] = []

    def start(
        scenario: str | Path | Mapping[str, Any] = "demo",
        count: int | None = None,
        password: str | None = None,
        journal: bool = False,
        bind: BindPlan | None = None,
    ) -> FleetThread:
        directory = tmp_path / f"fleet-{len(running) + 1}"
        fleet = start_fleet(
            scenario,
            count=count,
            password=password,
            bind=bind,
            journal_dir=directory / "journal" if journal else None,
            inventory=directory,
        )
        running.append(fleet)
        return fleet

    yield start
    for fleet in running:
        fleet.stop()


@pytest.fixture
def variants_fleet(mock_fleet: FleetFactory) -> FleetThread:
    """The ``variants`` scenario on 127.0.0.1, inventory in ``tmp_path/fleet-1/hosts.yaml``
    (no ``data.timezone`` for the ``ar-clock-*`` devices), stopped when the test ends."""
    return mock_fleet("variants")


@pytest.fixture
def mock_fleet_process(tmp_path: Path) -> Iterator[Callable[..., FleetProcess]]:
    """Factory fixture: ``mock_fleet_process(args=[...], password=...)`` runs the console
    script until READY; any process still running at the end of the test is killed."""
    started: list[FleetProcess] = []

    def start(args: list[str] | None = None, password: str = "mock-password") -> FleetProcess:
        directory = tmp_path / f"fleet-process-{len(started) + 1}"
        directory.mkdir(parents=True, exist_ok=True)
        handle = start_fleet_process(directory, list(args or []), password)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop(signal.SIGKILL)
