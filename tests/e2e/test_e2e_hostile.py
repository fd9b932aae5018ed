"""Hostile devices end to end: the real CLI, in its own process, against mock devices over SSH
that send a table far larger than any buffer, an endless stream, or terminal control noise.

What the operator gets is checked (exit code, each device's error kind, the one stderr line per
device, the report file, the store) and so is what it cost: the collector's peak resident memory,
read from the kernel for that child process alone (``os.wait4``). The bounds are generous and in
bytes and rows, never in seconds: the deadline is long (120 s), so a device that ends in
``oversized-output`` rather than ``timeout`` was stopped by a cap while it was still sending.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from helpers import collect_argv, collector_command

from collector.core.records import ErrorKind, normalize_reason
from mock_devices.fleet import start_fleet

PASSWORD = "hostile-Pw-5521"
PEAK_RSS_LIMIT = 300 * 1024 * 1024
"""Generous: the collector alone is about 60-90 MB; one uncapped 50 MB table took 1.6 GB."""

SCENARIO: dict[str, Any] = {
    "defaults": {
        "username": "admin",
        "layout": "router",
        "records": {"generate": {"count": 30, "seed": 21}},
    },
    "devices": [
        {"name": "good"},
        {"name": "huge-1", "faults": ["huge_table"], "huge_rows": 600_000},
        {"name": "huge-2", "layout": "firewall", "faults": ["huge_table"]},
        {"name": "endless-1", "faults": ["endless_output"]},
        {"name": "endless-2", "layout": "firewall", "faults": ["endless_output"]},
        {"name": "noisy", "layout": "firewall", "faults": ["terminal_noise"]},
    ],
}


def run_measured(args: list[str]) -> tuple[int, str, int]:
    """Run the CLI; its exit code, stderr and peak RSS in bytes (Linux: ru_maxrss in KiB)."""
    with (
        open(os.devnull, "wb") as devnull,
        subprocess.Popen(
            [*collector_command(), *args],
            stdout=devnull,
            stderr=subprocess.PIPE,
            env={**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "NO_COLOR": "1"},
        ) as process,
    ):
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, stderr, usage.ru_maxrss * 1024


def test_hostile_devices_are_cut_off_while_sending(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    report = tmp_path / "report.json"
    with start_fleet(SCENARIO, password=PASSWORD, inventory=tmp_path / "inventory") as fleet:
        assert fleet.inventory_path is not None
        code, stderr, peak = run_measured(
            collect_argv(
                fleet.inventory_path,
                tmp_path,
                *("--db", str(db), "--retries", "0", "--processes", "1"),
                *("--format", "json", "--records", "--output", str(report)),
                timeout=120,
            )
        )
        expected = {name: fleet.device(name).records() for name in ("good", "noisy")}
    assert code == 1, stderr
    assert "Traceback" not in stderr
    devices = {device["name"]: device for device in json.loads(report.read_text())["devices"]}
    for name in ("huge-1", "huge-2", "endless-1", "endless-2"):
        error = devices[name]["error"]
        assert error["kind"] == ErrorKind.OVERSIZED_OUTPUT.value, error
        assert f"{name}: oversized-output: {error['message']}" in stderr
        assert devices[name]["records"] == []
    assert (
        "'Current info Num' says 600000, more than the 1000 rows"
        in (devices["huge-1"]["error"]["message"])
    )
    assert "more than 4 MB of output" in devices["endless-1"]["error"]["message"]
    # The noisy device's records are the device's, no escape remnant in a reason.
    for name, rows in expected.items():
        got = [(r["peer"], normalize_reason(r["reason"])) for r in devices[name]["records"]]
        assert got == [(row.peer, normalize_reason(row.reason)) for row in rows], name
    # Two endless streams and two huge tables: bounded by the caps, not by the sender.
    assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MB"
    with sqlite3.connect(db) as connection:
        kinds = dict(connection.execute("SELECT name, last_error_kind FROM devices").fetchall())
        stored = connection.execute("SELECT count(*) FROM deletions").fetchone()[0]
    connection.close()
    assert kinds["huge-1"] == kinds["endless-2"] == ErrorKind.OVERSIZED_OUTPUT.value
    assert kinds["good"] is None and kinds["noisy"] is None
    assert stored == sum(len(rows) for rows in expected.values())
