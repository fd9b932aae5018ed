"""Fleet aggregation over a hand-made run: every number checked."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from handmade import FINISHED, GENERATED, STARTED, R, at, device, make_results
from helpers import ROOT

from collector.core.aggregate import (
    CategoryCount,
    DeviceFailure,
    GroupBy,
    GroupCount,
    TrendBucket,
    TrendInterval,
    UnknownReason,
    aggregate,
    bucket_start,
    choose_trend_interval,
    group_breakdown,
    with_local_times,
)
from collector.core.clock import parse_display_clock, parse_zone
from collector.core.records import (
    Category,
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """A report time: the devices of these tests have no zone, so their times are UTC."""
    return at(day, hour, minute).replace(tzinfo=UTC)


@pytest.fixture
def results() -> list[DeviceResult]:
    return make_results()


def test_totals(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    totals = report.totals
    assert (totals.devices, totals.devices_ok, totals.devices_failed) == (5, 3, 2)
    assert totals.records == 8
    assert totals.peers == 4
    assert totals.unknown_reasons == 3
    assert totals.new_records is None and totals.gaps == 0


def test_device_summaries_sorted_with_errors(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    assert [d.name for d in report.devices] == ["fw1", "fw2", "r1", "r2", "r3"]
    fw1, fw2, r1, r2, r3 = report.devices
    assert (fw1.status, fw1.records, fw1.newest_deletion, fw1.site) == (
        DeviceStatus.OK,
        4,
        utc(1, 23, 59),
        "par1",
    )
    assert (r1.records, r1.newest_deletion, r1.groups) == (4, utc(1, 12, 30), ("routers", "paris"))
    assert (r2.records, r2.newest_deletion, r2.error_kind) == (0, None, None)
    assert (r3.status, r3.error_kind, r3.error_message, r3.site) == (
        DeviceStatus.FAILED,
        ErrorKind.AUTH,
        "authentication failed for user netops",
        None,
    )
    assert fw2.error_kind is ErrorKind.TIMEOUT
    assert len(r1.listing) == 4 and r1.listing == results[0].records
    assert report.failing == (
        DeviceFailure("fw2", "fw2.example.net", ErrorKind.TIMEOUT, "no answer in 30 s"),
        DeviceFailure(
            "r3", "r3.example.net", ErrorKind.AUTH, "authentication failed for user netops"
        ),
    )


def test_by_reason_and_category(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    rows = [(r.reason_code, r.category, r.count, r.devices, r.example) for r in report.by_reason]
    assert rows == [
        ("dpd_timeout", Category.LIVENESS, 3, 2, "dpd timeout"),
        ("unknown", Category.UNKNOWN, 3, 2, "tunnel removed for unknown cause"),
        ("peer_request", Category.ADMINISTRATIVE, 1, 1, "peer-request"),
        ("phase2_sa_replace", Category.REKEY, 1, 1, "phase2 sa replace"),
    ]
    assert report.by_category == (
        CategoryCount(Category.LIVENESS, 3),
        CategoryCount(Category.UNKNOWN, 3),
        CategoryCount(Category.ADMINISTRATIVE, 1),
        CategoryCount(Category.REKEY, 1),
    )
    assert report.unknown_reasons == (
        UnknownReason("tunnel removed for unknown cause", 2),
        UnknownReason("strange new reason", 1),
    )


def test_flapping_peers(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    # By default the rekey of 10.1.1.1 (phase2 sa replace, routine) is not a flap.
    assert [(p.peer, p.deletions, p.devices, p.reasons, p.last_seen) for p in report.top_peers] == [
        ("10.1.1.1", 3, 2, ("dpd_timeout",), utc(1, 10, 40)),
        ("10.2.2.2", 2, 2, ("unknown",), utc(1, 12, 30)),
    ]
    with_routine = aggregate(results, generated_at=GENERATED, include_routine=True)
    assert [(p.peer, p.deletions, p.reasons, p.last_seen) for p in with_routine.top_peers] == [
        ("10.1.1.1", 4, ("dpd_timeout", "phase2_sa_replace"), utc(1, 11, 0)),
        ("10.2.2.2", 2, ("unknown",), utc(1, 12, 30)),
    ]
    assert report.flap_threshold == 2
    one = aggregate(results, generated_at=GENERATED, top=1, flap_threshold=1)
    assert [p.peer for p in one.top_peers] == ["10.1.1.1"]
    everyone = aggregate(results, generated_at=GENERATED, top=None, flap_threshold=1)
    assert [p.peer for p in everyone.top_peers] == ["10.1.1.1", "10.2.2.2", "10.3.3.3", "10.4.4.4"]
    assert aggregate(results, generated_at=GENERATED, flap_threshold=5).top_peers == ()


def test_routine_deletions_counted_apart(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    assert (report.totals.records, report.totals.routine, report.totals.disruptive) == (8, 1, 7)
    assert report.include_routine is False


def test_a_peer_that_only_rekeys_never_flaps() -> None:
    rekeys = tuple(
        R("10.9.9.9", reason, 2, at(1, hour))
        for hour in range(1, 9)
        for reason in (
            "phase1 sa replace",
            "phase2 sa replace",
            "ikev1 phase1-phase2 sa dependent offline",
        )
    )
    hub = DeviceResult(device("hub"), DeviceStatus.OK, rekeys)
    report = aggregate([hub], generated_at=GENERATED)
    assert report.top_peers == ()
    assert (report.totals.records, report.totals.routine, report.totals.disruptive) == (24, 24, 0)
    assert [
        p.peer for p in aggregate([hub], generated_at=GENERATED, include_routine=True).top_peers
    ] == ["10.9.9.9"]


@pytest.mark.parametrize(
    ("category", "routine"),
    [(category, category in (Category.REKEY, Category.HA)) for category in Category],
)
def test_only_rekey_and_ha_are_routine(category: Category, routine: bool) -> None:
    assert category.routine is routine
    assert category.impact == ("routine" if routine else "disruptive")


def test_trend_hourly_for_a_short_span(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    assert report.trend_interval is TrendInterval.HOUR
    assert report.trend == (
        TrendBucket(utc(1, 9), 2),
        TrendBucket(utc(1, 10), 3),
        TrendBucket(utc(1, 11), 1),
        TrendBucket(utc(1, 12), 1),
        TrendBucket(utc(1, 23), 1),
    )
    daily = aggregate(results, generated_at=GENERATED, trend_interval="day")
    assert daily.trend == (TrendBucket(utc(1, 0), 8),)
    assert sum(bucket.count for bucket in report.trend) == report.totals.records


def test_times_are_utc_and_local_times_carry_each_device_offset() -> None:
    shanghai = Device("sh1", "sh1.example.net", data=MappingProxyType({"timezone": "+08:00"}))
    clock = parse_display_clock("2024-03-02 04:48:00\nSaturday\nTime Zone(BRT) : UTC-03:00\n")
    sao_paulo = Device("sp1", "sp1.example.net")
    results = [
        DeviceResult(shanghai, DeviceStatus.OK, (R("10.9.9.9", "dpd timeout", 2, at(1, 15, 46)),)),
        DeviceResult(
            sao_paulo,
            DeviceStatus.OK,
            (R("10.9.9.9", "dpd timeout", 2, at(1, 4, 0)),),
            device_clock=clock,
        ),
    ]
    report = aggregate(results, generated_at=GENERATED)
    newest = {d.name: d.newest_deletion for d in report.devices}
    # 15:46 at +08:00 is 07:46 UTC; 04:00 at -03:00 (from display clock) is 07:00 UTC.
    assert newest == {"sh1": utc(1, 7, 46), "sp1": utc(1, 7, 0)}
    assert report.top_peers[0].last_seen == utc(1, 7, 46)
    assert [bucket.start for bucket in report.trend] == [utc(1, 7)]
    assert not report.local_times
    local = with_local_times(report, {"sh1": parse_zone("+08:00")})
    shown = {d.name: d.newest_deletion for d in local.devices}
    assert shown["sh1"] is not None and shown["sh1"].isoformat() == "2024-03-01T15:46:00+08:00"
    assert shown["sp1"] == utc(1, 7, 0)  # no zone given: stays UTC
    assert local.local_times


def test_half_hour_zone_trend_is_bucketed_by_utc_hour() -> None:
    kolkata = Device("in1", "in1.example.net", data=MappingProxyType({"timezone": "+05:30"}))
    records = (
        R("10.9.9.9", "dpd timeout", 2, at(1, 10, 10)),
        R("10.9.9.9", "dpd timeout", 2, at(1, 10, 40)),
    )
    report = aggregate([DeviceResult(kolkata, DeviceStatus.OK, records)], generated_at=GENERATED)
    # 10:10 and 10:40 at +05:30 are 04:40 and 05:10 UTC: two UTC hours.
    assert report.trend == (TrendBucket(utc(1, 4), 1), TrendBucket(utc(1, 5), 1))


def test_trend_interval_choice() -> None:
    assert choose_trend_interval([]) is TrendInterval.DAY
    assert choose_trend_interval([at(1, 0), at(3, 0)]) is TrendInterval.HOUR
    assert choose_trend_interval([at(1, 0), at(3, 0, 1)]) is TrendInterval.DAY
    aware = datetime(2024, 1, 1, 5, 30, tzinfo=UTC)
    assert bucket_start(aware, TrendInterval.DAY) == datetime(2024, 1, 1, tzinfo=UTC)


def test_run_times_and_window(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    assert report.generated_at == GENERATED
    assert (report.window_since, report.window_until) == (None, None)
    assert (report.run_started, report.run_finished) == (STARTED, FINISHED)
    assert report.run_duration_seconds == 30.0
    assert report.last_success == FINISHED
    given = aggregate(
        results, generated_at=GENERATED, run_started=GENERATED, run_finished=GENERATED
    )
    assert given.run_duration_seconds == 0.0


def test_all_failed_has_no_last_success(results: list[DeviceResult]) -> None:
    failed = [r for r in results if not r.ok]
    report = aggregate(failed, generated_at=GENERATED, run_finished=FINISHED)
    assert report.last_success is None
    assert report.totals.devices_ok == 0 and report.totals.records == 0
    assert report.by_reason == () and report.trend == () and report.top_peers == ()


def test_empty_run() -> None:
    report = aggregate([], generated_at=GENERATED)
    assert report.totals.devices == 0 and report.devices == () and report.run_started is None


def test_group_by_site(results: list[DeviceResult]) -> None:
    breakdown = group_breakdown(results, GroupBy.SITE)
    assert breakdown.counts == (
        GroupCount("par1", 8, 2, 0),
        GroupCount("lyo1", 0, 2, 1),
        GroupCount(None, 0, 1, 1),
    )


def test_group_by_group_counts_each_membership(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED, group_by="group")
    assert report.by_group is not None and report.by_group.dimension is GroupBy.GROUP
    assert report.by_group.counts == (
        GroupCount("paris", 8, 2, 0),
        GroupCount("firewalls", 4, 1, 0),
        GroupCount("routers", 4, 3, 1),
        GroupCount(None, 0, 1, 1),
    )


def test_group_by_device_reason_category_peer(results: list[DeviceResult]) -> None:
    by_device = group_breakdown(results, GroupBy.DEVICE).counts
    assert [(c.key, c.deletions, c.devices_failed) for c in by_device] == [
        ("fw1", 4, 0),
        ("r1", 4, 0),
        ("fw2", 0, 1),
        ("r2", 0, 0),
        ("r3", 0, 1),
    ]
    assert group_breakdown(results, GroupBy.REASON).counts == (
        GroupCount("dpd_timeout", 3, 2),
        GroupCount("unknown", 3, 2),
        GroupCount("peer_request", 1, 1),
        GroupCount("phase2_sa_replace", 1, 1),
    )
    assert group_breakdown(results, GroupBy.CATEGORY).counts[0] == GroupCount("liveness", 3, 2)
    peers = group_breakdown(results, GroupBy.PEER).counts
    assert peers[0] == GroupCount("10.1.1.1", 4, 2)
    assert sum(c.deletions for c in peers) == 8


def test_bad_group_by_is_a_value_error(results: list[DeviceResult]) -> None:
    with pytest.raises(ValueError):
        aggregate(results, generated_at=GENERATED, group_by="rack")
    with pytest.raises(ValueError):
        aggregate(results, generated_at=GENERATED, trend_interval="week")


def test_report_is_frozen(results: list[DeviceResult]) -> None:
    report = aggregate(results, generated_at=GENERATED)
    with pytest.raises(AttributeError):
        report.totals = report.totals  # type: ignore[misc]


def test_readme_documents_the_mapping_in_one_table() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z]+)` \| (routine|disruptive) \|", readme, re.M))
    assert rows == {category.value: category.impact for category in Category}
