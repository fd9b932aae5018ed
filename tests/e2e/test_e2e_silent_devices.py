"""Silent devices do not hold back the others, end to end (asyncssh): the real CLI against
mock devices over SSH.

A device that accepts TCP and never sends an SSH banner (a hung SSH server) used to keep
one of the ``--workers`` sessions for its whole connect timeout, so a fleet with a few of
them first in line waited for them. Now a session with no banner after
``BANNER_PATIENCE`` (2 s) gives its place to the next device and waits aside, while the
sessions that really work (key exchange, login, commands) stay at ``--workers``. Shown by
the order of what happened (the mock's journal, the history's end of each attempt), not by
seconds.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import Run, assert_matches_mock, attempts_ended, collect, journal_times

from collector.core.records import ErrorKind
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "silent-Devices-Pw-31"
WORKERS = 2


def silent_first(silent: int, answering: int) -> dict[str, Any]:
    """``silent`` devices that never send a banner (``a-silent-N``) first, then
    ``answering`` ones (``r-N``)."""
    return {
        "defaults": {"username": "admin", "records": {"generate": {"count": 4, "seed": 8}}},
        "devices": [
            *({"name": f"a-silent-{n}", "faults": ["hang_no_banner"]} for n in range(silent)),
            *({"name": f"r-{n}"} for n in range(answering)),
        ],
    }


def run(fleet: FleetThread, tmp_path: Path, workers: int) -> Run:
    assert fleet.inventory_path is not None
    return collect(
        fleet.inventory_path,
        tmp_path,
        *("--format", "json", "--transport", "asyncssh", "--workers", str(workers)),
        *("--processes", "1", "--retries", "0", "--connect-timeout", "12"),
        password=PASSWORD,
        timeout=30,
        env={"NO_COLOR": "1"},
    )


def most_at_once(fleet: FleetThread) -> int:
    """The most sessions logged in at the same time, from the mock's journal."""
    edges: list[tuple[datetime, int]] = []
    for device in fleet.devices:
        for entry in device.journal():
            if entry.kind == "login":
                edges.append((entry.time, 1))
            elif entry.kind == "disconnect":
                edges.append((entry.time, -1))
    at_once = most = 0
    for _, step in sorted(edges):  # a disconnect sorts before a login at the same instant
        at_once += step
        most = max(most, at_once)
    return most


def test_silent_devices_first_do_not_hold_back_the_others(tmp_path: Path) -> None:
    with start_fleet(silent_first(2, 4), password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = run(fleet, tmp_path, WORKERS)
        logins = journal_times(fleet, "login")
        at_once = most_at_once(fleet)
        devices = {state.spec.name: state for state in fleet.devices}
    assert result.code == 1, result.stderr
    report = result.devices()
    silent = [name for name in report if name.startswith("a-silent-")]
    answering = [name for name in report if name.startswith("r-")]
    # The silent ones end as they did: a timeout at the connect timeout, nothing sent.
    for name in silent:
        assert report[name]["error"]["kind"] == ErrorKind.TIMEOUT.value
        assert "within 12 s" in report[name]["error"]["message"], report[name]["error"]
        assert logins[name] == []
    # The others are read in full, every one of them while the silent ones still waited
    # for their banner (before, the two silent devices held both sessions for 12 s).
    for name in answering:
        assert report[name]["error"] is None
        assert_matches_mock(report[name], devices[name])
    first_silent_end = min(attempts_ended(tmp_path / "history.sqlite3")[n] for n in silent)
    late = [name for name in answering if logins[name][0] >= first_silent_end]
    assert late == [], (late, first_silent_end)
    # The sessions that log in and run commands stay within --workers.
    assert at_once <= WORKERS


@pytest.mark.parametrize("workers", [1, 6])
def test_answering_devices_alone_keep_within_workers(tmp_path: Path, workers: int) -> None:
    """No silent device: nothing steps aside, and --workers bounds the sessions."""
    with start_fleet(silent_first(0, 6), password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = run(fleet, tmp_path, workers)
        at_once = most_at_once(fleet)
    assert result.code == 0, result.stderr
    assert [device["error"] for device in result.devices().values()] == [None] * 6
    assert 1 <= at_once <= workers
