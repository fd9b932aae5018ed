"""The fault matrix of ``docs/SECURITY.md``, one parametrized case per row.

Each row of :data:`MATRIX` is a mock device fault: the real CLI collects that device alone
(its own SQLite history), and the case checks what the operator sees (error kind and message
shape), the exit code, and what is stored. Two more rows need a run in progress: a device
that vanishes mid-run (its listener and sessions dropped while it answers) and a collector
killed with SIGKILL mid-run (the database stays intact and the next run completes, nothing
lost or doubled). The table in ``docs/SECURITY.md`` is checked against :data:`MATRIX`, and
a 300-device fleet with 10% faulty devices (``slow``) checks the whole picture at scale.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, collect, collector_command, record_key, row_key

from collector.core.records import ErrorKind
from collector.ssh.factory import TRANSPORTS
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread, start_fleet
from mock_devices.server import Fleet

PASSWORD = "fault-matrix-Pw-3381"
TIMEOUT = 4.0
"""Per device and attempt: the hung devices end in ``timeout`` after this."""
DOC = ROOT / "docs" / "SECURITY.md"


@dataclass(frozen=True)
class Case:
    """One row of the matrix."""

    fault: str
    kind: ErrorKind | None
    """The error kind the operator sees (None: the device is read)."""
    message: str
    """A regex the one-line message must match."""
    exit_code: int
    """Exit code of a run over this device alone."""
    stored: str
    """``records``: every deletion stored; ``failure``: the failure, no deletion."""
    spec: tuple[tuple[str, Any], ...] = ()
    """Extra scenario keys of the device."""


_TABLE = "'display ike offline-info'"
MATRIX: tuple[Case, ...] = (
    Case("none", None, "", 0, "records"),
    Case(
        "wrong_credentials", ErrorKind.AUTH, "authentication failed for user 'admin'", 3, "failure"
    ),
    Case(
        "port_closed",
        ErrorKind.UNREACHABLE,
        r"connection refused by 127\.0\.0\.1:\d+",
        3,
        "failure",
    ),
    Case(
        "hang_no_banner",
        ErrorKind.TIMEOUT,
        r"no complete answer within 4 s \(during ",
        3,
        "failure",
    ),
    Case("slow", None, "", 0, "records", (("latency_ms", 400),)),
    Case("very_slow", ErrorKind.TIMEOUT, rf"within 4 s \(during {_TABLE}\)", 3, "failure"),
    Case(
        "drop_mid_output",
        ErrorKind.INCOMPLETE_OUTPUT,
        rf"connection closed by the device during {_TABLE} after \d+ line",
        3,
        "failure",
    ),
    Case("reject_screen_length", None, "", 0, "records", (("page_lines", 10),)),
    Case(
        "command_unsupported",
        ErrorKind.COMMAND_REJECTED,
        rf"{_TABLE} refused: Error: ",
        3,
        "failure",
    ),
    Case(
        "truncated_table",
        ErrorKind.INCOMPLETE_OUTPUT,
        rf"{_TABLE}: .*Current info Num",
        3,
        "failure",
    ),
    Case("garbage_output", ErrorKind.PROTOCOL, rf"unexpected answer to {_TABLE}", 3, "failure"),
    Case("password_change_prompt", None, "", 0, "records"),
    Case("save_prompt", None, "", 0, "records"),
    Case(
        "huge_table",
        ErrorKind.OVERSIZED_OUTPUT,
        rf"{_TABLE}: 'Current info Num' says 60000, more than the 1000 rows one table may hold",
        3,
        "failure",
    ),
    Case(
        "endless_output",
        ErrorKind.OVERSIZED_OUTPUT,
        rf"{_TABLE}: more than 4 MB of output \(the cap is 4 MB\)",
        3,
        "failure",
    ),
    Case("terminal_noise", None, "", 0, "records"),
)


def device_name(case: Case) -> str:
    return f"d-{case.fault.replace('_', '-')}"


def scenario(cases: tuple[Case, ...]) -> dict[str, Any]:
    devices = []
    for case in cases:
        entry: dict[str, Any] = {"name": device_name(case), **dict(case.spec)}
        if case.fault != "none":
            entry["faults"] = [case.fault]
        devices.append(entry)
    return {
        "defaults": {
            "username": "admin",
            "layout": "firewall",
            "timezone": "UTC+08:00",
            "records": {"generate": {"count": 25, "seed": 4}},
        },
        "devices": devices,
    }


def stored(db: Path) -> dict[str, tuple[str | None, str | None, int]]:
    """Per device in the history: (last status, last error kind, deletions stored)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT d.name, d.last_status, d.last_error_kind,"
            " (SELECT count(*) FROM deletions WHERE device_id = d.id) FROM devices d"
        ).fetchall()
    connection.close()
    return {str(name): (status, kind, int(count)) for name, status, kind, count in rows}


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        result = str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    connection.close()
    return result


