"""The history store: the same cases on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from handmade import BASE, big_run_results, make_device, ok, rec, window
from helpers import ROOT, TESTS

from collector.core.aggregate import GroupBy, TrendInterval
from collector.core.records import (
    Category,
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)
from collector.history.report import history_report
from collector.history.schema import Dialect
from collector.history.store import FULL_BUFFER, Store, StoreError, open_store


def stored(store: Store, device: str) -> Counter[OfflineRecord]:
    return Counter(store.deletions(device))


def test_ingest_stores_every_record(store: Store) -> None:
    device = make_device("r1")
    records = (*window(50, 40), rec(3, peer="2001:db8::1", port=4500, version=1))
    run = store.start_run("inventory/hosts.yaml", None, "host-a")
    outcome = store.record_device(run, ok(device, records))
    store.finish_run(run)
    assert (outcome.records, outcome.new_records, outcome.gap) == (41, 41, None)
    assert stored(store, "r1") == Counter(records)
    assert store.integrity_check() == []
    started, finished, ok_count, failed, seen, new = store.fetch(
        "SELECT started, finished, devices_ok, devices_failed, records_seen, new_records "
        "FROM runs WHERE id = ?",
        (run,),
    )[0]
    assert finished >= started
    assert (ok_count, failed, seen, new) == (1, 0, 41, 41)


def test_deletion_seen_in_many_runs_is_stored_once(store: Store) -> None:
    device = make_device("r1")
    first = store.start_run()
    assert store.record_device(first, ok(device, window(100, 100))).new_records == 100
    second = store.start_run()
    # The buffer slid by 20: 20 new deletions, the 20 oldest dropped by the device.
    outcome = store.record_device(second, ok(device, window(120, 100)))
    assert outcome.new_records == 20
    assert store.count_deletions("r1") == 120
    assert store.new_by_reason(second) == {"dpd_timeout": 20}
    assert stored(store, "r1") == Counter(window(120, 120))


def test_identical_rows_in_one_snapshot_are_distinct_events(store: Store) -> None:
    device = make_device("r1")
    twice = (rec(5), rec(5), rec(4, peer="10.9.9.9"), rec(5))
    outcome = store.record_device(store.start_run(), ok(device, twice))
    assert outcome.new_records == 4
    assert stored(store, "r1")[rec(5)] == 3
    # Same multiset again: nothing new; one more identical row: exactly one new.
    assert store.record_device(store.start_run(), ok(device, twice)).new_records == 0
    assert store.record_device(store.start_run(), ok(device, (rec(5), *twice))).new_records == 1
    assert stored(store, "r1")[rec(5)] == 4
    # The oldest identical row dropped off the buffer: still nothing new, nothing lost.
    assert store.record_device(store.start_run(), ok(device, (rec(5),))).new_records == 0
    assert store.count_deletions("r1") == 5


def test_unchanged_fleet_adds_nothing(store: Store) -> None:
    devices = [make_device(f"r{index}") for index in range(5)]
    run = store.start_run()
    for device in devices:
        store.record_device(run, ok(device, window(200, FULL_BUFFER)))
    before = store.count_deletions()
    again = store.start_run()
    outcomes = [store.record_device(again, ok(d, window(200, FULL_BUFFER))) for d in devices]
    assert [o.new_records for o in outcomes] == [0] * 5
    assert all(o.gap is None for o in outcomes)
    # Same rows in another order: the digest differs, the insert path still adds nothing.
    reordered = tuple(reversed(window(200, FULL_BUFFER)))
    assert store.record_device(store.start_run(), ok(devices[0], reordered)).new_records == 0
    assert store.count_deletions() == before == 5 * FULL_BUFFER
    store.finish_run(again)
    assert store.fetch("SELECT new_records FROM runs WHERE id = ?", (again,))[0][0] == 0


def test_wrapped_buffer_records_a_gap(store: Store) -> None:
    device = make_device("r1", tz="+08:00")
    first = store.start_run()
    assert store.record_device(first, ok(device, window(200, FULL_BUFFER))).gap is None
    # Next run: 200 deletions all newer than anything stored, so some may be lost between.
    second = store.start_run()
    outcome = store.record_device(second, ok(device, window(1000, FULL_BUFFER)))
    assert outcome.new_records == FULL_BUFFER
    gap = outcome.gap
    assert gap is not None and gap.device == "r1" and gap.run_id == second
    assert gap.missing_since_local == "2026-03-01 03:20:00"  # minute 200, the newest stored
    assert gap.missing_until_local == "2026-03-01 13:21:00"  # minute 801, the oldest now
    assert gap.missing_since == datetime(2026, 2, 28, 19, 20, tzinfo=UTC)
    assert gap.missing_until == datetime(2026, 3, 1, 5, 21, tzinfo=UTC)
    assert store.gaps() == [gap]
    store.finish_run(second)
    assert store.fetch("SELECT gaps FROM runs WHERE id = ?", (second,))[0][0] == 1


def test_no_gap_when_overlapping_or_not_full(store: Store) -> None:
    device = make_device("r1")
    store.record_device(store.start_run(), ok(device, window(200, FULL_BUFFER)))
    overlapping = store.record_device(store.start_run(), ok(device, window(350, FULL_BUFFER)))
    assert overlapping.new_records == 150 and overlapping.gap is None
    not_full = store.record_device(store.start_run(), ok(device, window(900, 50)))
    assert not_full.new_records == 50 and not_full.gap is None
    # Fewer rows but the device declared a full buffer: a gap.
    declared = store.record_device(
        store.start_run(), ok(device, window(2000, 50)), declared_count=FULL_BUFFER
    )
    assert declared.gap is not None
    assert len(store.gaps()) == 1


def test_time_zones_to_utc_keep_local_text(store: Store) -> None:
    run = store.start_run()
    store.record_device(run, ok(make_device("cn", tz="Asia/Shanghai"), (rec(0),)))
    store.record_device(run, ok(make_device("in", tz="UTC+05:30"), (rec(0),)))
    store.record_device(run, ok(make_device("ny", tz="America/New_York"), (rec(0),)))
    outcome = store.record_device(
        run,
        ok(
            make_device("clk", tz=None),
            (rec(0),),
            device_clock=datetime(2026, 3, 1, 9, 0, 45, tzinfo=UTC) + timedelta(hours=0),
            started=datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC),
            finished=datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC),
        ),
    )
    naive = store.record_device(run, ok(make_device("none", tz=None), (rec(0),)))
    assert outcome.zone_source == "device-clock"
    assert outcome.skew == timedelta(seconds=40)
    assert naive.zone_source == "assumed-utc" and naive.skew is None
    rows: dict[str, int] = dict(
        store.fetch("SELECT v.name, d.t_utc FROM deletions d JOIN devices v ON v.id = d.device_id")
    )
    local = BASE.replace(tzinfo=UTC).timestamp()
    assert rows["cn"] == local - 8 * 3600
    assert rows["in"] == local - 5.5 * 3600
    assert rows["ny"] == local + 5 * 3600  # EST in March before the DST switch (8 March)
    assert rows["clk"] == rows["none"] == local
    locals_ = {row[0] for row in store.fetch("SELECT t_local FROM deletions")}
    assert locals_ == {local}
    assert {str(r.offline_time) for r in store.deletions("ny")} == {"2026-03-01 00:00:00"}
    skews = store.fetch("SELECT clock_skew FROM device_runs WHERE clock_skew IS NOT NULL")
    assert skews == [(40.0,)]


def test_invalid_zone_is_one_clear_error(store: Store) -> None:
    with pytest.raises(StoreError, match="device bad: unknown time zone 'Mars/Base'"):
        store.record_device(store.start_run(), ok(make_device("bad", tz="Mars/Base"), (rec(0),)))


def test_failed_device_recorded_with_its_error(store: Store) -> None:
    device = make_device("r1")
    store.record_device(store.start_run(), ok(device, window(10, 10)))
    run = store.start_run()
    failure = DeviceResult.failure(device, ErrorKind.AUTH, "authentication failed for user ops")
    outcome = store.record_device(run, failure)
    store.finish_run(run)
    assert outcome.new_records == 0
    assert store.fetch(
        "SELECT status, error_kind, error_message FROM device_runs WHERE run_id = ?", (run,)
    ) == [("failed", "auth", "authentication failed for user ops")]
    assert store.fetch("SELECT devices_ok, devices_failed FROM runs WHERE id = ?", (run,)) == [
        (0, 1)
    ]
    assert store.count_deletions() == 10


def test_keep_raw_stores_compressed_output(db_target: str) -> None:
    with open_store(db_target, keep_raw=True) as store:
        store.record_device(store.start_run(), ok(make_device("r1"), (rec(1),), raw="RAW TEXT"))
        (blob,) = store.fetch("SELECT raw FROM device_runs")[0]
        assert zlib.decompress(bytes(blob)) == b"RAW TEXT"
    with open_store(db_target) as store:
        store.record_device(store.start_run(), ok(make_device("r1"), (rec(1),), raw="RAW"))
        assert store.fetch("SELECT raw FROM device_runs ORDER BY id DESC LIMIT 1") == [(None,)]


def test_prune_removes_old_and_does_not_bring_them_back(store: Store) -> None:
    device = make_device("r1")
    old = tuple(
        OfflineRecord.build("10.1.1.1", "peer request", 1, BASE - timedelta(days=100 + i))
        for i in range(5)
    )
    snapshot = (*window(30, 30), *old)
    store.record_device(store.start_run(), ok(device, snapshot))
    now = BASE.replace(tzinfo=UTC) + timedelta(days=1)
    assert store.prune(timedelta(days=90), now=now) == 5
    assert store.count_deletions() == 30
    # The device still holds the old rows: they are not "new" again.
    assert store.record_device(store.start_run(), ok(device, (rec(31), *snapshot))).new_records == 1
    assert store.count_deletions() == 31
    assert store.integrity_check() == []


def _write_snapshots(target: str, devices: list[Device], barrier: threading.Barrier) -> None:
    with open_store(target) as store:
        barrier.wait()
        for step in range(4):
            run = store.start_run(host=f"thread-{threading.get_ident()}")
            for device in devices:
                # Each step the buffer grows by 60, with identical rows in it.
                records = (*window(100 + step * 60, 100), rec(100 + step * 60))
                store.record_device(run, ok(device, records))
            store.finish_run(run)


def test_concurrent_writers_add_no_duplicates(db_target: str) -> None:
    devices = [make_device(f"r{index}") for index in range(6)]
    open_store(db_target).close()
    barrier = threading.Barrier(3)
    threads = [
        threading.Thread(target=_write_snapshots, args=(db_target, devices, barrier))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with open_store(db_target) as store:
        assert store.integrity_check() == []
        expected = Counter(window(280, 280))
        for step in range(4):
            expected[rec(100 + step * 60)] += 1  # minute 280's extra row repeats a window row
        for device in devices:
            assert stored(store, device.name) == expected


WRITER = """
import sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from handmade import big_run_results
from collector.history.store import open_store
store = open_store({target!r})
run = store.start_run(host="victim")
print("started", flush=True)
for result in big_run_results():
    store.record_device(run, result)
    time.sleep(0.002)  # a device's network round trip, so the kill lands mid-run
