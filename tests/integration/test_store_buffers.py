"""The history per buffer (NE40E slots, multi-SPU firewalls), VPN instances, NE40E rows
without an IKE version, the command a device answered, and zones from ``display clock``;
each on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handmade import BASE, make_device, ok
from helpers import SAMPLES, invoke

from collector.core.clock import DeviceClock
from collector.core.parse import parse_offline_history
from collector.core.records import DeviceResult, ErrorKind, OfflineRecord
from collector.history.report import history_report
from collector.history.store import FULL_BUFFER, Store, open_store

HISTORY = "display ike offline history"
OFFLINE_INFO = "display ike offline-info"


def row(
    minute: int,
    slot: str | None = None,
    cpu: str | None = None,
    peer: str = "192.168.1.2",
    vpn: str | None = None,
    version: int | None = None,
    reason: str = "Receive phase1 delete info",
) -> OfflineRecord:
    """An NE40E-style row by default: port 500, no IKE version."""
    return OfflineRecord.build(
        peer,
        reason,
        version,
        BASE + timedelta(minutes=minute),
        port=500,
        slot=slot,
        cpu=cpu,
        vpn_instance=vpn,
    )


def section(
    newest: int, count: int, slot: str | None, cpu: str | None = None, peers: int = 7
) -> tuple[OfflineRecord, ...]:
    """One buffer's rows as printed: ``count`` deletions ending at minute ``newest``."""
    return tuple(
        row(minute, slot, cpu, peer=f"10.0.{minute % peers}.1")
        for minute in range(newest, newest - count, -1)
    )


def test_identical_rows_in_two_slots_or_vpns_are_distinct_deletions(store: Store) -> None:
    device = make_device("ne1")
    records = (
        row(5, "1"),
        row(5, "2"),  # the same row in another slot's buffer
        row(5, "1", vpn="vpn-a"),  # the same peer in a VPN instance
        row(5, "1", vpn="vpn-b"),
        row(5, "1", cpu="0"),  # a multi-SPU firewall's slot 1 cpu 0
        row(5, "1", cpu="1"),
        row(5, "2"),  # two identical rows of one buffer stay two
    )
    outcome = store.record_device(store.start_run(), ok(device, records, command=HISTORY))
    assert (outcome.records, outcome.new_records, outcome.gaps) == (7, 7, ())
    assert Counter(store.deletions("ne1")) == Counter(records)
    stored = store.deletions("ne1")
    assert {(r.slot, r.cpu, r.vpn_instance) for r in stored} == {
        ("1", None, None),
        ("2", None, None),
        ("1", None, "vpn-a"),
        ("1", None, "vpn-b"),
        ("1", "0", None),
        ("1", "1", None),
    }
    assert {r.ike_version for r in stored} == {None} and {r.port for r in stored} == {500}
    # One slot's buffer lost its copy of the row: nothing new, nothing lost.
    again = store.record_device(store.start_run(), ok(device, records[1:]))
    assert again.new_records == 0 and store.count_deletions("ne1") == 7
    assert store.integrity_check() == []


