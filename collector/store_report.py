"""The fleet report over history: SQL aggregation into ``collector.report``'s dataclasses.

The database does the counting (GROUP BY over the window); Python only folds the
aggregated rows (at most devices x reasons, or distinct peers) into the report, so a
report over a million stored deletions costs a few scans, not a million objects.
Times in a history report are UTC (the store converted each device's local time).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from collector.records import UNKNOWN_REASON_CODE, Category, DeviceStatus, ErrorKind
from collector.report import (
    CategoryCount,
    DeviceFailure,
    DeviceSummary,
    FleetReport,
    GapSummary,
    GroupBreakdown,
    GroupBy,
    GroupCount,
    PeerFlap,
    ReasonCount,
    Totals,
    TrendBucket,
    TrendInterval,
    UnknownReason,
)

if TYPE_CHECKING:
    from collector.store import Store

_BUCKET_SECONDS = {TrendInterval.HOUR: 3600, TrendInterval.DAY: 86400}
_TWO_DAYS = 2 * 86400
_CATEGORY_ORDER = {category: index for index, category in enumerate(Category)}


@dataclass(frozen=True, slots=True)
class _Device:
    id: int
    name: str
    hostname: str
    site: str | None
    groups: tuple[str, ...]
    status: DeviceStatus
    error_kind: ErrorKind | None
    error_message: str | None
    last_run: int | None
    last_success: datetime | None


@dataclass(frozen=True, slots=True)
class _Window:
    sql: str
    params: tuple[Any, ...]

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None) -> _Window:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("offline_time_utc >= ?")
            params.append(int(since.timestamp()))
        if until is not None:
            clauses.append("offline_time_utc < ?")
            params.append(int(until.timestamp()))
        return cls(" AND ".join(clauses) or "1 = 1", tuple(params))


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _error_kind(value: str | None) -> ErrorKind | None:
    if value is None:
        return None
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.PROTOCOL


def _category(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        return Category.UNKNOWN


def _devices(store: Store) -> list[_Device]:
    groups: defaultdict[int, list[str]] = defaultdict(list)
    for device_id, group in store.fetch(
        "SELECT device_id, group_name FROM device_groups ORDER BY device_id, group_name"
    ):
        groups[int(device_id)].append(str(group))
    rows = store.fetch(
        "SELECT id, name, hostname, site, last_status, last_error_kind, last_error_message, "
        "last_run, last_success FROM devices ORDER BY name"
    )
    return [
        _Device(
            id=int(device_id),
            name=name,
            hostname=hostname or name,
            site=site,
            groups=tuple(groups.get(int(device_id), ())),
            status=DeviceStatus(status) if status else DeviceStatus.FAILED,
            error_kind=_error_kind(kind),
            error_message=message,
            last_run=None if last_run is None else int(last_run),
            last_success=_utc(last_success),
        )
        for device_id, name, hostname, site, status, kind, message, last_run, last_success in rows
    ]


def _reason_counts(
    rows: Iterable[tuple[int, str, str, str, int]],
) -> tuple[ReasonCount, ...]:
    """Fold (device_id, reason text, code, category, count) rows into ReasonCounts."""
    counts: Counter[str] = Counter()
    texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    devices: defaultdict[str, set[int]] = defaultdict(set)
    categories: dict[str, Category] = {}
    for device_id, text, code, category, count in rows:
        counts[code] += count
        texts[code][text] += count
        devices[code].add(device_id)
        categories[code] = _category(category)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(
        ReasonCount(
            reason_code=code,
            category=categories[code],
            count=count,
            example=texts[code].most_common(1)[0][0],
            devices=len(devices[code]),
        )
        for code, count in ordered
    )


def _sorted_counts(counts: Iterable[GroupCount]) -> tuple[GroupCount, ...]:
    return tuple(
        sorted(counts, key=lambda item: (-item.deletions, item.key is None, item.key or ""))
    )


def _device_breakdown(
    devices: list[_Device], per_device: Counter[int], dimension: GroupBy
) -> GroupBreakdown:
    deletions: Counter[str | None] = Counter()
    members: defaultdict[str | None, set[int]] = defaultdict(set)
    failed: defaultdict[str | None, set[int]] = defaultdict(set)
    for device in devices:
        if dimension is GroupBy.DEVICE:
            keys: list[str | None] = [device.name]
        elif dimension is GroupBy.SITE:
            keys = [device.site]
        else:
            keys = list(device.groups) or [None]
        for key in keys:
            deletions[key] += per_device[device.id]
            members[key].add(device.id)
            if device.status is not DeviceStatus.OK:
                failed[key].add(device.id)
    return GroupBreakdown(
        dimension,
        _sorted_counts(
            GroupCount(key, deletions[key], len(members[key]), len(failed[key])) for key in members
        ),
    )


def _trend(
    store: Store, window: _Window, interval: TrendInterval | str | None
) -> tuple[TrendInterval, tuple[TrendBucket, ...]]:
    if interval is None:
        low, high = store.fetch(
            f"SELECT min(offline_time_utc), max(offline_time_utc) FROM deletions "
            f"WHERE {window.sql}",
            window.params,
        )[0]
        span = 0 if low is None else int(high) - int(low)
        chosen = TrendInterval.HOUR if span <= _TWO_DAYS else TrendInterval.DAY
    else:
        chosen = TrendInterval(interval)
    width = _BUCKET_SECONDS[chosen]
    # Integer division is floor for the non-negative epoch seconds in both dialects.
    rows = store.fetch(
        f"SELECT offline_time_utc / {width} AS bucket, count(*) FROM deletions "
        f"WHERE {window.sql} GROUP BY bucket ORDER BY bucket",
        window.params,
    )
    buckets = tuple(
        TrendBucket(datetime.fromtimestamp(int(bucket) * width, UTC), int(count))
        for bucket, count in rows
    )
    return chosen, buckets


def _peers(
    store: Store, window: _Window, threshold: int, top: int | None
) -> tuple[int, tuple[PeerFlap, ...], list[tuple[str, int, int]]]:
    """Distinct peers, the flapping ones, and (peer, deletions, devices) for every peer."""
    rows = store.fetch(
        "SELECT peer, count(*), count(DISTINCT device_id), max(offline_time_utc) "
        f"FROM deletions WHERE {window.sql} GROUP BY peer",
        window.params,
    )
    flapping = [row for row in rows if int(row[1]) >= threshold]
    flapping.sort(key=lambda row: (-int(row[1]), -int(row[2]), row[0]))
    if top is not None:
        flapping = flapping[: max(top, 0)]
    reasons: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    if flapping:
        marks = ", ".join("?" * len(flapping))
        for peer, code, count in store.fetch(
            "SELECT peer, reason_code, count(*) FROM deletions "
            f"WHERE {window.sql} AND peer IN ({marks}) GROUP BY peer, reason_code",
            (*window.params, *(row[0] for row in flapping)),
        ):
            reasons[peer].append((-int(count), str(code)))
    flaps = tuple(
        PeerFlap(
            peer=peer,
            deletions=int(count),
            devices=int(devices),
            reasons=tuple(code for _, code in sorted(reasons[peer])),
            last_seen=datetime.fromtimestamp(int(last), UTC),
        )
        for peer, count, devices, last in flapping
    )
    every = [(str(peer), int(count), int(devices)) for peer, count, devices, _ in rows]
    return len(rows), flaps, every


def _gaps(store: Store, since: datetime | None, until: datetime | None) -> tuple[GapSummary, ...]:
    clauses: list[str] = []
    params: list[int] = []
    # A gap belongs to the window when its missing interval overlaps it.
    if since is not None:
        clauses.append("(g.missing_until_utc IS NULL OR g.missing_until_utc >= ?)")
        params.append(int(since.timestamp()))
    if until is not None:
        clauses.append("(g.missing_since_utc IS NULL OR g.missing_since_utc < ?)")
        params.append(int(until.timestamp()))
    where = " AND ".join(clauses) or "1 = 1"
    rows = store.fetch(
        "SELECT v.name, g.missing_since_utc, g.missing_until_utc, r.started FROM gaps g "
        "JOIN devices v ON v.id = g.device_id LEFT JOIN runs r ON r.id = g.run_id "
        f"WHERE {where} ORDER BY g.id",
        params,
    )
    return tuple(
        GapSummary(name, _utc(since), _utc(until), _utc(started))
        for name, since, until, started in rows
    )


def history_report(
    store: Store,
    *,
    since: datetime | None,
    until: datetime | None,
    generated_at: datetime,
    group_by: GroupBy | str | None = None,
    flap_threshold: int = 2,
    top: int | None = 10,
    trend_interval: TrendInterval | str | None = None,
) -> FleetReport:
    """Build the fleet report from the store.

    Args:
        store: An open store.
        since: Window start (UTC, inclusive); None: from the beginning.
        until: Window end (UTC, exclusive); None: up to now.
        generated_at: When the report is made (UTC).
        group_by: Also break deletions in the window down by this dimension.
        flap_threshold: Peers with at least this many deletions in the window are flapping.
        top: At most this many flapping peers (None: all).
        trend_interval: ``hour`` or ``day``; None: hourly up to two days of data, else daily.

    Returns:
        A FleetReport: devices (every known device, its latest status, its deletions in
        the window, those new in its latest run), by reason/category/dimension, flapping
        peers, trend, gaps overlapping the window, devices whose latest collection failed.
    """
    window = _Window.of(since, until)
    devices = _devices(store)

    reason_rows: list[tuple[int, str, str, str, int]] = []
    newest: dict[int, int] = {}
    # One scan: everything per device and reason text folds from these rows.
    for device_id, text, code, category, count, moment in store.fetch(
        "SELECT device_id, reason, reason_code, category, count(*), max(offline_time_utc) "
        f"FROM deletions WHERE {window.sql} GROUP BY device_id, reason, reason_code, category",
        window.params,
    ):
        reason_rows.append((int(device_id), str(text), str(code), str(category), int(count)))
        newest[int(device_id)] = max(newest.get(int(device_id), 0), int(moment))
    per_device: Counter[int] = Counter()
    per_category: Counter[Category] = Counter()
    unknown: Counter[str] = Counter()
    for device_id, text, code, category, count in reason_rows:
        per_device[device_id] += count
        per_category[_category(category)] += count
        if code == UNKNOWN_REASON_CODE:
            unknown[text] += count

    # New deletions: first seen in each device's latest run (several collector hosts
    # may write one database, each with its own runs).
    latest = {device.id: device.last_run for device in devices if device.last_run is not None}
    new_rows: list[tuple[int, str, str, str, int]] = []
    runs = sorted(set(latest.values()))
    if runs:
        marks = ", ".join("?" * len(runs))
        for device_id, run, text, code, category, count in store.fetch(
            "SELECT device_id, first_seen_run, reason, reason_code, category, count(*) "
            f"FROM deletions WHERE first_seen_run IN ({marks}) "
            "GROUP BY device_id, first_seen_run, reason, reason_code, category",
            runs,
        ):
            if latest.get(int(device_id)) == int(run):
                new_rows.append((int(device_id), str(text), str(code), str(category), int(count)))
    new_per_device: Counter[int] = Counter()
    for device_id, *_, count in new_rows:
        new_per_device[device_id] += count

    peer_total, flaps, every_peer = _peers(store, window, flap_threshold, top)
    interval, trend = _trend(store, window, trend_interval)
    gaps = _gaps(store, since, until)

    breakdown: GroupBreakdown | None = None
    if group_by is not None:
        dimension = GroupBy(group_by)
        if dimension in (GroupBy.DEVICE, GroupBy.SITE, GroupBy.GROUP):
            breakdown = _device_breakdown(devices, per_device, dimension)
        elif dimension is GroupBy.PEER:
            breakdown = GroupBreakdown(
                dimension,
                _sorted_counts(GroupCount(peer, count, seen) for peer, count, seen in every_peer),
            )
        else:
            counts: Counter[str] = Counter()
            seen_by: defaultdict[str, set[int]] = defaultdict(set)
            for device_id, _text, code, category, count in reason_rows:
                key = code if dimension is GroupBy.REASON else _category(category).value
                counts[key] += count
                seen_by[key].add(device_id)
            breakdown = GroupBreakdown(
                dimension,
                _sorted_counts(GroupCount(k, n, len(seen_by[k])) for k, n in counts.items()),
            )

    summaries = tuple(
        DeviceSummary(
            name=device.name,
            hostname=device.hostname,
            site=device.site,
            status=device.status,
            records=per_device[device.id],
            newest_deletion=_utc(newest.get(device.id)),
            error_kind=device.error_kind,
            error_message=device.error_message,
            groups=device.groups,
            new_records=new_per_device[device.id],
        )
        for device in devices
    )
    failing = tuple(
        DeviceFailure(
            device.name,
            device.hostname,
            device.error_kind or ErrorKind.PROTOCOL,
            device.error_message or "",
            last_success=device.last_success,
        )
        for device in devices
        if device.status is not DeviceStatus.OK
    )
    ok = sum(1 for device in devices if device.status is DeviceStatus.OK)
    last_run = store.fetch("SELECT started, finished FROM runs ORDER BY id DESC LIMIT 1")
    last_success = store.fetch("SELECT max(finished) FROM runs WHERE devices_ok > 0")[0][0]
    unknown_list = tuple(
        UnknownReason(text, count)
        for text, count in sorted(unknown.items(), key=lambda item: (-item[1], item[0]))
    )
    return FleetReport(
        generated_at=generated_at,
        window_since=since,
        window_until=until,
        devices=summaries,
        by_reason=_reason_counts(reason_rows),
        by_category=tuple(
            CategoryCount(category, count)
            for category, count in sorted(
                per_category.items(), key=lambda item: (-item[1], _CATEGORY_ORDER[item[0]])
            )
        ),
        top_peers=flaps,
        trend=trend,
        totals=Totals(
            devices=len(devices),
            devices_ok=ok,
            devices_failed=len(devices) - ok,
            records=sum(per_device.values()),
            peers=peer_total,
            unknown_reasons=sum(unknown.values()),
            new_records=sum(new_per_device.values()),
            gaps=len(gaps),
        ),
        by_group=breakdown,
        trend_interval=interval,
        gaps=gaps,
        failing=failing,
        unknown_reasons=unknown_list,
        new_by_reason=_reason_counts(new_rows),
        flap_threshold=flap_threshold,
        run_started=_utc(last_run[0][0]) if last_run else None,
        run_finished=_utc(last_run[0][1]) if last_run else None,
        last_success=_utc(last_success),
    )