store.finish_run(run)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_run_leaves_an_intact_database(db_target: str) -> None:
    open_store(db_target).close()
    code = WRITER.format(root=str(ROOT), tests=str(TESTS), target=db_target)
    victim = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert victim.stdout is not None and victim.stdout.readline().strip() == "started"
    with open_store(db_target) as watcher:
        deadline = time.monotonic() + 120
        while watcher.fetch("SELECT count(*) FROM device_runs")[0][0] < 30:
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    with open_store(db_target) as store:
        assert store.integrity_check() == []
        done = store.fetch("SELECT count(*) FROM device_runs")[0][0]
        assert 30 <= done < 400, "the kill should land mid-run"
        # Every committed device is complete: a multiple of a full snapshot.
        assert store.count_deletions() == done * FULL_BUFFER
        run = store.start_run(host="rerun")
        new = sum(store.record_device(run, result).new_records for result in big_run_results())
        store.finish_run(run)
        assert new == (400 - done) * FULL_BUFFER
        assert store.count_deletions() == 400 * FULL_BUFFER
        assert store.integrity_check() == []


# -- reports over a known data set --------------------------------------------------------


def _known_fleet(store: Store) -> int:
    """Three devices, two runs; returns the second run's id."""
    r1 = make_device("r1", site="bj", groups=("core", "east"))
    r2 = make_device("r2", site="sh", groups=("edge",))
    fw = make_device("fw1", site=None, groups=(), tz="+01:00")
    first = store.start_run()
    store.record_device(
        first,
        ok(
            r1,
            (
                rec(10, "10.0.0.1"),
                rec(20, "10.0.0.1"),
                rec(30, "10.0.0.2", "peer request"),
                rec(90, "10.0.0.1", "phase2 sa replace"),
            ),
        ),
    )
    store.record_device(first, ok(r2, (rec(15, "10.0.0.1"), rec(25, "10.0.0.3", "kick old sa"))))
    store.record_device(first, ok(fw, (rec(60 + 40, "10.0.0.1", "heartbeat timeout"),)))
    store.finish_run(first)
    second = store.start_run()
    store.record_device(
        second,
        ok(
            r1,
            (
                rec(200, "10.0.0.1"),
                rec(10, "10.0.0.1"),
                rec(20, "10.0.0.1"),
                rec(30, "10.0.0.2", "peer request"),
                rec(90, "10.0.0.1", "phase2 sa replace"),
            ),
        ),
    )
    store.record_device(second, DeviceResult.failure(r2, ErrorKind.TIMEOUT, "no answer in 30 s"))
    store.record_device(second, ok(fw, (rec(60 + 40, "10.0.0.1", "heartbeat timeout"),)))
    store.finish_run(second)
    return second


