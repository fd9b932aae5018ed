"""Secrets canary: a whole collection with a unique password must never leak it anywhere.

One real ``collect-ike-offline`` process (a subprocess, so its process list entry can be read
from ``/proc``) runs at ``-vv`` against a mock fleet with failing devices (wrong credentials,
drop mid output, command unsupported, garbage, truncated table, a slow device, a password
change dialogue), with ``--keep-raw``, a SQLite ``--db``, ``--output`` and ``--prometheus``.
Afterwards every byte it produced is searched for the canary: stdout, stderr (the log),
the report files, the database and its ``-wal``/``-shm``, the known_hosts file, the mock's
journal files. While it runs, ``/proc/*/cmdline`` of the collector and its children is read.
In process, ``repr()`` of the credentials and of every result, the error messages and every
log record of every library at DEBUG are searched too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import collect_argv, collector_command

from collector.core.records import Device, DeviceResult
from collector.ssh.credentials import Credentials, Secret, load_credentials
from collector.ssh.factory import TRANSPORTS, make_transport
from collector.ssh.hostkeys import KnownHosts
from mock_devices.fleet import FleetThread, start_fleet

CANARY = f"Canary-{uuid.uuid4()}"
SCENARIO = {
    "defaults": {
        "username": "admin",
        "layout": "router",
        "timezone": "UTC+08:00",
        "records": {"generate": {"count": 30, "seed": 5}},
    },
    "devices": [
        {"name": "ok-router"},
        {"name": "ok-firewall", "layout": "firewall", "faults": ["save_prompt"]},
        {"name": "pw-change", "faults": ["password_change_prompt"]},
        {"name": "paging", "faults": ["reject_screen_length"], "page_lines": 10},
        {"name": "slow", "latency_ms": 1500},
        {"name": "wrong-credentials", "faults": ["wrong_credentials"]},
        {"name": "drop", "layout": "firewall", "faults": ["drop_mid_output"]},
        {"name": "unsupported", "faults": ["command_unsupported"]},
        {"name": "garbage", "faults": ["garbage_output"]},
        {"name": "truncated", "faults": ["truncated_table"]},
        {"name": "closed", "faults": ["port_closed"]},
    ],
}
FAILING = {"wrong-credentials", "drop", "unsupported", "garbage", "truncated", "closed"}


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


@dataclass
class CanaryRun:
    directory: Path
    returncode: int
    stdout: bytes
    stderr: bytes
    cmdlines: list[bytes]
    fleet: FleetThread
    transport: str


@pytest.fixture(scope="module", params=TRANSPORTS)
def canary_run(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[CanaryRun]:
    transport: str = request.param
    directory = tmp_path_factory.mktemp(f"canary-{transport}")
    fleet = start_fleet(
        SCENARIO,
        password=CANARY,
        journal_dir=directory / "journal",
        inventory=directory / "inventory",
    )
    try:
        assert fleet.inventory_path is not None
        env = {
            **os.environ,
            "IKE_COLLECTOR_PASSWORD": CANARY,
            "HOME": str(directory / "home"),
            "NO_COLOR": "1",
        }
        process = subprocess.Popen(
            [
                *collector_command(),
                "collect",
                "--inventory",
                str(fleet.inventory_path),
                "--known-hosts",
                str(directory / "known_hosts"),
                "--db",
                str(directory / "history.sqlite3"),
                "--keep-raw",
                "--clock-from-device",
                "--format",
                "json",
                "--records",
                "--output",
                str(directory / "report.json"),
                "--prometheus",
                str(directory / "ike.prom"),
                "--timeout",
                "15",
                "--retries",
                "1",
                "--transport",
                transport,
                "-vv",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        cmdlines: list[bytes] = []
        # Read the process list while the slow device keeps the run going.
        while process.poll() is None:
            for pid in process_tree(process.pid):
                with contextlib.suppress(OSError):  # the process may just have ended
                    cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=120)
        yield CanaryRun(directory, process.returncode, stdout, stderr, cmdlines, fleet, transport)
    finally:
        fleet.stop()


def test_the_run_really_ran_at_vv_with_failures(canary_run: CanaryRun) -> None:
    stderr = canary_run.stderr.decode()
    assert canary_run.returncode == 1, stderr
    assert "debug:" in stderr and "display ike offline-info" in stderr
    for name in FAILING:
        assert name in stderr
    report = (canary_run.directory / "report.json").read_text()
    assert '"ok-router"' in report and '"wrong-credentials"' in report
    assert (canary_run.directory / "ike.prom").stat().st_size > 0
    assert any(b"collect" in line for line in canary_run.cmdlines)


def test_canary_absent_from_stdout_and_the_log(canary_run: CanaryRun) -> None:
    assert CANARY.encode() not in canary_run.stdout
    assert CANARY.encode() not in canary_run.stderr


def test_canary_absent_from_every_file_written(canary_run: CanaryRun) -> None:
    files = [path for path in canary_run.directory.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    # Not vacuous: the report, the metrics, the database, known_hosts and journals exist.
    assert {"report.json", "ike.prom", "history.sqlite3", "known_hosts", "hosts.yaml"} <= names
    assert "pw-change.jsonl" in names
    for path in files:
        data = path.read_bytes()
        assert CANARY.encode() not in data, path
        assert CANARY.encode("utf-16-le") not in data, path


def test_canary_absent_from_the_process_list(canary_run: CanaryRun) -> None:
    assert canary_run.cmdlines
    for cmdline in canary_run.cmdlines:
        assert CANARY.encode() not in cmdline


# --- in process: reprs, results, exception messages, every library's log records --------


class _Everything(logging.Handler):
    """Formats every record of every logger (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


def test_reprs_results_and_library_logs_hold_no_canary(canary_run: CanaryRun) -> None:
    credentials = load_credentials(
        "admin", environ={"IKE_COLLECTOR_PASSWORD": CANARY}, interactive=False
    )
    assert CANARY not in repr(credentials) + str(credentials) + f"{credentials}"
    assert CANARY not in repr(Credentials("admin", Secret(CANARY), passphrase=Secret(CANARY)))
    transport = make_transport(
        canary_run.transport, known_hosts=KnownHosts(canary_run.directory / "known_hosts")
    )
    handler = _Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    results: list[DeviceResult] = []
    try:
        for state in canary_run.fleet.devices:
            if state.name == "slow":
                continue
            device = Device(state.name, state.host, state.port, "admin")
            results.append(transport.collect(device, credentials, timeout=10, keep_raw=True))
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    failed = {result.device.name for result in results if not result.ok}
    assert failed == FAILING
    for result in results:
        assert CANARY not in repr(result)
        if result.error is not None:
            assert CANARY not in result.error.message
            assert CANARY not in str(result.error.to_dict())
        assert CANARY not in (result.raw or "")
    assert handler.texts
    for text in handler.texts:
        assert CANARY not in text


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def test_forked_processes_have_no_password_in_their_environment(tmp_path: Path) -> None:
    """``--processes 2``: neither the collector nor its forked children show the password
    in ``/proc/<pid>/environ`` (the children inherit it in memory, not in an environment),
    and the run still logs in everywhere."""
    spec = {
        "defaults": {
            "username": "admin",
            "latency_ms": 150,
            "records": {"generate": {"count": 3, "seed": 4}},
        },
        "devices": [{"name": f"env-{n:02d}"} for n in range(60)],
    }
    with start_fleet(spec, password=CANARY, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        process = subprocess.Popen(
            [
                *collector_command(),
                *collect_argv(
                    fleet.inventory_path,
                    tmp_path,
                    *("--no-store", "--processes", "2", "--workers", "4", "--format", "json"),
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "IKE_COLLECTOR_PASSWORD": CANARY, "NO_COLOR": "1"},
        )
        environs: dict[int, bytes] = {}
        command_line = b""
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            children = _children(process.pid)
            with contextlib.suppress(OSError):
                command_line = (Path("/proc") / str(process.pid) / "cmdline").read_bytes()
            for pid in [process.pid, *children]:
                proc = Path("/proc") / str(pid)
                with contextlib.suppress(OSError):
                    # Forked children share the collector's command line; anything else
                    # (ctypes' ldconfig run by a library, with its own LC_ALL=C
                    # environment) is not one of them.
                    if command_line and (proc / "cmdline").read_bytes() == command_line:
                        environs[pid] = (proc / "environ").read_bytes()
            if len(children) >= 2 and len(environs) >= 3:
                break
            time.sleep(0.05)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()
    assert len(environs) >= 3, "the collector and its two children were seen"
    for pid, environ in environs.items():
        assert CANARY.encode() not in environ, pid
        assert b"PATH=" in environ  # the rest of the environment is there