def test_rows_without_ike_version_are_their_own_rows(store: Store) -> None:
    device = make_device("mixed", tz="+08:00")
    records = (row(1), row(1, version=2), row(2, version=1))
    assert store.record_device(store.start_run(), ok(device, records)).new_records == 3
    assert [r.ike_version for r in store.deletions("mixed")] == [None, 2, 1]
    assert store.fetch("SELECT ike_version FROM deletions ORDER BY t_local, ike_version") == [
        (0,),
        (2,),
        (1,),
    ]
    utc = store.fetch("SELECT min(t_utc) FROM deletions")[0][0]
    assert utc == int((BASE + timedelta(minutes=1)).replace(tzinfo=UTC).timestamp()) - 8 * 3600
    assert store.record_device(store.start_run(), ok(device, records)).new_records == 0
    report = history_report(store, generated_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert [(r.reason_code, r.count) for r in report.by_reason] == [("peer_phase1_delete", 3)]


def test_full_slot_that_shares_nothing_is_a_gap_of_that_slot(store: Store) -> None:
    device = make_device("ne1")
    first = store.start_run()
    # Slot 1's buffer reaches minute 200, slot 3's only minute 100.
    snapshot = (*section(200, FULL_BUFFER, "1"), *section(100, FULL_BUFFER, "3"))
    assert store.record_device(first, ok(device, snapshot)).gaps == ()
    second = store.start_run()
    # Slot 1 overlaps what was stored; slot 3 wrapped: all 200 rows newer than its newest
    # stored (minute 100), although slot 1 has stored rows in that time range.
    snapshot = (*section(300, FULL_BUFFER, "1"), *section(600, FULL_BUFFER, "3"))
    outcome = store.record_device(second, ok(device, snapshot))
    assert outcome.new_records == 100 + FULL_BUFFER
    assert len(outcome.gaps) == 1
    gap = outcome.gaps[0]
    assert (gap.device, gap.run_id, gap.slot, gap.cpu, gap.buffer) == (
        "ne1",
        second,
        "3",
        None,
        "slot 3",
    )
    assert gap.missing_since_local == "2026-03-01 01:40:00"  # minute 100: slot 3's newest
    assert gap.missing_until_local == "2026-03-01 06:41:00"  # minute 401: its oldest now
    assert gap.missing_since == datetime(2026, 3, 1, 1, 40, tzinfo=UTC)
    assert store.gaps() == [gap]
    store.finish_run(second)
    assert store.fetch("SELECT gaps FROM runs WHERE id = ?", (second,)) == [(1,)]
    # Slot 3 again, interleaved in time with its stored rows but sharing none of them
    # (other peers): a gap from its newest stored row, found by the range scan.
    third = store.start_run()
    others = tuple(row(minute, "3", peer="10.99.0.1") for minute in range(700, 500, -1))
    outcome = store.record_device(third, ok(device, (*section(300, FULL_BUFFER, "1"), *others)))
    assert [(g.slot, g.missing_since_local) for g in outcome.gaps] == [("3", "2026-03-01 10:00:00")]
    report = history_report(store, generated_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert [(g.device, g.buffer) for g in report.gaps] == [("ne1", "slot 3"), ("ne1", "slot 3")]
    assert report.totals.gaps == 2


def test_gaps_of_two_spus_and_declared_counts(store: Store) -> None:
    device = make_device("usg9500")
    run = store.start_run()
    store.record_device(
        run, ok(device, (*section(200, FULL_BUFFER, "1", "0"), *section(200, 50, "1", "1")))
    )
    # Both SPUs wrapped; cpu 1 printed 50 rows but declared a full buffer.
    later = store.start_run()
    outcome = store.record_device(
        later,
        ok(device, (*section(900, FULL_BUFFER, "1", "0"), *section(900, 50, "1", "1"))),
        declared_count={("1", "0"): FULL_BUFFER, ("1", "1"): FULL_BUFFER},
    )
    assert [g.buffer for g in outcome.gaps] == ["slot 1 cpu 0", "slot 1 cpu 1"]
    assert store.fetch(
        "SELECT gap, declared_count FROM device_runs WHERE run_id = ?", (later,)
    ) == [(2, 2 * FULL_BUFFER)]
    # Not full and not declared full: no gap, however new the rows.
    quiet = store.record_device(
        store.start_run(), ok(device, section(2000, 50, "1", "1")), declared_count={("1", "1"): 50}
    )
    assert quiet.gaps == () and quiet.new_records == 50


def test_unchanged_multi_slot_device_writes_no_rows(store: Store) -> None:
    devices = [make_device(f"ne{index}") for index in range(3)]
    snapshot = (
        *section(200, FULL_BUFFER, "1"),
        *section(150, 120, "2"),
        *(row(minute, "9", vpn="vpn-a") for minute in range(30)),
    )
    run = store.start_run()
    for device in devices:
        store.record_device(run, ok(device, snapshot))
    before = store.fetch("SELECT count(*), sum(n) FROM roll_device")
    assert store.count_deletions() == 3 * (FULL_BUFFER + 120 + 30)
    again = store.start_run()
    outcomes = [store.record_device(again, ok(device, snapshot)) for device in devices]
    assert [(o.new_records, o.gaps) for o in outcomes] == [(0, ())] * 3
    # Sections in another order: another digest, the diff still finds every row stored.
    reordered = (*snapshot[FULL_BUFFER:], *snapshot[:FULL_BUFFER])
    assert store.record_device(store.start_run(), ok(devices[0], reordered)).new_records == 0
    assert store.count_deletions() == 3 * (FULL_BUFFER + 120 + 30)
    assert store.fetch("SELECT count(*), sum(n) FROM roll_device") == before
    store.finish_run(again)
    assert store.fetch("SELECT new_records, gaps FROM runs WHERE id = ?", (again,)) == [(0, 0)]
    assert store.integrity_check() == []


def test_device_remembers_the_command_it_answered(store: Store) -> None:
    ne = make_device("ne1")
    ar = make_device("ar1")
    assert store.known_command("ne1") is None and store.known_commands() == {}
    run = store.start_run()
    store.record_device(run, ok(ne, (row(1, "1"),), command=HISTORY))
    store.record_device(run, ok(ar, (), command=OFFLINE_INFO))
    assert store.known_command("ne1") == HISTORY
    assert store.known_commands() == {"ne1": HISTORY, "ar1": OFFLINE_INFO}
    # A failed run without an answer keeps what the device answered before.
    store.record_device(
        store.start_run(), DeviceResult.failure(ne, ErrorKind.TIMEOUT, "no answer in 30 s")
    )
    assert store.known_command("ne1") == HISTORY
    store.record_device(store.start_run(), ok(ne, (row(1, "1"),), command=OFFLINE_INFO))
    assert store.known_command("ne1") == OFFLINE_INFO
    assert store.known_command("never-seen") is None


# -- zones from display clock ---------------------------------------------------------------

COLLECTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The collector's clock at the middle of the session."""


def _clocked(name: str, clock: DeviceClock, tz: str | None = None) -> DeviceResult:
    return ok(
        make_device(name, tz=tz),
        (row(0),),
        device_clock=clock,
        started=COLLECTED - timedelta(seconds=5),
        finished=COLLECTED + timedelta(seconds=5),
    )


def _t_utc(store: Store, device: str) -> int:
    return int(
        store.fetch(
            "SELECT d.t_utc FROM deletions d JOIN devices v ON v.id = d.device_id WHERE v.name = ?",
            (device,),
        )[0][0]
    )


def test_zone_from_display_clock_offset(store: Store) -> None:
    local = BASE.replace(tzinfo=UTC).timestamp()
    run = store.start_run()
    # UTC-03:00, a correct clock but for 7 s: 09:00:07 local is 12:00:07 UTC.
    brt = DeviceClock(datetime(2026, 3, 1, 9, 0, 7), timedelta(hours=-3), "BRT")
    outcome = store.record_device(run, _clocked("sao", brt))
    assert outcome.zone_source == "device-clock"
    assert outcome.skew == timedelta(seconds=7)  # the real skew, not the 3 h offset
    assert _t_utc(store, "sao") == local + 3 * 3600
    # Daylight saving in effect: the DST-inclusive offset is used as printed (+02:00
    # for a CET zone in summer), not the zone's standard +01:00.
    cest = DeviceClock(datetime(2026, 3, 1, 13, 59, 50), timedelta(hours=2), "CET")
    summer = store.record_device(run, _clocked("ber", cest))
    assert (summer.zone_source, summer.skew) == ("device-clock", timedelta(seconds=-10))
    assert _t_utc(store, "ber") == local - 2 * 3600
    # The inventory's zone wins for the offline times; the skew still uses the clock's
    # own offset, so a device whose zone the inventory names is not "8 h ahead".
    cst = DeviceClock(datetime(2026, 3, 1, 20, 0, 0), timedelta(hours=8), None)
    named = store.record_device(run, _clocked("bj", cst, tz="Asia/Shanghai"))
    assert (named.zone_source, named.skew) == ("inventory", timedelta(0))
    assert _t_utc(store, "bj") == local - 8 * 3600
    # No offset printed, no inventory zone: UTC is assumed, and says so.
    bare = DeviceClock(datetime(2026, 3, 1, 12, 0, 30), None, None)
    assumed = store.record_device(run, _clocked("old", bare))
    assert (assumed.zone_source, assumed.skew) == ("assumed-utc", timedelta(seconds=30))
    assert _t_utc(store, "old") == local
    stored = {
        name: (skew, source)
        for name, skew, source in store.fetch(
            "SELECT v.name, r.clock_skew, r.zone_source FROM device_runs r "
            "JOIN devices v ON v.id = r.device_id"
        )
    }
    assert stored == {
        "sao": (7.0, "device-clock"),
        "ber": (-10.0, "device-clock"),
        "bj": (0.0, "inventory"),
        "old": (30.0, "assumed-utc"),
    }


def test_report_command_names_the_wrapped_buffer(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with open_store(path) as store:
        device = make_device("ne1")
        store.record_device(
            store.start_run(),
            ok(device, (*section(200, FULL_BUFFER, "1"), *section(100, FULL_BUFFER, "3"))),
        )
        store.record_device(
            store.start_run(),
            ok(device, (*section(300, FULL_BUFFER, "1"), *section(600, FULL_BUFFER, "3"))),
        )
    result = invoke("report", "--db", str(path), "--since", "2026-02-01", "--format", "json")
    gaps = json.loads(result.stdout)["summary"]["gaps"]
    assert [(g["device"], g["buffer"], g["missing_since"]) for g in gaps] == [
        ("ne1", "slot 3", "2026-03-01T01:40:00+00:00")
    ]
    table = invoke("report", "--db", str(path), "--since", "2026-02-01")
    assert "ne1 (slot 3)" in table.stdout, table.stdout


def test_ne40e_sample_same_row_in_two_slots_is_stored_twice(store: Store) -> None:
    # Huawei's NE40E sample (fixtures/offline_info/SOURCES.md): slot 1 and slot 3 both
    # print "192.168.1.2:500  -  2021-07-23 11:24:18  Receive phase1 delete info".
    parsed = parse_offline_history((SAMPLES / "ne40e_offline_history.txt").read_text())
    assert parsed.records[0][:7] == parsed.records[2][:7]  # the same row but for its slot
    device = make_device("ne40e", tz="+08:00")
    outcome = store.record_device(store.start_run(), ok(device, parsed.records, command=HISTORY))
    assert (outcome.records, outcome.new_records) == (3, 3)
    assert Counter(store.deletions("ne40e")) == Counter(parsed.records)
    assert [(r.slot, r.vpn_instance, r.port, r.ike_version) for r in store.deletions("ne40e")] == [
        ("1", "vpna", 4500, None),
        ("1", None, 500, None),
        ("3", None, 500, None),
    ]
    again = store.record_device(store.start_run(), ok(device, parsed.records))
    assert again.new_records == 0 and store.count_deletions() == 3
    report = history_report(store, generated_at=datetime(2021, 7, 24, tzinfo=UTC))
    assert [(r.reason_code, r.count) for r in report.by_reason] == [
        ("peer_phase1_delete", 2),
        ("dpd_timeout", 1),
    ]
    assert report.devices[0].newest_deletion == datetime(2021, 7, 23, 3, 24, 18, tzinfo=UTC)