def test_report_over_known_data(store: Store) -> None:
    _known_fleet(store)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    report = history_report(store, generated_at=now, group_by="site", trend_interval="hour")
    totals = report.totals
    assert (totals.devices, totals.devices_ok, totals.devices_failed) == (3, 2, 1)
    assert (totals.records, totals.peers, totals.unknown_reasons) == (8, 3, 1)
    assert (totals.new_records, totals.gaps) == (1, 0)
    assert [(r.reason_code, r.count, r.devices) for r in report.by_reason] == [
        ("dpd_timeout", 4, 2),
        ("heartbeat_timeout", 1, 1),
        ("peer_request", 1, 1),
        ("phase2_sa_replace", 1, 1),
        ("unknown", 1, 1),
    ]
    assert {c.category: c.count for c in report.by_category} == {
        Category.LIVENESS: 5,
        Category.ADMINISTRATIVE: 1,
        Category.REKEY: 1,
        Category.UNKNOWN: 1,
    }
    assert [(u.text, u.count) for u in report.unknown_reasons] == [("kick old sa", 1)]
    # Flapping counts disruptive deletions: 10.0.0.1's phase2 sa replace is a rekey.
    assert [(p.peer, p.deletions, p.devices, p.reasons) for p in report.top_peers] == [
        ("10.0.0.1", 5, 3, ("dpd_timeout", "heartbeat_timeout"))
    ]
    assert (totals.routine, totals.disruptive, totals.new_routine) == (1, 7, 0)
    every = history_report(store, generated_at=now, include_routine=True)
    assert [(p.peer, p.deletions, p.devices, p.reasons) for p in every.top_peers] == [
        ("10.0.0.1", 6, 3, ("dpd_timeout", "heartbeat_timeout", "phase2_sa_replace"))
    ]
    assert every.top_peers[0].last_seen == datetime(2026, 3, 1, 3, 20, tzinfo=UTC)
    # fw1 is at +01:00: its 01:40 local deletion is 00:40 UTC.
    assert [(b.start.hour, b.count) for b in report.trend] == [(0, 6), (1, 1), (3, 1)]
    assert report.trend_interval is TrendInterval.HOUR
    assert report.by_group is not None and report.by_group.dimension is GroupBy.SITE
    assert [(g.key, g.deletions, g.devices, g.devices_failed) for g in report.by_group.counts] == [
        ("bj", 5, 1, 0),
        ("sh", 2, 1, 1),
        (None, 1, 1, 0),
    ]
    devices = {d.name: d for d in report.devices}
    assert devices["r2"].status is DeviceStatus.FAILED
    assert devices["r2"].error_kind is ErrorKind.TIMEOUT
    assert (devices["r1"].records, devices["r1"].new_records) == (5, 1)
    assert devices["fw1"].newest_deletion == datetime(2026, 3, 1, 0, 40, tzinfo=UTC)
    assert [(f.name, f.error_kind) for f in report.failing] == [("r2", ErrorKind.TIMEOUT)]
    assert report.failing[0].last_success is not None
    assert [(r.reason_code, r.count) for r in report.new_by_reason] == [("dpd_timeout", 1)]
    assert report.run_started is not None and report.last_success is not None


