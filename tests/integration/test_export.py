"""``export``: stored deletions one event a line (NDJSON, CSV), on SQLite and PostgreSQL,
through the real CLI; the fields, the window, local and UTC times, formula neutralising."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers import invoke

from collector.core.records import Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.history.store import open_store
from collector.output.export import EXPORT_FIELDS

BASE = datetime(2026, 3, 1, 10, 0)  # device-local


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    target = (
        str(tmp_path / "history.sqlite3")
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    shanghai = Device(
        "ar-1", "10.0.0.1", data=MappingProxyType({"timezone": "Asia/Shanghai", "site": "sh"})
    )
    utc = Device("=fw-1", "10.0.0.2", data=MappingProxyType({"timezone": "UTC"}))
    ne40e = Device("ne-1", "10.0.0.3", data=MappingProxyType({"timezone": "UTC"}))
    with open_store(target) as store:
        run = store.start_run(started=datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
        store.record_device(
            run,
            DeviceResult(
                shanghai,
                DeviceStatus.OK,
                (
                    OfflineRecord.build("192.0.2.1", "dpd timeout", 2, BASE),
                    OfflineRecord.build("192.0.2.1", "dpd timeout", 2, BASE),  # same second
                    OfflineRecord.build("192.0.2.9", "phase2 sa replace", 1, BASE),
                ),
            ),
        )
        store.record_device(
            run,
            DeviceResult(
                utc,
                DeviceStatus.OK,
                (
                    OfflineRecord.build("10.0.0.1", "peer-request", 2, BASE, port=4500),
                    OfflineRecord.build(
                        "10.0.0.1", "=cmd|' /C calc'!A0", 2, BASE - timedelta(days=3)
                    ),
                ),
            ),
        )
        # The same row in two slots of an NE40E: two deletions, no IKE version printed.
        store.record_device(
            run,
            DeviceResult(
                ne40e,
                DeviceStatus.OK,
                tuple(
                    OfflineRecord.build(
                        "10.9.9.9", "dpd timeout", None, BASE, 500, slot=slot, vpn_instance="vpna"
                    )
                    for slot in ("1", "3")
                ),
            ),
        )
        store.finish_run(run)
    return target


def export(db: str, *args: str) -> str:
    result = invoke("export", "--db", db, *args)
    assert result.code == 0, result.stderr
    return result.stdout


def test_ndjson_fields_and_times(db: str) -> None:
    events = [json.loads(line) for line in export(db, "--since", "2026-03-01").splitlines()]
    assert all(list(event) == list(EXPORT_FIELDS) for event in events)
    assert len(events) == 6  # the 3-day-old one is outside the window
    ne = [e for e in events if e["device"] == "ne-1"]
    assert [(e["slot"], e["cpu"], e["vpn_instance"], e["ike_version"]) for e in ne] == [
        ("1", None, "vpna", None),
        ("3", None, "vpna", None),
    ]
    assert ne[0]["event_id"] != ne[1]["event_id"]
    first = next(e for e in events if e["device"] == "ar-1" and e["reason_code"] == "dpd_timeout")
    assert first["time_local"] == "2026-03-01T10:00:00+08:00"
    assert first["time_utc"] == "2026-03-01T02:00:00Z"
    assert (first["site"], first["port"], first["impact"], first["category"]) == (
        "sh",
        None,
        "disruptive",
        "liveness",
    )
    assert first["first_seen_at"] == "2026-03-01T12:30:00Z"
    dpd = [e for e in events if e["device"] == "ar-1" and e["reason_code"] == "dpd_timeout"]
    assert len(dpd) == 2 and dpd[0]["event_id"] != dpd[1]["event_id"]  # two events
    rekey = next(e for e in events if e["reason_code"] == "phase2_sa_replace")
    assert rekey["impact"] == "routine"
    fw = next(e for e in events if e["device"] == "=fw-1")
    assert (fw["reason"], fw["port"], fw["time_local"]) == (
        "peer-request",
        4500,
        "2026-03-01T10:00:00+00:00",
    )
    # Stable ids: the same in a second export.
    again = [
        json.loads(line)["event_id"] for line in export(db, "--since", "2026-03-01").splitlines()
    ]
    assert again == [e["event_id"] for e in events]
    everything = export(db, "--since", "2026-02-01", "--until", "2026-03-02").splitlines()
    assert len(everything) == 7


def test_csv_neutralises_formulas(db: str, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    export(db, "--since", "2026-02-01", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert len(rows) == 7
    devices = {row["device"] for row in rows}
    assert devices == {"ar-1", "'=fw-1", "ne-1"}
    evil = next(row for row in rows if row["reason_code"] == "unknown")
    assert evil["reason"] == "'=cmd|' /C calc'!A0"
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export.csv.")]


def test_bad_window_is_one_line(db: str) -> None:
    result = invoke("export", "--db", db, "--since", "yesterday")
    assert result.code == 2
    assert "--since" in result.stderr and "Traceback" not in result.stderr


def test_export_removes_what_a_killed_export_left(db: str, tmp_path: Path) -> None:
    """A temp file of an interrupted export (ours, over a minute old) goes; a young one stays."""
    import os
    import time

    out = tmp_path / "siem.ndjson"
    stale = tmp_path / ".siem.ndjson.k1ll3d.tmp"
    young = tmp_path / ".siem.ndjson.inprog.tmp"
    for path in (stale, young):
        path.write_text("partial")
    old = time.time() - 120
    os.utime(stale, (old, old))
    export(db, "--since", "2026-02-01", "--output", str(out))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".siem")) == [young.name]
    assert out.read_text()
