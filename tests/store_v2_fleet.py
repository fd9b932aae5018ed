"""A small fleet's history as the version 2 store wrote it, for the v2 -> v3 migration test.

``fleet_runs()`` is the data: four devices over two runs (zones +08:00, America/New_York,
UTC; identical rows; an IPv6 peer with port 4500; a wrapped full buffer, so a gap; a
failed device; reasons v2 stored as ``unknown`` that have codes now, such as
``hardware-timeout`` and ``kick old sa with same flow``). It only uses the API that both
versions have.

``fixtures/store_v2/store_v2.json`` was made by running this file with the version 2
collector (commit 72e7f11, the last one before the reason taxonomy grew), from a checkout
of that commit::

    git worktree add /tmp/v2 72e7f11
    cd /tmp/v2 && PYTHONPATH=. python /path/to/tests/store_v2_fleet.py out.json

It holds that version's DDL for both databases (``ddl(Dialect)``), every row of every
table as it stored them (SQLite), and the numbers of its fleet report, so the test
rebuilds that database on SQLite and PostgreSQL without the old code.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from helpers import FIXTURES

from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind, OfflineRecord
from collector.history.report import history_report

FIXTURE = FIXTURES / "store_v2" / "store_v2.json"
BASE = datetime(2026, 3, 1)
RUN_STARTS = (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
REPORT_AT = datetime(2026, 3, 3, tzinfo=UTC)
RECLASSIFIED = ("hardware-timeout", "kick old sa with same flow", "Receive backup delete info")
"""Reason texts the v2 store classified as ``unknown`` and version 3 knows."""


def _device(name: str, tz: str) -> Device:
    return Device(
        name,
        f"{name}.example.net",
        groups=("core",),
        data=MappingProxyType({"site": "bj", "timezone": tz}),
    )


def _rec(minute: int, peer: str, reason: str = "dpd timeout", port: int | None = None) -> Any:
    return OfflineRecord.build(peer, reason, 2, BASE + timedelta(minutes=minute), port=port)


def _ok(device: Device, records: tuple[Any, ...], run: int) -> DeviceResult:
    at = RUN_STARTS[run] + timedelta(seconds=5)
    return DeviceResult(device, DeviceStatus.OK, records, started=at, finished=at)


def _full(newest: int) -> tuple[Any, ...]:
    return tuple(_rec(minute, f"10.3.{minute % 5}.1") for minute in range(newest, newest - 200, -1))


def fleet_runs() -> list[list[DeviceResult]]:
    """The results of each run, in order."""
    fw = _device("fw1", "+08:00")
    ny = _device("ny1", "America/New_York")
    big = _device("hub1", "UTC")
    down = _device("down1", "UTC")
    first = (
        _rec(10, "10.0.0.1"),
        _rec(20, "10.0.0.1", "hardware-timeout"),
        _rec(20, "10.0.0.1", "hardware-timeout"),
        _rec(30, "10.0.0.2", "kick old sa with same flow"),
        _rec(1500, "10.0.0.2", "Receive backup delete info"),
        _rec(40, "10.0.0.3", "tunnel fell over"),
    )
    second = (_rec(2000, "10.0.0.1", "hardware-timeout"), *first)
    nyc = (
        _rec(5, "2001:db8::1", "peer request", port=4500),
        _rec(5, "2001:db8::1", "peer request", port=4500),
        _rec(700, "10.0.0.1", "phase2 sa replace", port=500),
    )
    return [
        [
            _ok(fw, first, 0),
            _ok(ny, nyc, 0),
            _ok(big, _full(300), 0),
            _ok(down, (_rec(1, "10.9.9.9"),), 0),
        ],
        [
            _ok(fw, second, 1),
            _ok(ny, nyc, 1),
            _ok(big, _full(2000), 1),  # shares nothing with run 1's full buffer: a gap
            DeviceResult.failure(down, ErrorKind.TIMEOUT, "no answer in 30 s"),
        ],
    ]


def ingest(store: Any) -> None:
    """Write ``fleet_runs()`` into an open store, run by run, at their fixed times."""
    for index, results in enumerate(fleet_runs()):
        run = store.start_run("inventory.yaml", None, "collector-a", started=RUN_STARTS[index])
        for result in results:
            store.record_device(run, result)
        store.finish_run(run, finished=RUN_STARTS[index] + timedelta(minutes=1))


def report_numbers(report: Any) -> dict[str, Any]:
    """The numbers of a fleet report that a migration must keep."""
    totals = report.totals
    return {
        "totals": [totals.devices, totals.devices_ok, totals.records, totals.peers],
        "unknown_reasons": totals.unknown_reasons,
        "new_records": totals.new_records,
        "gaps": [
            [g.device, g.missing_since.isoformat(), g.missing_until.isoformat()]
            for g in report.gaps
        ],
        "by_reason": {r.reason_code: [r.count, r.devices] for r in report.by_reason},
        "unknown_texts": {u.text: u.count for u in report.unknown_reasons},
        "devices": {d.name: [d.records, d.new_records] for d in report.devices},
        "trend": {b.start.isoformat(): b.count for b in report.trend},
    }


def _dump(out: Path) -> None:  # pragma: no cover - run by hand with the v2 collector
    from collector.history.schema import SCHEMA, SCHEMA_VERSION, Dialect, ddl
    from collector.history.store import open_store

    assert SCHEMA_VERSION == 2, "run this with the version 2 collector"
    with tempfile.TemporaryDirectory() as scratch, open_store(f"{scratch}/h.sqlite3") as store:
        ingest(store)
        tables = {}
        for table in SCHEMA:
            columns = [column.name for column in table.columns if column.name != "raw"]
            rows = store.fetch(f"SELECT {', '.join(columns)} FROM {table.name}")
            tables[table.name] = {"columns": columns, "rows": sorted(rows, key=repr)}
        data = {
            "made_by": "tests/store_v2_fleet.py at commit 72e7f11 (schema version 2)",
            "ddl": {dialect.value: ddl(dialect) for dialect in Dialect},
            "tables": tables,
            "report": report_numbers(
                history_report(store, generated_at=REPORT_AT, trend_interval="hour")
            ),
        }
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def rows_of(data: dict[str, Any]) -> Iterator[tuple[str, list[str], list[list[Any]]]]:
    for name, table in data["tables"].items():
        yield name, table["columns"], table["rows"]


if __name__ == "__main__":  # pragma: no cover
    _dump(Path(sys.argv[1]))
