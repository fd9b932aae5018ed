"""Streamed reports: ``collect`` writes JSON, NDJSON and ``csv --records`` a device at a
time, each device's records from a spool (``output.spool``) filled as devices finish.

The JSON written a device at a time is ``json.dumps(report_dict(report), indent=2)``, byte
for byte; the records written back from a spool (in completion order, from a report
folded without its listing) give the in-memory report's text in every format that lists
records; and a spool read back in small chunks cuts no character in two.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from collector.core.aggregate import RunFold, aggregate
from collector.core.records import (
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)
from collector.output.machine import report_dict
from collector.output.render import render_report, write_report
from collector.output.spool import RecordSpool

NOW = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)


def with_failure(results: list[DeviceResult]) -> list[DeviceResult]:
    device = Device("down", "192.0.2.1", data=MappingProxyType({"site": "bj"}))
    failed = DeviceResult.failure(device, ErrorKind.AUTH, "authentication failed")
    return [*results, failed]


def sample() -> list[DeviceResult]:
    base = datetime(2026, 3, 1, 8, 0)
    data = MappingProxyType({"timezone": "Asia/Shanghai"})
    rows = [
        OfflineRecord.build("10.0.0.1", "dpd timeout", 2, base),
        OfflineRecord.build("10.0.0.2", '对端请求删除 "quoted" \\ =SUM(1)', 1, base, port=4500),
        OfflineRecord.build("10.0.0.1", "phase2 sa replace", 2, base + timedelta(minutes=3)),
    ]
    return with_failure(
        [
            DeviceResult(Device("r2", "r2.example.net", data=data), DeviceStatus.OK, tuple(rows)),
            DeviceResult(Device("r1", "r1.example.net"), DeviceStatus.OK, tuple(rows[:1])),
            DeviceResult(Device("empty", "e.example.net"), DeviceStatus.OK, ()),
        ]
    )


def test_the_streamed_json_is_the_documents_text() -> None:
    report = aggregate(sample(), generated_at=NOW, series=True)
    expected = json.dumps(report_dict(report), ensure_ascii=False, indent=2) + "\n"
    assert render_report(report, "json") == expected
    empty = aggregate([], generated_at=NOW)
    assert render_report(empty, "json") == (
        json.dumps(report_dict(empty), ensure_ascii=False, indent=2) + "\n"
    )
    assert json.loads(expected)["devices"][0]["records"] == []  # "empty" sorts first


def test_records_written_back_from_a_spool_are_the_in_memory_text() -> None:
    results = sample()
    whole = aggregate(results, generated_at=NOW)
    for fmt, records in (("json", False), ("ndjson", False), ("csv", True)):
        state = RunFold(listing=False)
        with RecordSpool(fmt) as spool:
            for result in reversed(results):  # completion order is not the report's
                state.add(result)
                spool.add(result)
            light = state.report(generated_at=NOW)
            assert all(device.listing == () for device in light.devices)
            buffer = io.StringIO()
            write_report(light, buffer, fmt, records=records, listing=spool)
        assert buffer.getvalue() == render_report(whole, fmt, records=records), fmt


def test_a_spool_reads_back_in_chunks_that_split_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Text read back a few bytes at a time (cutting multi-byte characters) is whole."""
    import collector.output.spool as spool_module

    monkeypatch.setattr(spool_module, "_CHUNK", 5)
    results = sample()
    with RecordSpool("ndjson") as spool:
        for result in results:
            spool.add(result)
        text = "".join(spool(aggregate(results[:1], generated_at=NOW).devices[0]))
    assert "对端请求删除" in text
    assert [json.loads(line)["peer"] for line in text.splitlines()] == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.1",
    ]
