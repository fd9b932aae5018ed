"""``StoreWriter``: the history written in a thread of its own, one transaction per device.

What comes back is what the store said, in the order handed over; a device the store
refuses (a bad zone) is named and the others are stored; once the database itself fails
nothing more is offered to it; and ``close`` returns only when everything handed over is
committed (read back through another connection).
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from collector.core.records import Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.history.store import StoreError, open_store
from collector.history.writer import Stored, StoreWriter

BASE = datetime(2026, 3, 1, 8, 0)


def result(name: str, count: int, zone: str = "UTC") -> DeviceResult:
    records = tuple(
        OfflineRecord.build(f"10.0.0.{n % 7}", "dpd timeout", 2, BASE + timedelta(minutes=n))
        for n in range(count)
    )
    device = Device(name, f"{name}.example.net", data=MappingProxyType({"timezone": zone}))
    return DeviceResult(device, DeviceStatus.OK, records)


def test_results_are_stored_in_order_and_a_refused_device_is_named(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    with contextlib.closing(open_store(db)) as store:
        run = store.start_run("inventory.yaml", None)
        writer = StoreWriter(store, run, backlog=2)  # put() waits: the backlog is small
        handed = [result("r1", 5), result("bad", 3, zone="Mars/Olympus"), result("r2", 7)]
        handed += [result(f"x{n}", 2) for n in range(6)]
        for item in handed:
            writer.put(item)
        done = writer.stored() + writer.close()
        store.finish_run(run)
    assert [d.result.device.name for d in done] == [r.device.name for r in handed]
    bad = done[1]
    assert isinstance(bad.error, StoreError) and "Mars/Olympus" in str(bad.error)
    assert bad.outcome is None and not bad.skipped
    news = {d.result.device.name: d.outcome.new_records for d in done if d.outcome is not None}
    assert news == {"r1": 5, "r2": 7, **{f"x{n}": 2 for n in range(6)}}
    with contextlib.closing(open_store(db)) as again:  # committed, seen by another connection
        assert again.count_deletions() == 5 + 7 + 12


def test_after_the_database_failed_nothing_more_is_offered(tmp_path: Path) -> None:
    with contextlib.closing(open_store(tmp_path / "history.sqlite3")) as store:
        run = store.start_run("inventory.yaml", None)
        writer = StoreWriter(store, run)
        writer.put(result("r1", 3))
        first: list[Stored] = []
        while not first:  # the first one committed before the database goes away
            first = writer.stored()
            time.sleep(0.01)
        store.close()
        writer.put(result("r2", 3))
        writer.put(result("r3", 3))
        done = writer.close()
    assert first[0].outcome is not None and first[0].outcome.new_records == 3
    assert [d.result.device.name for d in done] == ["r2", "r3"]
    assert done[0].error is not None and not isinstance(done[0].error, StoreError)
    assert done[1].skipped and done[1].error is None and done[1].outcome is None