# --- one row per mock fault ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    directory = tmp_path_factory.mktemp("matrix")
    running = start_fleet(scenario(MATRIX), password=PASSWORD, inventory=directory / "inventory")
    yield running
    running.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", MATRIX, ids=lambda case: case.fault)
def test_fault_row(fleet: FleetThread, tmp_path: Path, case: Case, transport: str) -> None:
    name = device_name(case)
    db = tmp_path / "history.sqlite3"
    assert fleet.inventory_path is not None
    result = collect(
        fleet.inventory_path,
        tmp_path,
        *("--host", name, "--retries", "0", "--format", "json", "--records"),
        *("--transport", transport),
        password=PASSWORD,
        timeout=TIMEOUT,
        env={"NO_COLOR": "1"},
    )
    assert result.code == case.exit_code, result.stderr
    (device,) = json.loads(result.stdout)["devices"]
    state = fleet.device(name)
    status, kind, count = stored(db)[name]
    if case.kind is None:
        assert device["error"] is None
        assert [record_key(r) for r in device["records"]] == [row_key(r) for r in state.records()]
        assert (status, kind, count) == ("ok", None, len(state.records()))
    else:
        error = device["error"]
        assert error["kind"] == case.kind.value
        assert re.search(case.message, error["message"]), error["message"]
        assert "\n" not in error["message"]
        # The operator sees the device named with its kind and message on stderr.
        assert f"{name}: {case.kind.value}: {error['message']}" in result.stderr
        assert device["records"] == []
        assert (status, kind, count) == ("failed", case.kind.value, 0)


