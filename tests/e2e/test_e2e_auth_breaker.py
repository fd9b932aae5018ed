"""A wrong password on a fleet, end to end: the real CLI against mock devices over SSH.

The mock journals every refused login, so the test counts what the account's AAA server
would see: ``--max-auth-failures`` refused logins in the whole run (threads and forked
``--processes`` children share one breaker), the other devices not tried (``skipped-auth``),
one error line saying what to check, and exit 3 (no device read).

The breaker's gate is taken right before authenticating: devices that accept TCP and never
send an SSH banner hold no slot, so the others log in (or are refused) while those are
still timing out. Shown by the order of what happened (the mock's journal of logins, the
history's end of each attempt), not by seconds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import asyncssh
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


def silent_first(silent: int, answering: int) -> dict[str, Any]:
    """``silent`` devices that accept TCP and never send a banner, first in the inventory
    (``a-silent-N``), then ``answering`` ones (``r-NNN``)."""
    spec = scenario(answering)
    spec["devices"][:0] = [
        {"name": f"a-silent-{number}", "faults": ["hang_no_banner"]} for number in range(silent)
    ]
    return spec


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko", "napalm"])
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


def collect_all_at_once(fleet: FleetThread, tmp_path: Path, password: str, transport: str) -> Run:
    """Every device started at once (a worker each), one attempt, a connect timeout long
    enough for the answering devices to be done before the silent ones time out."""
    workers = str(len(fleet.devices))
    return collect(
        fleet,
        tmp_path,
        password,
        *("--transport", transport, "--workers", workers, "--retries", "0"),
        *("--connect-timeout", "8"),
    )


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko", "napalm"])
def test_silent_devices_hold_no_login_slot(tmp_path: Path, transport: str) -> None:
    """Three devices that never send a banner, first in the inventory, beside five that
    answer: the five log in while the three are still waiting for their banner (before,
    the three held the breaker's three slots for their whole connect timeout)."""
    spec = silent_first(3, 5)
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect_all_at_once(fleet, tmp_path, PASSWORD, transport)
        logins = helpers.journal_times(fleet, "login")
    assert result.code == 1, result.stderr
    errors = {name: device["error"] for name, device in result.devices().items()}
    silent = [name for name in errors if name.startswith("a-silent-")]
    answering = [name for name in errors if name.startswith("r-")]
    assert [errors[name] for name in answering] == [None] * 5
    assert [errors[name]["kind"] for name in silent] == [ErrorKind.TIMEOUT.value] * 3
    ended = helpers.attempts_ended(tmp_path / "history.sqlite3")
    first_silent_end = min(ended[name] for name in silent)
    assert all(len(logins[name]) == 1 for name in answering), logins
    assert all(logins[name] == [] for name in silent), logins
    # Every answering device logged in before any silent device's attempt ended.
    late = [name for name in answering if logins[name][0] >= first_silent_end]
    assert late == [], (late, first_silent_end)


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
def test_silent_devices_never_count_as_refused_logins(tmp_path: Path, transport: str) -> None:
    """A wrong password, three silent devices first: still exactly three refused logins,
    refused while the silent ones were still waiting for a banner (they took no slot); the
    silent devices are ``timeout`` (they started before the breaker opened), not
    ``skipped-auth``."""
    spec = silent_first(3, 9)
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect_all_at_once(fleet, tmp_path, WRONG, transport)
        refusals = helpers.journal_times(fleet, "auth-failed")
    assert result.code == 3, result.stderr
    kinds = {name: device["error"]["kind"] for name, device in result.devices().items()}
    silent = [name for name in kinds if name.startswith("a-silent-")]
    assert [kinds[name] for name in silent] == [ErrorKind.TIMEOUT.value] * 3
    others = [kind for name, kind in kinds.items() if name not in silent]
    assert sorted(others) == sorted([ErrorKind.AUTH.value] * 3 + [ErrorKind.SKIPPED_AUTH.value] * 6)
    refused = sorted(moment for moments in refusals.values() for moment in moments)
    assert len(refused) == 3
    ended = helpers.attempts_ended(tmp_path / "history.sqlite3")
    assert refused[-1] < min(ended[name] for name in silent)
    assert "3 logins as 'admin' were refused before any succeeded" in result.stderr


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
def test_a_device_waiting_at_the_gate_says_so(tmp_path: Path, transport: str) -> None:
    """``--max-auth-failures 1``: one device logs in and answers slowly (2.5 s a command,
    three commands: the user is proven only when its attempt ends); the other, connected,
    waits at the gate without sending a password until its connect timeout, and its
    timeout names the wait."""
    spec = scenario(2)
    spec["defaults"]["latency_ms"] = 2500
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = collect(
            fleet,
            tmp_path,
            PASSWORD,
            *("--transport", transport, "--workers", "2", "--retries", "0"),
            "--clock-from-device",
            *("--connect-timeout", "5", "--max-auth-failures", "1"),
        )
        logins = helpers.journal_times(fleet, "login")
        refusals = helpers.journal_times(fleet, "auth-failed")
    assert result.code == 1, result.stderr
    errors = {name: device["error"] for name, device in result.devices().items()}
    read = [name for name, error in errors.items() if error is None]
    waited = [name for name, error in errors.items() if error is not None]
    assert len(read) == 1 and len(waited) == 1, errors
    assert errors[waited[0]] == {
        "kind": ErrorKind.TIMEOUT.value,
        "message": "no prompt within 5 s of connecting (--connect-timeout;"
        " during waiting for a login as 'admin' to succeed)",
    }
    # The one that waited sent no password: no login, no refusal in its journal.
    assert logins[waited[0]] == [] and refusals[waited[0]] == []
    assert len(logins[read[0]]) == 1


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
def test_a_refused_key_counts_as_a_refused_login(tmp_path: Path, transport: str) -> None:
    """Public-key logins pass the same gate (asyncssh asks the client for its keys; paramiko
    authenticates in one place for keys and passwords): a key no device accepts is offered
    to three devices in the whole run, the rest are not tried."""
    ours, theirs = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(2))
    key_file = tmp_path / "id_ed25519"
    ours.write_private_key(key_file)
    key_file.chmod(0o600)
    spec = scenario(8)
    spec["defaults"]["authorized_keys"] = [theirs.export_public_key().decode().strip()]
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        result = helpers.collect(
            fleet.inventory_path,
            tmp_path,
            *("--format", "json", "--transport", transport, "--key-file", str(key_file)),
            password=None,
            timeout=20,
            env={"NO_COLOR": "1"},
        )
        refused = [
            entry.text
            for device in fleet.devices
            for entry in device.journal()
            if entry.kind == "auth-failed"
        ]
    assert result.code == 3, result.stderr
    assert refused == ["publickey user=admin"] * 3
    kinds = [device["error"]["kind"] for device in result.devices().values()]
    assert sorted(kinds) == sorted([ErrorKind.AUTH.value] * 3 + [ErrorKind.SKIPPED_AUTH.value] * 5)