def test_report_window_and_dimensions(store: Store) -> None:
    _known_fleet(store)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    since = datetime(2026, 3, 1, 0, 20, tzinfo=UTC)
    until = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    report = history_report(
        store, since=since, until=until, generated_at=now, group_by=GroupBy.GROUP
    )
    # In [00:20, 01:00): r1 20, 30; r2 25 (kick old sa); fw1 00:40.
    assert report.totals.records == 4
    assert report.window_since == since and report.window_until == until
    assert report.by_group is not None
    assert [(g.key, g.deletions) for g in report.by_group.counts] == [
        ("core", 2),
        ("east", 2),
        ("edge", 1),
        (None, 1),
    ]
    by_peer = history_report(
        store, since=since, generated_at=now, group_by="peer", flap_threshold=3
    )
    assert by_peer.by_group is not None
    assert [(g.key, g.deletions, g.devices) for g in by_peer.by_group.counts] == [
        ("10.0.0.1", 4, 2),
        ("10.0.0.2", 1, 1),
        ("10.0.0.3", 1, 1),
    ]
    assert [p.peer for p in by_peer.top_peers] == ["10.0.0.1"]
    by_reason = history_report(store, generated_at=now, group_by="category", trend_interval="day")
    assert by_reason.by_group is not None
    assert by_reason.by_group.counts[0].key == "liveness"
    assert [(b.start, b.count) for b in by_reason.trend] == [(datetime(2026, 3, 1, tzinfo=UTC), 8)]


