"""``RunFold``: one run's report folded a device at a time, as ``collect`` builds it.

``aggregate(results)`` is the fold over a list; ``collect`` folds each result as it
arrives (completion order) and drops its records. Over random fleets (zones fixed,
half-hour, DST; incidents and tunnel pairs made likely by low thresholds): folded in any
order with each device's place given, the report is the list's report exactly; in any
order without it, every count is the same; a report taken midway changes nothing that
follows; and without the listing the report is the same but for the listing itself.
Incidents and tunnel pairs are those of every disruptive deletion
(``incidents.run_events``), and the HTML series is what a record-by-record count gives.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_reference import BASE, NOW, ZONES, fleets, results_of

from collector.core.aggregate import (
    FleetReport,
    GroupBy,
    RunFold,
    aggregate,
    bucket_start,
    device_zone,
    series_of,
)
from collector.core.clock import to_utc
from collector.core.incidents import (
    Thresholds,
    address_book,
    find_incidents,
    pair_tunnels,
    run_events,
    sort_events,
)
from collector.core.records import (
    Category,
    Device,
    DeviceResult,
    ErrorKind,
    OfflineRecord,
)

PEERS = [f"10.0.0.{i}" for i in range(1, 9)]
burst_record = st.builds(
    OfflineRecord.build,
    peer=st.sampled_from(PEERS),
    reason=st.sampled_from(["dpd timeout", "peer request", "hard expiry", "odd text"]),
    ike_version=st.just(2),
    offline_time=st.integers(0, 600).map(lambda s: BASE + timedelta(seconds=s)),
)
"""Deletions close in time toward few peers: clusters, bursts and both-ends pairs."""
LOW = Thresholds(gap=timedelta(hours=6), burst_min=2, spread_min=2, hub_min=2, spread_share=0.1)
"""Thresholds low enough that small random fleets make incidents and pairs."""


def with_failure(results: list[DeviceResult]) -> list[DeviceResult]:
    device = Device("down", "192.0.2.1", data=MappingProxyType({"site": "bj"}))
    failed = DeviceResult.failure(device, ErrorKind.AUTH, "authentication failed")
    return [*results, failed]


def fold(
    results: list[DeviceResult],
    order: list[int],
    *,
    ranked: bool,
    listing: bool = True,
    split: int | None = None,
    group_by: GroupBy | None = None,
) -> FleetReport:
    state = RunFold(thresholds=LOW, series=True, listing=listing, group_by=group_by)
    for step, index in enumerate(order):
        if step == split:
            state.report(generated_at=NOW)  # a report midway must not disturb the fold
        state.add(results[index], index if ranked else None)
    return state.report(generated_at=NOW)


def unordered(report: FleetReport) -> FleetReport:
    """Everything but the sections whose order of equal-time events may differ."""
    return dataclasses.replace(report, incidents=(), pairs=())


@settings(max_examples=120, deadline=None)
@given(
    fleets,
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
    st.integers(0, 7),
    st.sampled_from([None, *GroupBy]),
)
def test_folding_in_any_order_and_split_gives_the_lists_report(
    fleet: list[list[OfflineRecord]],
    zones: list[str | None],
    shuffle: object,
    split: int,
    group_by: GroupBy | None,
) -> None:
    results = with_failure(results_of(fleet, zones))
    whole = aggregate(results, generated_at=NOW, thresholds=LOW, series=True, group_by=group_by)
    order = list(range(len(results)))
    shuffle.shuffle(order)  # type: ignore[attr-defined]
    # With each device's place: the same report, incidents and pairs included.
    assert fold(results, order, ranked=True, split=split, group_by=group_by) == whole
    # In completion order, unranked: every count and device line the same.
    assert unordered(fold(results, order, ranked=False, group_by=group_by)) == unordered(whole)
    # The HTML series, counted record by record in the report's buckets.
    categories: Counter[tuple[datetime, Category]] = Counter()
    devices: Counter[tuple[str, datetime]] = Counter()
    for result in results:
        for rec in result.records:
            start = bucket_start(
                to_utc(rec.offline_time, device_zone(result)), whole.trend_interval
            )
            categories[(start, rec.category)] += 1
            devices[(result.device.name, start)] += 1
    assert whole.series == series_of(categories, devices)
    # Records dropped once counted: only the listing differs.
    light = fold(results, order, ranked=True, listing=False, group_by=group_by)
    assert light == dataclasses.replace(
        whole,
        devices=tuple(dataclasses.replace(d, listing=()) for d in whole.devices),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(burst_record, max_size=14), max_size=6),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=6),
    st.sampled_from([LOW, Thresholds(burst_min=3, spread_min=2, hub_min=3)]),
)
def test_incidents_and_pairs_are_those_of_every_disruptive_deletion(
    fleet: list[list[OfflineRecord]], zones: list[str | None], thresholds: Thresholds
) -> None:
    """The fold keeps only deletions that can matter (a peer seen widely or an inventory
    device's address, a device's own cluster of many peers): the incidents and pairs are
    what ``incidents.run_events`` over every disruptive deletion gives."""
    results = results_of(fleet, zones)
    # Devices whose addresses are peers of the others: both ends of tunnels.
    results = [
        dataclasses.replace(r, device=dataclasses.replace(r.device, hostname=PEERS[i % 4]))
        for i, r in enumerate(results)
    ]
    report = aggregate(results, generated_at=NOW, thresholds=thresholds)
    book = address_book(r.device for r in results)
    events = sort_events(run_events(results, [device_zone(r) for r in results], thresholds, book))
    assert report.incidents == find_incidents(events, book, thresholds, ordered=True)
    assert report.pairs == pair_tunnels(events, book, thresholds.pair_window, ordered=True)
