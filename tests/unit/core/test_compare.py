"""Window comparison: per reason, category, site and device, worse first; and through the CLI
over a real SQLite history (``report --compare-to previous`` and an explicit window)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers import invoke

from collector.core.aggregate import Dimension, aggregate
from collector.core.compare import compare, parse_window, previous_window
from collector.core.records import Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.history.store import open_store

NOW = datetime(2026, 3, 8, tzinfo=UTC)


def dev(name: str, site: str) -> Device:
    return Device(name, name, data=MappingProxyType({"site": site, "timezone": "UTC"}))


def run(rows: dict[tuple[str, str], list[tuple[str, int]]], day: int) -> list[DeviceResult]:
    """{(device, site): [(reason, count)]} as one run's results on 2026-03-<day>."""
    results = []
    for (name, site), reasons in rows.items():
        records = tuple(
            OfflineRecord.build(
                f"10.0.{n}.1", reason, 2, datetime(2026, 3, day, 1) + timedelta(minutes=n)
            )
            for reason, count in reasons
            for n in range(count)
        )
        results.append(DeviceResult(dev(name, site), DeviceStatus.OK, records))
    return results


BEFORE = {
    ("ar-1", "par"): [("dpd timeout", 2), ("phase2 sa replace", 10)],
    ("ar-2", "lyo"): [("peer request", 4)],
}
AFTER = {
    ("ar-1", "par"): [("dpd timeout", 9), ("phase2 sa replace", 40)],
    ("ar-2", "lyo"): [("peer request", 1)],
    ("ar-3", "lyo"): [("spi conflict", 1)],
}


def test_changes_per_dimension_worse_first() -> None:
    before = aggregate(run(BEFORE, 1), generated_at=NOW)
    now = aggregate(run(AFTER, 2), generated_at=NOW)
    comparison = compare(now, before)
    assert (comparison.before, comparison.now, comparison.change) == (6, 11, 5)
    rows = [(c.dimension, c.key, c.before, c.now, c.change) for c in comparison.changes]
    # Disruptive rows first, biggest increase first; the rekey rise (+30) comes last.
    assert rows[:3] == [
        (Dimension.CATEGORY, "liveness", 2, 9, 7),
        (Dimension.DEVICE, "ar-1", 2, 9, 7),
        (Dimension.REASON, "dpd_timeout", 2, 9, 7),
    ]
    assert (Dimension.SITE, "par", 2, 9, 7) in rows
    assert (Dimension.SITE, "lyo", 4, 2, -2) in rows
    assert (Dimension.DEVICE, "ar-3", 0, 1, 1) in rows
    assert rows[-2:] == [
        (Dimension.CATEGORY, "rekey", 10, 40, 30),
        (Dimension.REASON, "phase2_sa_replace", 10, 40, 30),
    ]
    assert [c.routine for c in comparison.changes[-2:]] == [True, True]
    ar3 = next(c for c in comparison.changes if c.key == "ar-3")
    assert ar3.percent is None
    assert next(c for c in comparison.changes if c.key == "ar-1").percent == 350.0


def test_windows() -> None:
    since = datetime(2026, 3, 7, tzinfo=UTC)
    assert previous_window(since, None, NOW) == (datetime(2026, 3, 6, tzinfo=UTC), since)
    assert parse_window("previous", since, None, NOW) == previous_window(since, None, NOW)
    assert parse_window("2026-03-01..2026-03-02", since, None, NOW) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert parse_window("14d..7d", since, None, NOW)[0] == datetime(2026, 2, 22, tzinfo=UTC)
    for bad in ("last week", "2026-03-02..2026-03-01", "..7d"):
        with pytest.raises(ValueError):
            parse_window(bad, since, None, NOW)


def test_report_compare_to_through_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    with open_store(db) as store:
        for rows, day in ((BEFORE, 1), (AFTER, 2)):
            run_id = store.start_run()
            for device_result in run(rows, day):
                store.record_device(run_id, device_result)
            store.finish_run(run_id)
    args = ["report", "--db", str(db), "--since", "2026-03-02", "--until", "2026-03-03"]
    result = invoke(*args, "--compare-to", "previous", "--format", "json")
    assert result.code == 0, result.stderr
    comparison = json.loads(result.stdout)["summary"]["comparison"]
    assert comparison["window"] == {
        "since": "2026-03-01T00:00:00+00:00",
        "until": "2026-03-02T00:00:00+00:00",
    }
    assert (comparison["before"], comparison["now"]) == (6, 11)
    assert comparison["changes"][0] == {
        "dimension": "category",
        "key": "liveness",
        "routine": False,
        "before": 2,
        "now": 9,
        "change": 7,
        "percent": 350.0,
    }
    explicit = invoke(*args, "--compare-to", "2026-03-01..2026-03-02")
    assert explicit.code == 0
    text = explicit.stdout
    assert "Compared with 2026-03-01 00:00:00Z .. 2026-03-02 00:00:00Z: 6 -> 11" in text
    section = text.split("Compared with")[1].split("\n\n")[0]
    lines = [line.split() for line in section.splitlines()[4:]]
    assert lines[0][:2] == ["category", "liveness"]
    assert ["reason", "dpd", "timeout", "2", "9", "+7", "(+350%)"] in lines
    bad = invoke(*args, "--compare-to", "yesterday")
    assert bad.code == 2
    assert "--compare-to" in bad.stderr and "Traceback" not in bad.stderr
