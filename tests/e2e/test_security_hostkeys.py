"""Host keys through the real CLI: trust on first use, a changed key, strict mode.

``tests/integration/test_hostkeys.py`` covers the known_hosts file format at the transport
level; this module checks what the operator sees from ``collect``: the recorded file, the
error line naming the device and both fingerprints, the exit codes, and that a refused
device is never logged in to (its journal has no login).
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest
from helpers import Run

from collector.ssh.factory import TRANSPORTS
from collector.ssh.hostkeys import host_entry_name
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "hostkeys-cli-Pw-0193"
SCENARIO = {
    "defaults": {"username": "admin", "records": {"generate": {"count": 5, "seed": 3}}},
    "devices": [{"name": "edge-a"}, {"name": "edge-b", "layout": "firewall"}],
}


def errors_of(run: Run) -> dict[str, dict[str, str] | None]:
    return {name: device["error"] for name, device in run.devices().items()}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Every test runs with each transport: same expected results."""
    return str(request.param)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetThread]:
    running = start_fleet(SCENARIO, password=PASSWORD, inventory=tmp_path / "inventory")
    yield running
    running.stop()


def collect(fleet: FleetThread, transport: str, known_hosts: Path, *args: str) -> Run:
    return helpers.collect(
        fleet.inventory_path,
        known_hosts.parent,
        *("--known-hosts", str(known_hosts), "--no-store", "--format", "json"),
        *("--transport", transport, *args),
        password=PASSWORD,
        env={"NO_COLOR": "1"},
    )


def known_line(state: DeviceState) -> str:
    public = state.host_key.export_public_key("openssh").decode().split()
    return f"{host_entry_name(state.host, state.port)} {public[0]} {public[1]}"


def fingerprint(state: DeviceState) -> str:
    return str(state.host_key.get_fingerprint("sha256"))


def logged_in(state: DeviceState) -> bool:
    return any(entry.kind in ("login", "auth-failed") for entry in state.journal())


def test_first_use_records_each_key_once_in_a_private_file(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"
    run = collect(fleet, transport, known_hosts, "-v")
    assert run.code == 0, run.stderr
    assert "on first use" in run.stderr
    lines = known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted(known_line(state) for state in fleet.devices)
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    # A second run trusts the recorded keys and adds nothing.
    again = collect(fleet, transport, known_hosts)
    assert again.code == 0, again.stderr
    assert known_hosts.read_text().splitlines() == lines


def test_changed_key_is_refused_naming_the_device_and_both_fingerprints(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    assert collect(fleet, transport, known_hosts).code == 0
    before = known_hosts.read_bytes()
    old = fingerprint(fleet.device("edge-b"))
    replaced = fleet.update_device("edge-b", host_key_seed="swapped-chassis")
    new = fingerprint(replaced)
    assert new != old
    for state in fleet.devices:
        state.clear_journal()

    metrics = tmp_path / "ike.prom"
    run = collect(fleet, transport, known_hosts, "--prometheus", str(metrics))
    assert run.code == 1  # edge-a still read
    error = errors_of(run)["edge-b"]
    # Counted apart from unknown keys and ordinary failures: its own kind, an error line.
    assert error is not None and error["kind"] == "host-key-changed"
    for text in (error["message"], run.stderr):
        assert "edge-b" in text and old in text and new in text and "CHANGED" in text
    assert f"collect-ike-offline: error: edge-b: host-key-changed: {error['message']}" in (
        run.stderr
    )
    assert (
        "collect-ike-offline: error: host key CHANGED on 1 device (edge-b): possible"
        " interception; nothing was sent to them." in run.stderr
    )
    assert 'ike_offline_device_errors{kind="host-key-changed"} 1.0' in metrics.read_text()
    assert 'ike_offline_device_errors{kind="host-key"} 0.0' in metrics.read_text()
    assert "ssh-keygen -R" in error["message"]
    assert errors_of(run)["edge-a"] is None
    assert not logged_in(replaced), "credentials were offered to an impostor"
    assert known_hosts.read_bytes() == before, "the changed key must not be recorded"

    alone = collect(fleet, transport, known_hosts, "--host", "edge-b")
    assert alone.code == 3
    assert errors_of(alone)["edge-b"] is not None


def test_strict_refuses_unknown_keys_before_login(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    run = collect(fleet, transport, known_hosts, "--strict-host-keys")
    assert run.code == 3
    for state in fleet.devices:
        error = errors_of(run)[state.name]
        assert error is not None and error["kind"] == "host-key"
        assert state.name in error["message"] and fingerprint(state) in error["message"]
        assert "strict" in error["message"]
        assert not logged_in(state)
    assert not known_hosts.exists() or known_hosts.read_text() == ""


def test_strict_accepts_keys_recorded_by_an_earlier_run(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    assert collect(fleet, transport, known_hosts, "--host", "edge-a").code == 0
    run = collect(fleet, transport, known_hosts, "--strict-host-keys")
    assert run.code == 1
    errors = errors_of(run)
    assert errors["edge-a"] is None
    assert errors["edge-b"] is not None and errors["edge-b"]["kind"] == "host-key"


def test_hashed_names_keep_the_fleet_out_of_the_file_and_still_match(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    run = collect(fleet, transport, known_hosts, "--hash-known-hosts")
    assert run.code == 0, run.stderr
    text = known_hosts.read_text()
    lines = text.splitlines()
    assert len(lines) == len(fleet.devices)
    assert all(line.startswith("|1|") for line in lines)
    for state in fleet.devices:
        assert state.host not in text  # no address in clear
        assert known_line(state).split(" ", 1)[1] in text  # the key itself is recorded
    # The hashed entries are the record: a strict run accepts every device, adds nothing.
    strict = collect(fleet, transport, known_hosts, "--strict-host-keys")
    assert strict.code == 0, strict.stderr
    assert known_hosts.read_text() == text