def test_the_documented_table_matches_the_tests() -> None:
    """Every row of the fault matrix in docs/SECURITY.md is a case here, and vice versa."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Fault matrix", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            kind = cells[1].split("`")[1] if "`" in cells[1] else "-"
            documented[cells[0].strip("`")] = (kind, cells[2])
    expected = {
        case.fault: ("-" if case.kind is None else case.kind.value, str(case.exit_code))
        for case in MATRIX
    }
    expected["device vanishes mid-run"] = (ErrorKind.PROTOCOL.value, "1")
    expected["collector killed mid-run"] = ("-", "137")
    expected["wrong password on a fleet"] = (ErrorKind.SKIPPED_AUTH.value, "3")  # e2e_auth_breaker
    expected["hang_no_banner with --connect-timeout 1"] = (ErrorKind.TIMEOUT.value, "1")
    for preflight in (  # tests/e2e/test_e2e_preflight.py
        "--output into a missing directory",
        "foreign SQLite file as --db",
        "known_hosts with a bad line",
    ):
        expected[preflight] = ("-", "2")
    expected["PostgreSQL stopped mid-run"] = ("-", "5")  # tests/e2e/test_e2e_db_failure.py
    expected["host key changed"] = (ErrorKind.HOST_KEY_CHANGED.value, "3")  # security_hostkeys
    assert documented == expected


# --- a device that vanishes while it answers -----------------------------------------------


async def _vanish(fleet: Fleet, name: str) -> None:
    """Stop ``name``'s listener and drop its open sessions (a device losing power).

    Uses the mock's internals: the mock has no public "pull the plug" switch.
    """
    listener = fleet._listeners.pop(name)
    await listener.close()
    for connection in list(fleet._connections):
        device = getattr(connection.get_owner(), "device", None)
        if isinstance(device, DeviceState) and device.name == name:
            connection.abort()


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def run_in_background(inventory: Path, directory: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *collector_command(),
            "collect",
            "--inventory",
            str(inventory),
            "--known-hosts",
            str(directory / "known_hosts"),
            "--db",
            str(directory / "history.sqlite3"),
            "--format",
            "json",
            "--records",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_device_vanishing_mid_run(tmp_path: Path, transport: str) -> None:
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 25, "seed": 8}}},
        "devices": [
            {"name": "steady-1"},
            {"name": "vanishing", "layout": "firewall", "latency_ms": 1500},
            {"name": "steady-2", "layout": "firewall"},
        ],
    }
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inventory") as fleet:
        assert fleet.inventory_path is not None
        state = fleet.device("vanishing")
        process = run_in_background(
            fleet.inventory_path, tmp_path, "--timeout", "20", "--transport", transport
        )
        # Pull the plug once the device has been asked for the table (it answers slowly).
        wait_for(
            lambda: any(
                e.kind == "command" and e.text.startswith("display ike") for e in state.journal()
            )
        )
        fleet.call(_vanish, fleet.fleet, "vanishing")
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 1, stderr
        devices = {d["name"]: d for d in json.loads(stdout)["devices"]}
        error = devices["vanishing"]["error"]
        # Closed before the table began: protocol (mid-table it is incomplete-output, as
        # the drop_mid_output row shows).
        assert error["kind"] == ErrorKind.PROTOCOL.value, error
        assert (
            "connection closed by the device during 'display ike offline-info'"
            in (error["message"])
        )
        assert "vanishing: protocol: " in stderr
        for name in ("steady-1", "steady-2"):
            assert devices[name]["error"] is None
        history = stored(tmp_path / "history.sqlite3")
        assert history["vanishing"] == ("failed", ErrorKind.PROTOCOL.value, 0)
        for name in ("steady-1", "steady-2"):
            assert history[name] == ("ok", None, len(fleet.device(name).records()))


# --- the collector killed mid-run ----------------------------------------------------------


@pytest.mark.slow
def test_collector_killed_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    spec = {
        "defaults": {
            "username": "admin",
            "latency_ms": 150,
            "records": {"generate": {"count": 200, "seed": 12}},
        },
        "template": {"prefix": "k", "seed": 3, "mix": {"router": 0.5, "firewall": 0.5}},
    }
    with start_fleet(spec, count=60, password=PASSWORD, inventory=tmp_path / "inventory") as fleet:
        assert fleet.inventory_path is not None
        db = tmp_path / "history.sqlite3"
        process = run_in_background(fleet.inventory_path, tmp_path, "--workers", "4")

        def some_stored() -> bool:
            if not db.exists():
                return False
            try:
                return sum(1 for s in stored(db).values() if s[0] == "ok") >= 8
            except sqlite3.Error:
                return False

        wait_for(some_stored, timeout=120)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        assert integrity(db) == "ok"
        partial = stored(db)
        assert 8 <= sum(1 for s in partial.values() if s[0] == "ok") < len(fleet.devices)
        for name, (status, _, count) in partial.items():
            if status == "ok":  # a device stored is stored whole (one transaction each)
                assert count == len(fleet.device(name).records()), name

        # The next run is not blocked by a stale lock and completes the history.
        again = run_in_background(fleet.inventory_path, tmp_path, "--workers", "16")
        stdout, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr
        assert integrity(db) == "ok"
        history = stored(db)
        assert set(history) == {state.name for state in fleet.devices}
        for state in fleet.devices:
            assert history[state.name] == ("ok", None, len(state.records())), state.name
        new = {d["name"]: d["new_records"] for d in json.loads(stdout)["devices"]}
        for name, (status, _, _) in partial.items():
            if status == "ok":
                assert new[name] == 0, name  # stored before the kill: not stored twice


# --- 300 devices, 10% faulty -------------------------------------------------------------

FAULT_KINDS = {
    "wrong_credentials": ErrorKind.AUTH,
    "port_closed": ErrorKind.UNREACHABLE,
    "hang_no_banner": ErrorKind.TIMEOUT,
    "drop_mid_output": ErrorKind.INCOMPLETE_OUTPUT,
    "command_unsupported": ErrorKind.COMMAND_REJECTED,
    "truncated_table": ErrorKind.INCOMPLETE_OUTPUT,
    "garbage_output": ErrorKind.PROTOCOL,
}


def expected_kind(state: DeviceState) -> ErrorKind | None:
    kinds = {FAULT_KINDS[fault.value] for fault in state.spec.faults if fault.value in FAULT_KINDS}
    assert len(kinds) <= 1
    return kinds.pop() if kinds else None


@pytest.mark.slow
def test_300_device_fleet_with_10_percent_faulty(tmp_path: Path) -> None:
    spec = {
        "defaults": {
            "username": "admin",
            "timezone": "Asia/Shanghai",
            "records": {"generate": {"count": 200, "seed": 21}},
        },
        "template": {
            "prefix": "edge",
            "seed": 21,
            "mix": {"router": 0.5, "firewall": 0.5},
            "sites": ["beijing", "shanghai", "guangzhou"],
            "hrp_fraction": 0.2,
            "faulty_fraction": 0.1,
            "fault_pool": [*FAULT_KINDS, "reject_screen_length", "save_prompt"],
        },
    }
    with start_fleet(spec, count=300, password=PASSWORD, inventory=tmp_path / "inventory") as fleet:
        assert fleet.inventory_path is not None
        faulty = [state for state in fleet.devices if state.spec.faults]
        assert len(faulty) == 30
        process = run_in_background(
            fleet.inventory_path, tmp_path, "--timeout", "10", "--retries", "0", "--workers", "32"
        )
        stdout, stderr = process.communicate(timeout=600)
        devices = {d["name"]: d for d in json.loads(stdout)["devices"]}
        assert set(devices) == {state.name for state in fleet.devices}
        failed = 0
        for state in fleet.devices:
            device = devices[state.name]
            kind = expected_kind(state)
            if kind is None:
                assert device["error"] is None, (state.name, device["error"])
                assert [record_key(r) for r in device["records"]] == [
                    row_key(row) for row in state.records()
                ], state.name
            else:
                failed += 1
                assert device["error"]["kind"] == kind.value, (state.name, device["error"])
                assert f"{state.name}: {kind.value}: " in stderr
        assert process.returncode == 1
        assert f"{failed} of 300 devices could not be read" in stderr
        history = stored(tmp_path / "history.sqlite3")
        for state in fleet.devices:
            if expected_kind(state) is None:
                assert history[state.name] == ("ok", None, len(state.records()))
