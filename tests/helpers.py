"""What several test files share: where things are, and the real CLI run as an operator runs it.

The test tree mirrors the packages (``tests/unit/<package>``, ``tests/integration``,
``tests/e2e``); this module, the fixtures and the test servers stay at the top of
``tests/``, which ``tests/conftest.py`` puts on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from netmiko import ConnectHandler

from collector.cli.main import main
from collector.core import commands
from collector.core.commands import check_command
from collector.core.records import normalize_reason
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
"""The checkout: ``collector/``, ``docs/``, ``contrib/``, ``bench/``..."""
FIXTURES = TESTS / "fixtures"
SAMPLES = FIXTURES / "offline_info"
"""One file per device case: ``<case>.txt`` is device output byte for byte."""
REFUSALS = [
    ("rejected_unrecognized", "Error: Unrecognized command found at '^' position."),
    ("rejected_error_code", "Error[1]: Unrecognized command found at '^' position."),
    ("rejected_wrong_parameter", "Error: Wrong parameter found at '^' position."),
    ("rejected_no_permission", "Error: No permission to run the command."),
]
"""The samples of a device refusing the command, with the line it refused with."""
SCRIPT = Path(sys.executable).with_name("collect-ike-offline")
"""The console script this venv installed, as cron or systemd runs it."""


# --- the real CLI, as an operator runs it ------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one run of the CLI gave the operator (and the history file it wrote, if any)."""

    code: int
    stdout: str
    stderr: str
    db: Path | None = None

    def json(self) -> dict[str, Any]:
        """stdout as the JSON document it must be (``--format json``)."""
        document: dict[str, Any] = json.loads(self.stdout)
        return document

    def devices(self) -> dict[str, dict[str, Any]]:
        """The JSON report's devices by name."""
        return {device["name"]: device for device in self.json()["devices"]}

    def device(self, name: str) -> dict[str, Any]:
        return self.devices()[name]

    def history(self) -> Path:
        """The SQLite history this run wrote."""
        assert self.db is not None, "the run was given no SQLite history"
        return self.db