def test_report_lists_gaps(store: Store) -> None:
    device = make_device("r1")
    store.record_device(store.start_run(), ok(device, window(200, FULL_BUFFER)))
    store.record_device(store.start_run(), ok(device, window(1000, FULL_BUFFER)))
    report = history_report(store, generated_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert [(g.device, g.missing_since, g.missing_until) for g in report.gaps] == [
        ("r1", datetime(2026, 3, 1, 3, 20, tzinfo=UTC), datetime(2026, 3, 1, 13, 21, tzinfo=UTC))
    ]
    assert report.totals.gaps == 1
    later = history_report(
        store, since=datetime(2026, 3, 2, tzinfo=UTC), generated_at=datetime(2026, 3, 3, tzinfo=UTC)
    )
    assert later.gaps == () and later.totals.records == 0


def test_empty_store_report(store: Store) -> None:
    report = history_report(store, generated_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert report.totals.devices == 0 and report.devices == () and report.trend == ()
    assert report.run_started is None and store.last_run_id() is None


# -- opening and errors -------------------------------------------------------------------


def test_sqlite_pragmas_and_default_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with open_store(None) as store:
        assert store.dialect is Dialect.SQLITE
        assert store.target == str(tmp_path / "xdg" / "collect-ike-offline" / "history.sqlite3")
        assert store.fetch("PRAGMA journal_mode") == [("wal",)]
        assert store.fetch("PRAGMA synchronous") == [(1,)]
        assert store.fetch("PRAGMA busy_timeout")[0][0] > 0


def test_unopenable_sqlite_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the history database") as info:
        open_store(str(blocker / "sub" / "history.sqlite3"))
    assert "\n" not in str(info.value)


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "h.sqlite3")
    with open_store(path) as store:
        store.fetch("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        open_store(path)


def test_postgres_unreachable_hides_password() -> None:
    url = "postgresql://ops:s3cret@127.0.0.1:1/history"
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.postgres
def test_postgres_display_target_masks_password(pg_url: str) -> None:
    with open_store(pg_url.replace("postgres@", "postgres:pw@")) as store:
        assert store.dialect is Dialect.POSTGRES
        assert "pw" not in store.display_target and ":***@" in store.display_target


# -- roll-ups against the raw rows ---------------------------------------------------------


def _brute_force(store: Store, since: datetime | None, until: datetime | None) -> dict[str, object]:
    """What a report must say, computed from the raw deletion rows alone."""
    rows = store.fetch(
        "SELECT v.name, p.peer, r.reason_code, d.t_utc FROM deletions d "
        "JOIN devices v ON v.id = d.device_id JOIN peers p ON p.id = d.peer_id "
        "JOIN reasons r ON r.id = d.reason_id"
    )
    low = -(2**62) if since is None else int(since.timestamp())
    high = 2**62 if until is None else int(until.timestamp())
    rows = [row for row in rows if low <= row[3] < high]
    per_device = Counter(name for name, *_ in rows)
    newest = {name: max(t for n, _, _, t in rows if n == name) for name in per_device}
    by_code = Counter(code for _, _, code, _ in rows)
    code_devices = {code: len({n for n, _, c, _ in rows if c == code}) for code in by_code}
    by_peer = Counter(peer for _, peer, _, _ in rows)
    peer_devices = {peer: len({n for n, p, _, _ in rows if p == peer}) for peer in by_peer}
    days = Counter(t // 86400 for *_, t in rows)
    hours = Counter(t // 3600 for *_, t in rows)
    return {
        "hours": dict(hours),
        "records": len(rows),
        "devices": dict(per_device),
        "newest": newest,
        "by_reason": {code: (count, code_devices[code]) for code, count in by_code.items()},
        "peers": {peer: (count, peer_devices[peer]) for peer, count in by_peer.items()},
        "days": dict(days),
    }


def _seen(store: Store, since: datetime | None, until: datetime | None) -> dict[str, object]:
    report = history_report(
        store,
        since=since,
        until=until,
        generated_at=datetime(2026, 4, 1, tzinfo=UTC),
        group_by="peer",
        flap_threshold=1,
        top=None,
        trend_interval="day",
    )
    assert report.by_group is not None
    hourly = history_report(
        store, since=since, until=until, generated_at=report.generated_at, trend_interval="hour"
    )
    return {
        "hours": {int(b.start.timestamp()) // 3600: b.count for b in hourly.trend},
        "records": report.totals.records,
        "devices": {d.name: d.records for d in report.devices if d.records},
        "newest": {
            d.name: int(d.newest_deletion.timestamp())
            for d in report.devices
            if d.records and d.newest_deletion is not None
        },
        "by_reason": {r.reason_code: (r.count, r.devices) for r in report.by_reason},
        "peers": {g.key: (g.deletions, g.devices) for g in report.by_group.counts},
        "days": {int(b.start.timestamp()) // 86400: b.count for b in report.trend},
    }


def test_report_windows_match_raw_rows(store: Store) -> None:
    reasons = ("dpd timeout", "peer request", "phase2 sa replace", "kick old sa")
    zones = {"a": "+08:00", "b": "America/New_York", "c": "UTC-03:30"}
    for step in range(3):
        run = store.start_run()
        for index, (name, tz) in enumerate(zones.items()):
            records = tuple(
                rec(
                    minute=step * 997 + i * 37 + index,
                    peer=f"10.0.{(i + index) % 3}.1",
                    reason=reasons[(i * 7 + index) % len(reasons)],
                )
                for i in range(60)
            )
            store.record_device(run, ok(make_device(name, tz=tz), records + records[:2]))
        store.finish_run(run)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    windows = [
        (None, None),
        (day + timedelta(hours=5, minutes=17), None),
        (day - timedelta(hours=3), day + timedelta(days=1, hours=2, seconds=1)),
        (day + timedelta(hours=1), day + timedelta(hours=9)),
        (None, day + timedelta(hours=12)),
        (day, day + timedelta(days=1)),
    ]
    for since, until in windows:
        assert _seen(store, since, until) == _brute_force(store, since, until), (since, until)
    assert store.integrity_check() == []
    # Prune rebuilds the roll-ups from what is left: they still agree.
    total = store.count_deletions()
    removed = store.prune(timedelta(days=30), now=day + timedelta(days=30, hours=20))
    assert 0 < removed < total
    assert store.integrity_check() == []
    for since, until in windows:
        assert _seen(store, since, until) == _brute_force(store, since, until), (since, until)


def test_report_finds_a_hub_incident_with_both_ends(store: Store) -> None:
    """Five spokes (local time +08:00) lose the hub (UTC) within 20 s; the hub and one spoke
    are paired from their stored hostnames, or from the addresses an inventory gives."""
    hub = Device("hub", "192.0.2.1", data=MappingProxyType({"timezone": "UTC"}))
    spokes = [
        Device(f"s{n}", f"10.1.0.{n}", data=MappingProxyType({"timezone": "+08:00"}))
        for n in range(1, 6)
    ]
    run = store.start_run()
    outage = BASE + timedelta(hours=3)
    for n, device in enumerate(spokes, start=1):
        local = outage + timedelta(hours=8, seconds=n * 4)
        rows = (
            OfflineRecord.build("192.0.2.1", "dpd timeout", 2, local),
            OfflineRecord.build("192.0.2.1", "phase2 sa replace", 2, local - timedelta(hours=2)),
        )
        store.record_device(run, ok(device, rows))
    store.record_device(
        run,
        ok(
            hub,
            (OfflineRecord.build("10.1.0.3", "peer request", 2, outage + timedelta(seconds=13)),),
        ),
    )
    store.finish_run(run)
    report = history_report(store, generated_at=outage + timedelta(days=1))
    (incident,) = report.incidents
    assert incident.kind.value == "hub"
    assert (incident.subject, incident.subject_device) == ("192.0.2.1", "hub")
    assert incident.devices == ("hub", "s1", "s2", "s3", "s4", "s5")
    assert incident.start == (outage + timedelta(seconds=4)).replace(tzinfo=UTC)
    assert incident.deletions == 6
    (pair,) = report.pairs
    assert (pair.device, pair.other, pair.initiator) == ("s3", "hub", "s3")
    # Addresses from an inventory instead of the stored hostnames: s3 is not in it.
    no_pairs = history_report(
        store, generated_at=outage + timedelta(days=1), addresses={"192.0.2.1": "hub"}
    )
    assert no_pairs.pairs == ()
