"""``aggregate`` against a record-by-record reference, over random fleets.

``collector.core.aggregate`` counts through ``Counter.update(map(getter, records))`` so that a
200,000-record run costs a fraction of a second; this checks that the fast path counts
exactly what a plain loop over every record counts, ties and all, and that every time
it shows is the UTC instant of each device's local time (zones fixed, half-hour, DST).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.core.aggregate import (
    UNKNOWN_REASON_CODE,
    FleetReport,
    TrendInterval,
    aggregate,
    bucket_start,
)
from collector.core.clock import parse_zone, to_utc
from collector.core.records import Device, DeviceResult, DeviceStatus, OfflineRecord

NOW = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
BASE = datetime(2024, 3, 1, 0, 0)
PEERS = [f"10.0.0.{i}" for i in range(1, 7)]
REASONS = [
    "dpd timeout",
    "DPD timeout",  # same code as the line above, another text
    "phase2 sa replace",
    "peer request",
    "hard expiry",
    "some text no taxonomy knows",
    "another unknown text",
]

record = st.builds(
    OfflineRecord.build,
    peer=st.sampled_from(PEERS),
    reason=st.sampled_from(REASONS),
    ike_version=st.sampled_from([1, 2]),
    offline_time=st.integers(0, 4 * 86400).map(lambda s: BASE + timedelta(seconds=s)),
    port=st.sampled_from([None, 500, 4500]),
)
fleets = st.lists(st.lists(record, max_size=12), max_size=6)
# Zones of the devices' offline times: none (UTC), fixed, a half-hour offset, DST rules.
ZONES = [None, "+08:00", "-03:00", "+05:30", "Europe/Paris", "America/New_York"]


def results_of(
    fleet: list[list[OfflineRecord]], zones: list[str | None] | None = None
) -> list[DeviceResult]:
    results = []
    for index, records in enumerate(fleet):
        zone = zones[index % len(zones)] if zones else None
        data = MappingProxyType({} if zone is None else {"timezone": zone})
        device = Device(f"d{index}", f"d{index}.example.net", data=data)
        results.append(DeviceResult(device, DeviceStatus.OK, tuple(records)))
    return results


def reference(results: list[DeviceResult], interval: TrendInterval) -> dict[str, object]:
    """What the report must say, counted one record at a time."""
    counts: Counter[str] = Counter()
    texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    code_devices: defaultdict[str, set[str]] = defaultdict(set)
    categories: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    peers: Counter[str] = Counter()
    peer_devices: defaultdict[str, set[str]] = defaultdict(set)
    peer_codes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    last_seen: dict[str, datetime] = {}
    trend: Counter[datetime] = Counter()
    for result in results:
        zone_text = result.device.data.get("timezone")
        zone = UTC if zone_text is None else parse_zone(zone_text)
        for rec in result.records:
            utc = to_utc(rec.offline_time, zone)
            counts[rec.reason_code] += 1
            texts[rec.reason_code][rec.reason] += 1
            code_devices[rec.reason_code].add(result.device.name)
            categories[rec.category.value] += 1
            if rec.reason_code == UNKNOWN_REASON_CODE:
                unknown[rec.reason] += 1
            trend[bucket_start(utc, interval)] += 1
            if rec.category.routine:  # rekeys and HA housekeeping: not flaps
                continue
            peers[rec.peer] += 1
            peer_devices[rec.peer].add(result.device.name)
            peer_codes[rec.peer][rec.reason_code] += 1
            last_seen[rec.peer] = max(last_seen.get(rec.peer, utc), utc)
    return {
        "by_reason": sorted(
            (
                code,
                n,
                min(texts[code].items(), key=lambda i: (-i[1], i[0]))[0],
                len(code_devices[code]),
            )
            for code, n in counts.items()
        ),
        "by_category": dict(categories),
        "unknown": dict(unknown),
        "peers": {
            peer: (
                n,
                len(peer_devices[peer]),
                sorted(peer_codes[peer].items(), key=lambda item: (-item[1], item[0])),
                last_seen[peer],
            )
            for peer, n in peers.items()
        },
        "trend": sorted(trend.items()),
    }


def observed(report: FleetReport) -> dict[str, object]:
    return {
        "by_reason": sorted(
            (item.reason_code, item.count, item.example, item.devices) for item in report.by_reason
        ),
        "by_category": {item.category.value: item.count for item in report.by_category},
        "unknown": {item.text: item.count for item in report.unknown_reasons},
        "peers": {
            flap.peer: (
                flap.deletions,
                flap.devices,
                [(code, dict(ref_codes(report, flap.peer))[code]) for code in flap.reasons],
                flap.last_seen,
            )
            for flap in report.top_peers
        },
        "trend": [(bucket.start, bucket.count) for bucket in report.trend],
    }


def ref_codes(report: FleetReport, peer: str) -> list[tuple[str, int]]:
    """Per-code counts of one peer, recounted from the listings in the report."""
    counts: Counter[str] = Counter(
        rec.reason_code for summary in report.devices for rec in summary.listing if rec.peer == peer
    )
    return list(counts.items())


@settings(max_examples=150, deadline=None)
@given(
    fleets,
    st.sampled_from([TrendInterval.HOUR, TrendInterval.DAY]),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=6),
)
def test_aggregate_counts_what_a_plain_loop_counts(
    fleet: list[list[OfflineRecord]], interval: TrendInterval, zones: list[str | None]
) -> None:
    results = results_of(fleet, zones)
    report = aggregate(
        results, generated_at=NOW, top=None, flap_threshold=1, trend_interval=interval
    )
    assert observed(report) == reference(results, interval)
    # The listed peers are ordered by deletions, then devices, then address.
    order = [(-flap.deletions, -flap.devices, flap.peer) for flap in report.top_peers]
    assert order == sorted(order)
    assert report.totals.peers == len({rec.peer for records in fleet for rec in records})


def test_most_frequent_text_wins_and_a_tie_takes_the_first_alphabetically() -> None:
    at = BASE
    fleet = [
        [
            OfflineRecord.build("10.0.0.1", "DPD timeout", 2, at),
            OfflineRecord.build("10.0.0.1", "dpd timeout", 2, at),
        ],
        [OfflineRecord.build("10.0.0.2", "dpd timeout", 2, at)],
    ]
    report = aggregate(results_of(fleet), generated_at=NOW)
    assert [(item.example, item.count, item.devices) for item in report.by_reason] == [
        ("dpd timeout", 3, 2)
    ]
    tie = aggregate(results_of(fleet[:1]), generated_at=NOW)
    assert tie.by_reason[0].example == "DPD timeout"
    # Whatever order the device printed them in (the history cannot know it).
    reverse = aggregate(results_of([fleet[0][::-1]]), generated_at=NOW)
    assert reverse.by_reason[0].example == "DPD timeout"
