"""``collect``'s streamed reports end to end: the real CLI against mock devices over SSH.

``collect --format json|ndjson`` and ``csv --records`` no longer build the report in
memory: each device's records are spooled as it is stored, and the report is written
a device at a time at the end (``collector.output.spool``). What the user gets must be
what the in-memory report gave: the same records, device lines and summary numbers as
``run_collection`` keeping every record and ``render_report`` rendering them (the old
path), with a device that fails among them, to ``--output`` and to stdout. A collector
killed mid-run leaves the previous ``--output`` file as it was and no file beside it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from collector.cli.main import main
from collector.core.records import normalize_reason
from collector.fleet.collect import run_collection
from collector.history.store import open_store
from collector.inventory.loading import load_inventory
from collector.output.render import render_report
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.factory import make_transport
from collector.ssh.hostkeys import KnownHosts

PASSWORD = "streamed-Report-pw-3"
FLEET = {
    "defaults": {
        "username": "admin",
        "timezone": "Asia/Shanghai",
        "records": {"generate": {"count": 40, "seed": 11}},
    },
    "devices": [
        {"name": "ar-2"},
        {"name": "fw-1", "layout": "firewall"},
        {"name": "ar-1"},
        {"name": "ar-bad", "faults": ["wrong_credentials"]},
    ],
}
VARIANTS: dict[str, tuple[str, ...]] = {
    "json": ("--format", "json"),
    "ndjson": ("--format", "ndjson"),
    "csv": ("--format", "csv", "--records"),
}


def collect(inventory: Path, directory: Path, *args: str) -> tuple[int, str, str]:
    """The CLI, in process, a fresh history and known_hosts in ``directory``."""
    directory.mkdir()
    result = CliRunner().invoke(
        main,
        [
            "collect",
            "--inventory",
            str(inventory),
            "--db",
            str(directory / "history.sqlite3"),
            "--known-hosts",
            str(directory / "known_hosts"),
            "--timeout",
            "15",
            "--retries",
            "0",
            *args,
        ],
        env={"IKE_COLLECTOR_PASSWORD": PASSWORD},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.stdout, result.stderr


def in_memory(inventory: Path, directory: Path) -> dict[str, str]:
    """The same fleet through the old path: every record kept, the report rendered whole."""
    directory.mkdir()
    devices = load_inventory(inventory).devices
    transport = make_transport("asyncssh", known_hosts=KnownHosts(directory / "known_hosts"))
    with open_store(str(directory / "history.sqlite3")) as store:
        collection = run_collection(
            devices,
            Credentials("admin", Secret(PASSWORD)),
            transport,
            store=store,
            inventory_path=inventory,
            timeout=15,
            retries=0,
            keep_records=True,
        )
    report = collection.report
    assert all(len(d.listing) == d.records for d in report.devices)
    return {
        fmt: render_report(report, fmt, records=fmt == "csv") for fmt in ("json", "ndjson", "csv")
    }


def steady(summary: dict[str, Any]) -> dict[str, Any]:
    """A JSON summary without the times that differ from one run to the next."""
    summary = dict(summary)
    summary.pop("run")
    for key in ("generated_at", "type"):
        summary.pop(key, None)
    return summary


def json_view(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    document.pop("generated_at")
    document["summary"] = steady(document["summary"])
    return document


def ndjson_view(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[-1]["type"] == "summary"
    return [*lines[:-1], steady(lines[-1])]


def test_streamed_reports_are_what_the_in_memory_report_gave(
    mock_fleet: Any, tmp_path: Path
) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD)
    inventory = fleet.inventory_path
    before = in_memory(inventory, tmp_path / "before")
    mock = {
        device.name: sorted(
            (r.peer, normalize_reason(r.reason), r.version, r.time.isoformat())
            for r in device.records()
        )
        for device in fleet.devices
        if device.name != "ar-bad"
    }
    for fmt, options in VARIANTS.items():
        target = tmp_path / f"out-{fmt}" / f"ike.{fmt}"
        target.parent.mkdir()
        code, stdout, stderr = collect(
            inventory, tmp_path / f"run-{fmt}", *options, "--output", str(target)
        )
        assert code == 1, stderr  # one device failed
        assert stdout == ""
        assert "ar-bad: auth" in stderr
        text = target.read_text(encoding="utf-8")
        assert os.listdir(target.parent) == [target.name]  # no spool or temp file left
        if fmt == "json":
            assert json_view(text) == json_view(before["json"])
            document = json.loads(text)
            assert [d["name"] for d in document["devices"]] == ["ar-1", "ar-2", "ar-bad", "fw-1"]
            got = {
                d["name"]: sorted(
                    (
                        r["peer"],
                        normalize_reason(r["reason"]),
                        r["ike_version"],
                        r["offline_time"],
                    )
                    for r in d["records"]
                )
                for d in document["devices"]
                if d["name"] != "ar-bad"
            }
            assert got == mock
            bad = next(d for d in document["devices"] if d["name"] == "ar-bad")
            assert bad["status"] == "failed" and bad["error"]["kind"] == "auth"
            assert bad["records"] == [] and bad["record_count"] == 0
            totals = document["summary"]["totals"]
            assert totals["records"] == 120 and totals["new_records"] == 120
            assert totals["devices_failed"] == 1
        elif fmt == "ndjson":
            assert ndjson_view(text) == ndjson_view(before["ndjson"])
            assert sum(1 for line in text.splitlines() if '"type": "record"' in line) == 120
        else:
            assert text == before["csv"]
            rows = list(csv.DictReader(io.StringIO(text)))
            assert len(rows) == 120 and {row["device"] for row in rows} == set(mock)

    # To stdout: the same document.
    code, stdout, stderr = collect(inventory, tmp_path / "run-stdout", "--format", "json")
    assert code == 1, stderr
    assert json_view(stdout) == json_view(before["json"])


def test_a_collector_killed_mid_run_leaves_the_old_report_and_no_file(
    mock_fleet: Any, tmp_path: Path
) -> None:
    slow = {
        "defaults": {
            "username": "admin",
            "latency_ms": 400,
            "records": {"generate": {"count": 30, "seed": 4}},
        },
        "devices": [{"name": f"ar-{n}"} for n in range(8)],
    }
    fleet = mock_fleet(slow, password=PASSWORD)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "ike.json"
    target.write_text("the previous report\n", encoding="utf-8")
    db = tmp_path / "history.sqlite3"
    script = Path(sys.executable).with_name("collect-ike-offline")
    process = subprocess.Popen(
        [
            str(script),
            "collect",
            "--inventory",
            str(fleet.inventory_path),
            "--db",
            str(db),
            "--known-hosts",
            str(tmp_path / "known_hosts"),
            "--workers",
            "1",
            "--format",
            "json",
            "--output",
            str(target),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while stored_devices(db) < 2:  # two devices stored (and spooled): kill it now
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert target.read_text(encoding="utf-8") == "the previous report\n"
    assert os.listdir(out) == ["ike.json"]


def stored_devices(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            row = connection.execute("SELECT count(*) FROM device_runs").fetchone()
    except sqlite3.Error:
        return 0  # not created yet
    return int(row[0])
