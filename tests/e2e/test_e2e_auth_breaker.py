"""A wrong password on a fleet, end to end: the real CLI against mock devices over SSH.

The mock journals every refused login, so the test counts what the account's AAA server
would see: ``--max-auth-failures`` refused logins in the whole run (threads and forked
``--processes`` children share one breaker), the other devices not tried (``skipped-auth``),
one error line saying what to check, and exit 3 (no device read).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import Run

from collector.core.records import ErrorKind
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "breaker-Right-Pw-77"
WRONG = "breaker-Wrong-Pw-13"


def scenario(count: int) -> dict[str, Any]:
    return {
        "defaults": {"username": "admin", "records": {"generate": {"count": 5, "seed": 3}}},
        "devices": [{"name": f"r-{number:03d}"} for number in range(count)],
    }


def collect(fleet: FleetThread, tmp_path: Path, password: str, *args: str) -> Run:
    return helpers.collect(
        fleet.inventory_path,
        tmp_path,
        *("--format", "json", *args),
        password=password,
        timeout=20,
        env={"NO_COLOR": "1"},
    )


def refused_logins(fleet: FleetThread) -> int:
    return sum(
        1 for device in fleet.devices for entry in device.journal() if entry.kind == "auth-failed"
    )


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
@pytest.mark.parametrize(("count", "processes"), [(12, "1"), (60, "2")])
def test_wrong_password_stops_after_three_refused_logins(
    tmp_path: Path, count: int, processes: str, transport: str
) -> None:
    """The breaker gates the thread pool (netmiko) and the event loop (asyncssh) alike."""
    with start_fleet(scenario(count), password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect(fleet, tmp_path, WRONG, "--processes", processes, "--transport", transport)
        refused = refused_logins(fleet)
    assert result.code == 3, result.stderr
    # What the AAA server sees: three refused logins for the whole run, not one per device.
    assert refused == 3
    kinds = [device["error"]["kind"] for device in json.loads(result.stdout)["devices"]]
    assert kinds.count(ErrorKind.AUTH.value) == 3
    assert kinds.count(ErrorKind.SKIPPED_AUTH.value) == count - 3
    # One line says what happened and what to check; the skipped devices get no line each.
    lines = [line for line in result.stderr.splitlines() if "were refused before" in line]
    assert lines == [
        "collect-ike-offline: error: 3 logins as 'admin' were refused before any succeeded:"
        f" stopped logging in as 'admin' ({count - 3} devices not tried, skipped-auth) so the"
        " account does not get locked; check the password and the account (locked? expired?),"
        " then run again"
    ]
    assert result.stderr.count(": auth: ") == 3
    assert ": skipped-auth: " not in result.stderr
    with sqlite3.connect(tmp_path / "history.sqlite3") as connection:
        stored = dict(connection.execute("SELECT name, last_error_kind FROM devices").fetchall())
    connection.close()
    assert sorted(stored.values()).count(ErrorKind.SKIPPED_AUTH.value) == count - 3


def test_one_success_proves_the_password(tmp_path: Path) -> None:
    """A device with its own (wrong) account does not stop the others once a login worked."""
    spec = scenario(8)
    for entry in spec["devices"][:4]:
        entry["faults"] = ["wrong_credentials"]
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect(fleet, tmp_path, PASSWORD, "--workers", "1")
    assert result.code == 3, result.stderr  # none read: skipped devices are failures
    kinds = [device["error"] for device in json.loads(result.stdout)["devices"]]
    # Workers 1, inventory order: three refusals open the breaker before any success...
    assert [error["kind"] if error else None for error in kinds] == [
        "auth",
        "auth",
        "auth",
        "skipped-auth",
        "skipped-auth",
        "skipped-auth",
        "skipped-auth",
        "skipped-auth",
    ]
    # ...but with a success first, later refusals are the device's own problem.
    spec = scenario(8)
    for entry in spec["devices"][1:5]:
        entry["faults"] = ["wrong_credentials"]
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv2") as fleet:
        result = collect(fleet, tmp_path, PASSWORD, "--workers", "1")
    assert result.code == 1, result.stderr
    kinds = [device["error"] for device in json.loads(result.stdout)["devices"]]
    assert [error["kind"] if error else None for error in kinds] == [
        None,
        "auth",
        "auth",
        "auth",
        "auth",
        None,
        None,
        None,
    ]
    assert "were refused before" not in result.stderr


def test_max_auth_failures_zero_tries_every_device(tmp_path: Path) -> None:
    with start_fleet(scenario(6), password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect(fleet, tmp_path, WRONG, "--max-auth-failures", "0")
        refused = refused_logins(fleet)
    assert result.code == 3, result.stderr
    assert refused == 6
    assert "were refused before" not in result.stderr