def invoke(
    *args: str,
    password: str | None = None,
    env: Mapping[str, str | None] | None = None,
    stdin: str | bytes | None = None,
    tracebacks: bool = False,
) -> Run:
    """``collect-ike-offline ARGS`` in this process (click's CliRunner).

    ``password`` is in ``IKE_COLLECTOR_PASSWORD`` as an operator sets it (``None``: the
    variable is unset); ``env`` adds or, with ``None``, removes variables. Whatever the
    outcome, the CLI must end through its own exit, never an escaped exception, and print
    no traceback (unless ``tracebacks``: ``-vv`` debug lines may carry a device's).
    """
    environment: dict[str, str | None] = {"IKE_COLLECTOR_PASSWORD": password}
    environment.update(env or {})
    result = CliRunner().invoke(main, list(args), env=environment, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert tracebacks or "Traceback" not in result.stderr, result.stderr
    return Run(result.exit_code, result.stdout, result.stderr)


def collect_argv(
    inventory: Path | str | None, directory: Path, *args: str, timeout: float | None = None
) -> list[str]:
    """``collect [--timeout TIMEOUT] --inventory INVENTORY ... ARGS`` as an argument list.

    Its files are in ``directory``: ``known_hosts`` and the history ``history.sqlite3``
    unless ``args`` name their own (``--known-hosts``, ``--db`` or ``--no-store``).
    """
    argv = ["collect"]
    if timeout is not None:
        argv += ["--timeout", f"{timeout:g}"]
    if inventory is not None:
        argv += ["--inventory", str(inventory)]
    if "--known-hosts" not in args:
        argv += ["--known-hosts", str(directory / "known_hosts")]
    if "--db" not in args and "--no-store" not in args:
        argv += ["--db", str(directory / "history.sqlite3")]
    return [*argv, *args]


def collect(
    inventory: Path | str | None,
    directory: Path,
    *args: str,
    password: str | None,
    timeout: float = 10,
    env: Mapping[str, str | None] | None = None,
    tracebacks: bool = False,
) -> Run:
    """:func:`collect_argv` run through :func:`invoke`; the SQLite history it names (a
    file, not a PostgreSQL URL) is the run's ``db``."""
    argv = collect_argv(inventory, directory, *args, timeout=timeout)
    target = argv[argv.index("--db") + 1] if "--db" in argv else None
    db = None if target is None or "://" in target else Path(target)
    return replace(invoke(*argv, password=password, env=env, tracebacks=tracebacks), db=db)


def run_collect(
    program: Sequence[str],
    fleet: FleetThread,
    directory: Path,
    password: str,
    *options: str,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """:func:`collect_argv` (``--format json OPTIONS``) in a process of its own, for tests
    that need a fresh interpreter (what was imported) or process limits (``ulimit``); the
    password in the environment, never on the command line."""
    return subprocess.run(
        [*program, *collect_argv(fleet.inventory_path, directory, "--format", "json", *options)],
        env={**os.environ, "IKE_COLLECTOR_PASSWORD": password, "NO_COLOR": "1"},
        preexec_fn=preexec_fn,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def collector_command() -> list[str]:
    """The installed console script (as cron would run it), else the module."""
    if SCRIPT.exists():
        return [str(SCRIPT)]
    return [sys.executable, "-c", "from collector.cli.main import main; main()"]


def on_a_terminal(*args: str, typed: bytes) -> tuple[int, str, str]:
    """``collect-ike-offline ARGS`` with stdin on a real pseudo-terminal where the operator
    types ``typed``: its exit code, stdout and stderr."""
    leader, follower = os.openpty()
    with subprocess.Popen(
        [*collector_command(), *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        os.close(follower)
        os.write(leader, typed)
        stdout, stderr = process.communicate(timeout=60)
    os.close(leader)
    return process.returncode, stdout.decode(), stderr.decode()


# --- what the mock holds, and what it was sent -------------------------------------------


def row_key(row: Any) -> tuple[Any, ...]:
    return (row.peer, normalize_reason(row.reason), row.version, row.time.isoformat())


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["peer"],
        normalize_reason(record["reason"]),
        record["ike_version"],
        record["offline_time"],
    )


def assert_matches_mock(device: dict[str, Any], state: DeviceState) -> None:
    assert device["status"] == "ok", device["error"]
    assert device["error"] is None
    rows = state.records()
    assert [record_key(r) for r in device["records"]] == [row_key(row) for row in rows]
    if state.layout == "firewall":
        assert [r["port"] for r in device["records"]] == [row.port for row in rows]
    assert device["record_count"] == len(rows)


def assert_read_only(state: DeviceState) -> None:
    """Every line the device received is on the allowed list; nothing was ever saved."""
    for entry in state.journal():
        where = (state.name, entry)
        if entry.kind == "command":
            check_command(entry.text)
        elif entry.kind == "answer":
            assert entry.text == commands.ANSWER_NO, where
        elif entry.kind == "key":
            assert entry.text == "space", where
        assert entry.kind not in ("config-saved", "password-change"), where
        assert entry.text.strip().upper() not in ("Y", "YES"), where


def netmiko_session(device: DeviceState, device_type: str | None = None, **extra: Any) -> Any:
    """A real netmiko session to a mock device, as its layout's netmiko device type unless
    ``device_type`` says otherwise; 10 s to connect, see the banner and log in."""
    if device_type is None:
        device_type = "huawei" if device.layout == "router" else "huawei_vrpv8"
    options: dict[str, Any] = {"conn_timeout": 10, "banner_timeout": 10, "auth_timeout": 10}
    options.update(extra)
    return ConnectHandler(
        device_type=device_type,
        host=device.host,
        port=device.port,
        username=device.username,
        password=device.password,
        **options,
    )


def journal_times(fleet: FleetThread, kind: str) -> dict[str, list[datetime]]:
    """When each device journaled ``kind`` (``login``, ``auth-failed``), per device name."""
    return {
        device.spec.name: [entry.time for entry in device.journal() if entry.kind == kind]
        for device in fleet.devices
    }


def attempts_ended(db: Path) -> dict[str, datetime]:
    """When each device's (one) attempt ended, as the history stored it (a device not
    tried at all has none)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT devices.name, device_runs.finished FROM device_runs"
            " JOIN devices ON devices.id = device_runs.device_id"
            " WHERE device_runs.finished IS NOT NULL"
        ).fetchall()
    connection.close()
    return {name: datetime.fromtimestamp(finished).astimezone() for name, finished in rows}
