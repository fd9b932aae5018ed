"""Every render format: exact JSON shape, CSV headers, NDJSON lines, table numbers, Prometheus."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from handmade import GENERATED, make_results
from prometheus_client.parser import text_string_to_metric_families

from collector.core.aggregate import FleetReport, GapSummary, ReasonCount, aggregate
from collector.core.records import (
    ALL_REASONS,
    RECORD_FIELDS,
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)
from collector.output.atomic import write_atomic
from collector.output.machine import DEVICE_CSV_FIELDS, RECORD_CSV_FIELDS
from collector.output.prometheus import render_prometheus
from collector.output.render import render_records, render_report

RECORDS = (
    OfflineRecord.build("10.0.0.1", "dpd timeout", 2, datetime(2024, 1, 2, 3, 4, 5)),
    OfflineRecord.build(
        "2001:db8::1", 'kick, old "sa"', 1, datetime(2024, 1, 2, 3, 4, 6), port=4500
    ),
)


class FakeProblem:
    def to_dict(self) -> dict[str, Any]:
        return {"kind": "garbage", "message": "line 7 is not a row", "line": 7, "text": "x"}


@pytest.fixture
def report() -> FleetReport:
    return aggregate(make_results(), generated_at=GENERATED, group_by="site")


# ----------------------------------------------------------------- render_records


def test_records_json_exact_shape() -> None:
    document = json.loads(render_records(RECORDS, [FakeProblem()], "json"))
    assert set(document) == {"records", "problems"}
    assert document["problems"] == [FakeProblem().to_dict()]
    assert document["records"][1] == {
        "peer": "2001:db8::1",
        "port": 4500,
        "reason": 'kick, old "sa"',
        "reason_code": "unknown",
        "category": "unknown",
        "ike_version": 1,
        "offline_time": "2024-01-02T03:04:06",
        "slot": None,
        "cpu": None,
        "vpn_instance": None,
    }
    assert all(list(record) == list(RECORD_FIELDS) for record in document["records"])


def test_records_csv_header_and_quoting() -> None:
    rows = list(csv.reader(io.StringIO(render_records(RECORDS, (), "csv"))))
    assert rows[0] == list(RECORD_FIELDS)
    assert rows[1] == [
        "10.0.0.1",
        "",
        "dpd timeout",
        "dpd_timeout",
        "liveness",
        "2",
        "2024-01-02T03:04:05",
        "",
        "",
        "",
    ]
    assert rows[2][2] == 'kick, old "sa"'
    assert len(rows) == 3


def test_records_ndjson_lines_parse() -> None:
    lines = render_records(RECORDS, [FakeProblem()], "ndjson").splitlines()
    assert [json.loads(line) for line in lines] == [record.to_dict() for record in RECORDS]
    assert render_records((), (), "ndjson") == ""


def test_records_table() -> None:
    text = render_records(RECORDS, (), "table")
    assert text.splitlines()[0].split() == list(RECORD_FIELDS)
    assert "2001:db8::1" in text and "4500" in text and "dpd_timeout" in text


def test_records_unknown_format() -> None:
    with pytest.raises(ValueError, match="table, json, csv, ndjson"):
        render_records(RECORDS, (), "xml")


# ------------------------------------------------------------------ render_report


def test_report_json_exact_shape(report: FleetReport) -> None:
    document = json.loads(render_report(report, "json"))
    assert list(document) == [
        "schema_version",
        "generated_at",
        "times",
        "window",
        "devices",
        "summary",
    ]
    assert document["schema_version"] == 1
    assert document["generated_at"] == "2024-03-02T08:00:00+00:00"
    assert document["window"] == {"since": None, "until": None}
    devices = {device["name"]: device for device in document["devices"]}
    assert list(devices) == ["fw1", "fw2", "r1", "r2", "r3"]
    assert devices["r3"] == {
        "name": "r3",
        "hostname": "r3.example.net",
        "site": None,
        "groups": ["routers"],
        "status": "failed",
        "error": {"kind": "auth", "message": "authentication failed for user netops"},
        "record_count": 0,
        "new_records": None,
        "newest_deletion": None,
        "records": [],
    }
    fw1 = devices["fw1"]
    assert fw1["status"] == "ok" and fw1["error"] is None and fw1["record_count"] == 4
    assert fw1["records"][0] == {
        "peer": "10.1.1.1",
        "port": 4500,
        "reason": "dpd-timeout",
        "reason_code": "dpd_timeout",
        "category": "liveness",
        "ike_version": 2,
        "offline_time": "2024-03-01T10:40:00",
        "slot": None,
        "cpu": None,
        "vpn_instance": None,
    }
    summary = document["summary"]
    assert list(summary) == [
        "totals",
        "by_reason",
        "by_category",
        "by_group",
        "top_peers",
        "trend",
        "gaps",
        "failing",
        "unknown_reasons",
        "new_by_reason",
        "flap_threshold",
        "include_routine",
        "incidents",
        "tunnel_pairs",
        "comparison",
        "series",
        "incident_thresholds",
        "run",
    ]
    assert summary["totals"] == {
        "devices": 5,
        "devices_ok": 3,
        "devices_failed": 2,
        "records": 8,
        "peers": 4,
        "unknown_reasons": 3,
        "new_records": None,
        "gaps": 0,
        "disruptive": 7,
        "routine": 1,
        "new_disruptive": None,
        "new_routine": None,
    }
    assert summary["by_reason"][0] == {
        "reason_code": "dpd_timeout",
        "reason": "dpd timeout",
        "category": "liveness",
        "routine": False,
        "count": 3,
        "devices": 2,
        "example": "dpd timeout",
    }
    assert summary["by_category"][0] == {"category": "liveness", "routine": False, "count": 3}
    assert {"category": "rekey", "routine": True, "count": 1} in summary["by_category"]
    assert summary["by_group"]["dimension"] == "site"
    assert summary["by_group"]["counts"][0] == {
        "key": "par1",
        "deletions": 8,
        "devices": 2,
        "devices_failed": 0,
    }
    assert summary["top_peers"][0] == {
        "peer": "10.1.1.1",
        "deletions": 3,
        "devices": 2,
        "reasons": ["dpd_timeout"],
        "last_seen": "2024-03-01T10:40:00+00:00",
    }
    assert summary["trend"]["interval"] == "hour"
    assert summary["trend"]["buckets"][0] == {"start": "2024-03-01T09:00:00+00:00", "count": 2}
    assert summary["failing"][0] == {
        "name": "fw2",
        "hostname": "fw2.example.net",
        "error": {"kind": "timeout", "message": "no answer in 30 s"},
        "last_success": None,
    }
    assert summary["unknown_reasons"] == [
        {"text": "tunnel removed for unknown cause", "count": 2},
        {"text": "strange new reason", "count": 1},
    ]
    assert summary["run"] == {
        "started": "2024-03-02T07:59:00+00:00",
        "finished": "2024-03-02T07:59:30+00:00",
        "duration_seconds": 30.0,
        "last_success": "2024-03-02T07:59:30+00:00",
    }


def test_report_csv_devices_and_records(report: FleetReport) -> None:
    rows = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert list(rows[0]) == list(DEVICE_CSV_FIELDS)
    assert [(row["name"], row["status"], row["records"], row["error_kind"]) for row in rows] == [
        ("fw1", "ok", "4", ""),
        ("fw2", "failed", "0", "timeout"),
        ("r1", "ok", "4", ""),
        ("r2", "ok", "0", ""),
        ("r3", "failed", "0", "auth"),
    ]
    record_rows = list(csv.DictReader(io.StringIO(render_report(report, "csv", records=True))))
    assert list(record_rows[0]) == list(RECORD_CSV_FIELDS)
    assert len(record_rows) == 8
    assert record_rows[0]["device"] == "fw1" and record_rows[0]["hostname"] == "fw1.example.net"


def test_report_ndjson_shape(report: FleetReport) -> None:
    lines = [json.loads(line) for line in render_report(report, "ndjson").splitlines()]
    types = [line["type"] for line in lines]
    assert types == ["record"] * 8 + ["device"] * 5 + ["summary"]
    first = lines[0]
    assert list(first) == ["type", "device", *RECORD_FIELDS]
    assert first["device"] == "fw1"
    device = lines[8]
    assert "records" not in device and device["name"] == "fw1" and device["record_count"] == 4
    summary = lines[-1]
    assert summary["totals"]["records"] == 8
    assert summary["generated_at"] == "2024-03-02T08:00:00+00:00"


def test_csv_cells_are_neutralised_against_formulas() -> None:
    evil = '=HYPERLINK("http://x","y")'
    results = [
        DeviceResult(
            Device("+r1", "@host", data=MappingProxyType({"site": "-par"})),
            DeviceStatus.OK,
            (OfflineRecord.build("10.0.0.1", evil, 2, datetime(2024, 3, 1, 10)),),
        )
    ]
    report = aggregate(results, generated_at=datetime(2024, 3, 2, tzinfo=UTC))
    rows = list(csv.reader(io.StringIO(render_report(report, "csv"))))
    assert rows[1][:3] == ["'+r1", "'@host", "'-par"]
    listing = list(csv.reader(io.StringIO(render_report(report, "csv", records=True))))
    assert listing[1][0] == "'+r1" and f"'{evil}" in listing[1]
    assert rows[1][4] == "1"  # numbers stay numbers


def test_report_table_has_the_numbers(report: FleetReport) -> None:
    text = render_report(report, "table")
    assert "Totals: 5 devices (3 ok, 2 failed), 7 disruptive deletions, 4 peers" in text
    assert "Routine: 1 deletion (ha, rekey: SAs renewed, not tunnels down;" in text
    for title in (
        "Devices",
        "Deletions by reason",
        "Deletions by category",
        "Deletions by site",
        "Flapping peers (at least 2 disruptive deletions)",
        "Deletions per hour (UTC)",
        "Devices that could not be read",
        "Unknown reasons (verbatim)",
    ):
        assert f"\n{title}\n" in text, title
    lines = text.splitlines()
    # Reasons as operators read them in tables (codes stay in JSON and CSV).
    dpd = next(line for line in lines if line.startswith("dpd timeout "))
    assert dpd.split()[:6] == ["dpd", "timeout", "liveness", "disruptive", "3", "2"]
    assert not [line for line in lines if line.startswith("dpd_timeout")]
    rekey = next(line for line in lines if line.startswith("phase2 sa replace "))
    assert rekey.split()[3:5] == ["rekey", "routine"]
    flap = next(line for line in lines if line.startswith("10.1.1.1"))
    assert flap.split()[:3] == ["10.1.1.1", "3", "2"]  # its rekey is not a flap
    assert "dpd timeout" in flap and "dpd_timeout" not in flap
    r3 = next(line for line in lines if line.startswith("r3 "))
    assert "auth: authentication failed for user netops" in r3
    assert "\nRecords\n" not in text
    with_records = render_report(report, "table", records=True)
    listing = with_records.split("\nRecords\n", 1)[1]
    assert len([line for line in listing.splitlines() if line.startswith(("fw1 ", "r1 "))]) == 8


def test_report_table_history_sections() -> None:
    base = aggregate(make_results(), generated_at=GENERATED)
    history = FleetReport(
        generated_at=GENERATED,
        window_since=datetime(2024, 3, 1, tzinfo=UTC),
        window_until=GENERATED,
        devices=base.devices,
        by_reason=base.by_reason,
        by_category=base.by_category,
        top_peers=base.top_peers,
        trend=base.trend,
        totals=base.totals,
        gaps=(GapSummary("r1", datetime(2024, 3, 1, 1, tzinfo=UTC), None),),
        new_by_reason=(ReasonCount("dpd_timeout", base.by_reason[0].category, 2, "dpd timeout"),),
    )
    text = render_report(history, "table")
    assert "Window: 2024-03-01 00:00:00Z .. 2024-03-02 08:00:00Z" in text
    assert "Gaps (the buffer wrapped" in text and "collect more often" in text
    assert "New since the previous run, by reason" in text
    document = json.loads(render_report(history, "json"))
    assert document["summary"]["gaps"] == [
        {
            "device": "r1",
            "buffer": None,
            "missing_since": "2024-03-01T01:00:00+00:00",
            "missing_until": None,
            "detected_at": None,
        }
    ]


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "ndjson"])
def test_report_empty_fleet_renders(fmt: str) -> None:
    text = render_report(aggregate([], generated_at=GENERATED), fmt)
    assert text.endswith("\n") or text == ""


# ---------------------------------------------------------------------- Prometheus


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, label: str) -> dict[str, float]:
    return {sample.labels[label]: sample.value for sample in family.samples}


def test_prometheus_parses_and_has_low_cardinality(report: FleetReport) -> None:
    text = render_prometheus(report)
    metrics = families(text)
    assert samples(metrics["ike_offline_devices"], "status") == {"ok": 3.0, "failed": 2.0}
    errors = samples(metrics["ike_offline_device_errors"], "kind")
    assert set(errors) == {kind.value for kind in ErrorKind}
    assert errors["auth"] == 1.0 and errors["timeout"] == 1.0 and errors["protocol"] == 0.0
    deletions = samples(metrics["ike_offline_deletions"], "reason_code")
    assert len(deletions) == len(ALL_REASONS) + 1
    assert deletions["dpd_timeout"] == 3.0 and deletions["unknown"] == 3.0
    assert sum(deletions.values()) == 8.0
    categories = samples(metrics["ike_offline_deletions_by_category"], "category")
    assert categories["liveness"] == 3.0 and categories["expiry"] == 0.0
    assert metrics["ike_offline_run_duration_seconds"].samples[0].value == 30.0
    assert metrics["ike_offline_last_success_timestamp_seconds"].samples[0].value == (
        datetime(2024, 3, 2, 7, 59, 30, tzinfo=UTC).timestamp()
    )
    assert metrics["ike_offline_gaps"].samples[0].value == 0.0
    assert metrics["ike_offline_flapping_peers"].samples[0].value == 2.0
    assert "ike_offline_new_deletions" not in metrics
    # never one series per peer or per device
    assert "10.1.1.1" not in text and "fw1" not in text


def test_prometheus_new_deletions_when_known() -> None:
    base = aggregate(make_results(), generated_at=GENERATED)
    from dataclasses import replace

    history = replace(
        base,
        totals=replace(base.totals, new_records=2, gaps=1),
        new_by_reason=(ReasonCount("dpd_timeout", base.by_reason[0].category, 2, "dpd timeout"),),
        run_started=None,
        run_finished=None,
        last_success=None,
    )
    metrics = families(render_prometheus(history))
    new = samples(metrics["ike_offline_new_deletions"], "reason_code")
    assert new["dpd_timeout"] == 2.0 and sum(new.values()) == 2.0
    assert metrics["ike_offline_gaps"].samples[0].value == 1.0
    assert "ike_offline_run_duration_seconds" not in metrics
    assert "ike_offline_last_success_timestamp_seconds" not in metrics


# -------------------------------------------------------------------- write_atomic


def test_write_atomic_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.prom"
    write_atomic(target, "one\n")
    assert target.read_text() == "one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(target, 0o640)
    write_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.prom"]


def test_write_atomic_missing_directory_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(tmp_path / "nope" / "out.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_tables_show_values_verbatim() -> None:
    odd = OfflineRecord.build("10.0.0.9", "1e3", 2, datetime(2024, 1, 2, 3, 4, 5))
    assert "1e3" in render_records((odd,), (), "table")
    assert "1000" not in render_records((odd,), (), "table")
    from collector.core.records import Device, DeviceResult, DeviceStatus

    result = DeviceResult(Device("007", "10.0.0.7"), DeviceStatus.OK, (odd,))
    text = render_report(aggregate([result], generated_at=GENERATED), "table", records=True)
    assert "\n007 " in text and "1e3" in text and "1000" not in text
