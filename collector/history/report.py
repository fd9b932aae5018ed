"""The fleet report over history: roll-ups and raw edges into :mod:`~collector.core.aggregate`'s
dataclasses.

Whole UTC days of a window come from the roll-ups the store maintains at ingest (per
device and day, per day and reason text); the partial days at the window's edges come
from the raw rows through per-device time ranges, so windows are exact to the second and
a report over a million stored deletions reads tens of thousands of rows, not a million.
Times in a history report are UTC (the store converted each device's local time).

Size: over 500 lines because the fleet report over history is one plan (whole days from
roll-ups, edges from raw rows) that every section (reasons, categories, groups, peers,
trend, gaps, incidents, series) reads; each section is one function.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING

from collector.core.aggregate import (
    DEFAULT_FLAP_THRESHOLD,
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
    Series,
    Totals,
    TrendBucket,
    TrendInterval,
    UnknownReason,
    reason_counts,
    series_of,
)
from collector.core.incidents import (
    DEFAULT_THRESHOLDS,
    Event,
    Thresholds,
    address_book,
    find_incidents,
    pair_tunnels,
    relevant_keys,
    sort_events,
)
from collector.core.records import (
    REASON_BY_CODE,
    UNKNOWN_REASON_CODE,
    Category,
    Device,
    DeviceStatus,
    ErrorKind,
)
from collector.history.schema import REASON_CODE_BITS, json_entries
from collector.history.store import MAX_OFFSET, buffer_label

if TYPE_CHECKING:
    from collector.history.store import Store

_BUCKET_SECONDS = {TrendInterval.HOUR: 3600, TrendInterval.DAY: 86400}
_TWO_DAYS = 2 * 86400
_CATEGORY_ORDER = {category: index for index, category in enumerate(Category)}
_CODE_CATEGORY: tuple[Category, ...] = tuple(
    (REASON_BY_CODE[code].category if code in REASON_BY_CODE else Category.UNKNOWN)
    for code, _bit in sorted(REASON_CODE_BITS.items(), key=lambda item: item[1])
)
"""Category of each bit of ``roll_device.codes``."""
_CODES_OR = " | ".join(f"max(codes & {1 << bit})" for bit in range(len(REASON_CODE_BITS)))
"""Bitwise OR of ``codes`` over a group (no bit_or aggregate in SQLite): OR of per-bit max."""


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


def _by_code(
    per_text: Counter[int], reasons: dict[int, _ReasonInfo], devices: Counter[str]
) -> tuple[ReasonCount, ...]:
    """Fold counts per reason text into ReasonCounts per code (:func:`reason_counts`)."""
    return reason_counts(
        (
            (reasons[reason_id].code, reasons[reason_id].category, reasons[reason_id].text, count)
            for reason_id, count in per_text.items()
        ),
        devices,
    )


def _devices_by_code(masks: Iterable[int]) -> Counter[str]:
    """How many devices' bit sets of reason codes hold each code."""
    listed = list(masks)
    return Counter(
        {
            code: sum(1 for mask in listed if mask >> bit & 1)
            for code, bit in REASON_CODE_BITS.items()
        }
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


_DAY = 86400
_HOUR = 3600
_MAX_LISTED_DEVICES = 5000
"""Above this many devices a query names them with a sub-select, not parameters."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which whole UTC days the roll-ups answer, and which instants need raw rows.

    A window ``[since, until)`` is split into the whole days inside it, read from the
    roll-ups, and at most two partial days at its edges, read from ``deletions`` through
    per-device ``(device_id, t_local)`` ranges: windows are exact to the second.
    """

    days: str
    """SQL condition on the roll-ups' ``day`` column."""
    day_params: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    """``[low, high)`` UTC seconds read from the raw rows."""
    middle: tuple[int | None, int | None] | None = None
    """``[low, high)`` UTC seconds of the whole days (None: unbounded); None: no days."""

    @classmethod
    def of(cls, since: int | None, until: int | None) -> _Plan:
        first = None if since is None else -(-since // _DAY)
        last = None if until is None else until // _DAY
        if since is not None and until is not None and -(-since // _DAY) >= until // _DAY:
            # Less than a whole day inside the window: all of it from raw rows.
            return cls("1 = 0", (), ((since, until),) if since < until else (), None)
        clauses: list[str] = []
        params: list[int] = []
        edges: list[tuple[int, int]] = []
        if since is not None and first is not None:
            clauses.append("day >= ?")
            params.append(first)
            if since < first * _DAY:
                edges.append((since, first * _DAY))
        if until is not None and last is not None:
            clauses.append("day < ?")
            params.append(last)
            if last * _DAY < until:
                edges.append((last * _DAY, until))
        middle = (
            None if first is None else first * _DAY,
            None if last is None else last * _DAY,
        )
        return cls(" AND ".join(clauses) or "1 = 1", tuple(params), tuple(edges), middle)


def raw_range(
    low: int | None, high: int | None, devices: Sequence[int] | None = None
) -> tuple[str, tuple[int, ...]]:
    """SQL over ``deletions`` for ``low <= t_utc < high``, using the clustered key.

    The table is clustered on (device_id, t_local, ...): naming the devices (all, or
    ``devices``) and a local-time range widened by the largest UTC offset lets the
    database seek per device instead of reading every row; t_utc then makes it exact.
    """
    clauses: list[str] = []
    params: list[int] = []
    if devices is not None and len(devices) <= _MAX_LISTED_DEVICES:
        clauses.append(f"device_id IN ({', '.join('?' * len(devices))})")
        params += devices
    elif low is not None or high is not None:
        clauses.append("device_id IN (SELECT id FROM devices)")
    if low is not None:
        clauses += ["t_local >= ?", "t_utc >= ?"]
        params += [low - MAX_OFFSET, low]
    if high is not None:
        clauses += ["t_local < ?", "t_utc < ?"]
        params += [high + MAX_OFFSET, high]
    return " AND ".join(clauses) or "1 = 1", tuple(params)


def _edge_rows(store: Store, plan: _Plan) -> list[tuple[int, int, int, int]]:
    """(device_id, peer_id, reason_id, t_utc) of every deletion in the plan's edges."""
    rows: list[tuple[int, int, int, int]] = []
    for low, high in plan.edges:
        where, params = raw_range(low, high)
        rows += store.fetch(
            f"SELECT device_id, peer_id, reason_id, t_utc FROM deletions WHERE {where}", params
        )
    return rows


@dataclass(frozen=True, slots=True)
class _ReasonInfo:
    text: str
    code: str
    category: Category


def _reasons(store: Store) -> dict[int, _ReasonInfo]:
    return {
        int(reason_id): _ReasonInfo(str(text), str(code), _category(str(category)))
        for reason_id, text, code, category in store.fetch(
            "SELECT id, reason, reason_code, category FROM reasons"
        )
    }


def _peer_texts(store: Store, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    if len(wanted) > 500:
        rows = store.fetch("SELECT id, peer FROM peers")
    else:
        marks = ", ".join("?" * len(wanted))
        rows = store.fetch(f"SELECT id, peer FROM peers WHERE id IN ({marks})", wanted)
    return {int(peer_id): str(peer) for peer_id, peer in rows}


def _trend(
    store: Store,
    plan: _Plan,
    edges: list[tuple[int, int, int, int]],
    span: int,
    interval: TrendInterval | str | None,
) -> tuple[TrendInterval, tuple[TrendBucket, ...]]:
    if interval is None:
        chosen = TrendInterval.HOUR if span <= _TWO_DAYS else TrendInterval.DAY
    else:
        chosen = TrendInterval(interval)
    counts: Counter[int] = Counter()
    if chosen is TrendInterval.DAY:
        for day, count in store.fetch(
            f"SELECT day, sum(n) FROM roll_device WHERE {plan.days} GROUP BY day",
            plan.day_params,
        ):
            counts[int(day)] += int(count)
        for *_, moment in edges:
            counts[moment // _DAY] += 1
    else:
        # Hours are finer than the roll-ups: the edge rows are at hand; the whole days
        # are counted from raw rows (per-device ranges when the window has a start; a
        # whole-history hourly trend scans the table).
        for *_, moment in edges:
            counts[moment // _HOUR] += 1
        if plan.middle is not None:
            where, params = raw_range(*plan.middle)
            for hour, count in store.fetch(
                f"SELECT t_utc / {_HOUR} AS hour, count(*) FROM deletions WHERE {where} "
                "GROUP BY hour",
                params,
            ):
                counts[int(hour)] += int(count)
    width = _BUCKET_SECONDS[chosen]
    buckets = tuple(
        TrendBucket(datetime.fromtimestamp(bucket * width, UTC), count)
        for bucket, count in sorted(counts.items())
        if count
    )
    return chosen, buckets


def disruptive_rows(
    store: Store, since: int | None, until: int | None, reasons: dict[int, _ReasonInfo]
) -> list[tuple[int, int, int, int]]:
    """(device_id, peer_id, reason_id, t_utc) of the window's disruptive deletions.

    Read from the raw rows (the roll-ups do not split a peer's count by reason), through
    per-device (device_id, t_local) ranges, in the table's order (device, local time).
    """
    wanted = sorted(rid for rid, info in reasons.items() if not info.category.routine)
    if not wanted:
        return []
    where, params = raw_range(since, until)
    marks = ", ".join("?" * len(wanted))
    rows = store.fetch(
        f"SELECT device_id, peer_id, reason_id, t_utc FROM deletions WHERE {where} "
        f"AND reason_id IN ({marks})",
        (*params, *wanted),
    )
    return rows


def _events(
    store: Store,
    rows: Sequence[tuple[int, int, int, int]],
    devices: Sequence[_Device],
    reasons: dict[int, _ReasonInfo],
    thresholds: Thresholds,
    book: Mapping[str, str],
) -> list[Event]:
    """The disruptive rows that can matter to incidents, as events (names, UTC times)."""
    names = {device.id: device.name for device in devices}
    paired: list[int] = []
    if book:
        addresses = sorted(book)
        for start in range(0, len(addresses), 500):
            chunk = addresses[start : start + 500]
            paired += [
                int(peer_id)
                for (peer_id,) in store.fetch(
                    f"SELECT id FROM peers WHERE peer IN ({', '.join('?' * len(chunk))})", chunk
                )
            ]
    peers, keep = relevant_keys(map(_DEVICE_PEER, rows), thresholds, paired)
    wanted = [row for row in rows if row[1] in peers or row[0] in keep]
    texts = _peer_texts(store, {peer_id for _, peer_id, _, _ in wanted})
    return [
        Event(
            names[device_id],
            texts[peer_id],
            reasons[reason_id].code,
            reasons[reason_id].text,
            reasons[reason_id].category,
            moment,
        )
        for device_id, peer_id, reason_id, moment in wanted
        if device_id in names
    ]


_DEVICE_PEER = itemgetter(0, 1)


def _flap_values(
    candidates: Sequence[int],
    texts: Mapping[int, str],
    counts: Mapping[int, int],
    devices: Mapping[int, set[int]],
    by_reason: Mapping[int, Counter[str]],
    newest: Mapping[int, int],
) -> tuple[PeerFlap, ...]:
    """The listed peers as PeerFlap values (reasons most frequent first)."""
    return tuple(
        PeerFlap(
            peer=texts[peer_id],
            deletions=counts[peer_id],
            devices=len(devices[peer_id]),
            reasons=tuple(
                code for code, _ in sorted(by_reason[peer_id].items(), key=lambda i: (-i[1], i[0]))
            ),
            last_seen=datetime.fromtimestamp(newest[peer_id], UTC),
        )
        for peer_id in candidates
    )


def _flaps_from_rows(
    store: Store,
    rows: Sequence[tuple[int, int, int, int]],
    threshold: int,
    top: int | None,
    reasons: dict[int, _ReasonInfo],
) -> tuple[PeerFlap, ...]:
    """Flapping peers counted over ``rows`` (the disruptive deletions of the window).

    Counted with ``Counter`` over picked columns (the loop runs in C); reasons and the
    newest deletion only for the few listed peers.
    """
    counts: Counter[int] = Counter(map(itemgetter(1), rows))
    candidates = [peer_id for peer_id, count in counts.items() if count >= threshold]
    if not candidates:
        return ()
    listed = set(candidates)
    devices: defaultdict[int, set[int]] = defaultdict(set)
    for peer_id, device_id in set(map(itemgetter(1, 0), rows)):
        if peer_id in listed:
            devices[peer_id].add(device_id)
    texts = _peer_texts(store, candidates)
    candidates.sort(key=lambda p: (-counts[p], -len(devices[p]), texts[p]))
    if top is not None:
        candidates = candidates[: max(top, 0)]
    listed = set(candidates)
    by_reason: defaultdict[int, Counter[str]] = defaultdict(Counter)
    newest: dict[int, int] = {}
    for _device, peer_id, reason_id, moment in rows:
        if peer_id in listed:
            by_reason[peer_id][reasons[reason_id].code] += 1
            if moment > newest.get(peer_id, -1):
                newest[peer_id] = moment
    return _flap_values(candidates, texts, counts, devices, by_reason, newest)


def _series(
    store: Store,
    plan: _Plan,
    edges: list[tuple[int, int, int, int]],
    since: int | None,
    until: int | None,
    interval: TrendInterval,
    devices: Sequence[_Device],
    reasons: dict[int, _ReasonInfo],
) -> Series:
    """Deletions per bucket by category and by device: daily from the roll-ups and the
    edges, hourly from the raw rows of the window."""
    names = {device.id: device.name for device in devices}
    by_category: Counter[tuple[int, Category]] = Counter()
    by_device: Counter[tuple[int, int]] = Counter()
    if interval is TrendInterval.DAY:
        for device_id, day, count in store.fetch(
            f"SELECT device_id, day, sum(n) FROM roll_device WHERE {plan.days} "
            "GROUP BY device_id, day",
            plan.day_params,
        ):
            by_device[(int(device_id), int(day))] += int(count)
        for day, reason_id, count in store.fetch(
            f"SELECT day, reason_id, sum(n) FROM roll_reason WHERE {plan.days} "
            "GROUP BY day, reason_id",
            plan.day_params,
        ):
            by_category[(int(day), reasons[int(reason_id)].category)] += int(count)
        for device_id, _peer, reason_id, moment in edges:
            by_device[(device_id, moment // _DAY)] += 1
            by_category[(moment // _DAY, reasons[reason_id].category)] += 1
    else:
        where, params = raw_range(since, until)
        for hour, device_id, reason_id, count in store.fetch(
            f"SELECT t_utc / {_HOUR} AS hour, device_id, reason_id, count(*) FROM deletions "
            f"WHERE {where} GROUP BY hour, device_id, reason_id",
            params,
        ):
            by_device[(int(device_id), int(hour))] += int(count)
            by_category[(int(hour), reasons[int(reason_id)].category)] += int(count)
    width = _BUCKET_SECONDS[interval]

    def start(bucket: int) -> datetime:
        return datetime.fromtimestamp(bucket * width, UTC)

    return series_of(
        Counter({(start(b), category): n for (b, category), n in by_category.items()}),
        Counter(
            {
                (names[device_id], start(b)): n
                for (device_id, b), n in by_device.items()
                if device_id in names
            }
        ),
    )


def _peers(
    store: Store,
    plan: _Plan,
    edges: list[tuple[int, int, int, int]],
    since: int | None,
    until: int | None,
    threshold: int,
    top: int | None,
    reasons: dict[int, _ReasonInfo],
    every: bool,
) -> tuple[int, tuple[PeerFlap, ...], list[tuple[str, int, int]]]:
    """Distinct peers, the flapping ones (all reasons), and (peer, deletions, devices)."""
    counts: Counter[int] = Counter()
    devices: defaultdict[int, set[int]] = defaultdict(set)
    entries, key, value = json_entries("r.peers", store.dialect)
    for peer_id, device_id, count in store.fetch(
        f"SELECT {key} AS peer_id, r.device_id, sum({value}) FROM roll_device r, {entries} "
        f"WHERE {plan.days} GROUP BY peer_id, r.device_id",
        plan.day_params,
    ):
        counts[int(peer_id)] += int(count)
        devices[int(peer_id)].add(device_id)
    for device_id, peer_id, _reason, _moment in edges:
        counts[peer_id] += 1
        devices[peer_id].add(device_id)
    candidates = [peer_id for peer_id, count in counts.items() if count >= threshold]
    texts = _peer_texts(store, counts if every else candidates)
    candidates.sort(key=lambda p: (-counts[p], -len(devices[p]), texts[p]))
    if top is not None:
        candidates = candidates[: max(top, 0)]
    by_reason: defaultdict[int, Counter[str]] = defaultdict(Counter)
    newest: dict[int, int] = {}
    if candidates:
        # Reasons and last deletion of the few listed peers: from the raw rows of the
        # devices that saw them (known from the roll-up), through (device, time) ranges.
        seen_by = sorted(set().union(*(devices[peer_id] for peer_id in candidates)))
        where, params = raw_range(since, until, seen_by)
        marks = ", ".join("?" * len(candidates))
        for peer_id, reason_id, count, moment in store.fetch(
            "SELECT peer_id, reason_id, count(*), max(t_utc) FROM deletions "
            f"WHERE {where} AND peer_id IN ({marks}) GROUP BY peer_id, reason_id",
            (*params, *candidates),
        ):
            by_reason[int(peer_id)][reasons[int(reason_id)].code] += int(count)
            newest[int(peer_id)] = max(newest.get(int(peer_id), -1), int(moment))
    flaps = _flap_values(candidates, texts, counts, devices, by_reason, newest)
    listing = (
        [(texts[p], count, len(devices[p])) for p, count in counts.items() if count]
        if every
        else []
    )
    return sum(1 for count in counts.values() if count), flaps, listing


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
        "SELECT v.name, g.missing_since_utc, g.missing_until_utc, r.started, g.slot, g.cpu "
        "FROM gaps g JOIN devices v ON v.id = g.device_id LEFT JOIN runs r ON r.id = g.run_id "
        f"WHERE {where} ORDER BY g.id",
        params,
    )
    return tuple(
        GapSummary(name, _utc(since), _utc(until), _utc(started), buffer_label(slot, cpu))
        for name, since, until, started, slot, cpu in rows
    )


def history_report(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    generated_at: datetime | None = None,
    group_by: GroupBy | str | None = None,
    flap_threshold: int | None = None,
    top: int | None = 10,
    trend_interval: TrendInterval | str | None = None,
    include_routine: bool = False,
    thresholds: Thresholds | None = None,
    addresses: Mapping[str, str] | None = None,
    series: bool = False,
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
        include_routine: Flapping peers count routine deletions too (rekeys, HA); by
            default they count the disruptive ones only, read from the raw rows.
        thresholds: When the window's disruptive deletions make an incident.
        addresses: Address -> device name for both-ends pairing (``report --inventory``);
            None: the stored hostnames that are IP addresses.
        series: Also count deletions per bucket by category and device (HTML charts).

    Returns:
        A FleetReport: devices (every known device, its latest status, its deletions in
        the window, those new in its latest run), by reason/category/dimension, flapping
        peers, trend, gaps overlapping the window, devices whose latest collection failed.
    """
    generated_at = datetime.now(UTC) if generated_at is None else generated_at
    flap_threshold = DEFAULT_FLAP_THRESHOLD if flap_threshold is None else flap_threshold
    thresholds = DEFAULT_THRESHOLDS if thresholds is None else thresholds
    since_s = None if since is None else int(since.timestamp())
    until_s = None if until is None else int(until.timestamp())
    plan = _Plan.of(since_s, until_s)
    devices = _devices(store)
    reasons = _reasons(store)
    edges = _edge_rows(store, plan)

    # Per device: whole days from the roll-up (summed in SQL), edge rows folded in.
    per_device: Counter[int] = Counter()
    newest_by_device: dict[int, int] = {}
    codes_by_device: Counter[int] = Counter()
    low, high = None, None
    for device_id, count, newest, oldest, codes in store.fetch(
        f"SELECT device_id, sum(n), max(newest), min(oldest), {_CODES_OR} FROM roll_device "
        f"WHERE {plan.days} GROUP BY device_id",
        plan.day_params,
    ):
        per_device[device_id] = int(count)
        codes_by_device[device_id] = int(codes)
        newest_by_device[device_id] = int(newest)
        high = int(newest) if high is None else max(high, int(newest))
        low = int(oldest) if low is None else min(low, int(oldest))
    per_text: Counter[int] = Counter()
    for reason_id, count in store.fetch(
        f"SELECT reason_id, sum(n) FROM roll_reason WHERE {plan.days} GROUP BY reason_id",
        plan.day_params,
    ):
        per_text[int(reason_id)] = int(count)
    for device_id, _peer, reason_id, moment in edges:
        per_device[device_id] += 1
        per_text[reason_id] += 1
        codes_by_device[device_id] |= 1 << REASON_CODE_BITS[reasons[reason_id].code]
        if moment > newest_by_device.get(device_id, -1):
            newest_by_device[device_id] = moment
        high = moment if high is None else max(high, moment)
        low = moment if low is None else min(low, moment)
    # Devices per reason code, from each device's bit set of codes seen in the window.
    reason_rows = _by_code(per_text, reasons, _devices_by_code(codes_by_device.values()))
    per_category: Counter[Category] = Counter()
    unknown: Counter[str] = Counter()
    for reason_id, count in per_text.items():
        info = reasons[reason_id]
        per_category[info.category] += count
        if info.code == UNKNOWN_REASON_CODE:
            unknown[info.text] += count

    # New deletions: first seen in each device's latest run (several collector hosts
    # may write one database, each with its own runs).
    latest_runs = (
        "FROM device_runs d JOIN devices v ON v.id = d.device_id AND v.last_run = d.run_id"
    )
    new_per_device: Counter[int] = Counter()
    new_masks: list[int] = []
    for device_id, count, codes in store.fetch(
        f"SELECT d.device_id, d.new_records, d.new_codes {latest_runs}"
    ):
        new_per_device[int(device_id)] += int(count)
        new_masks.append(int(codes))
    new_text: Counter[int] = Counter()
    entries, key, value = json_entries("d.new_reasons", store.dialect)
    for reason_id, count in store.fetch(
        f"SELECT {key} AS reason_id, sum({value}) {latest_runs}, {entries} "
        "WHERE d.new_reasons IS NOT NULL GROUP BY reason_id"
    ):
        new_text[int(reason_id)] = int(count)
    new_rows = _by_code(new_text, reasons, _devices_by_code(new_masks))

    dimension = None if group_by is None else GroupBy(group_by)
    peer_total, flaps, every_peer = _peers(
        store,
        plan,
        edges,
        since_s,
        until_s,
        flap_threshold,
        top if include_routine else 0,  # else counted over the disruptive rows below
        reasons,
        dimension is GroupBy.PEER,
    )
    rows = disruptive_rows(store, since_s, until_s, reasons)
    if not include_routine:
        flaps = _flaps_from_rows(store, rows, flap_threshold, top, reasons)
    book = (
        dict(addresses)
        if addresses is not None
        else address_book(Device(d.name, d.hostname) for d in devices)
    )
    events = sort_events(_events(store, rows, devices, reasons, thresholds, book))
    disruptive_per_device = Counter(map(itemgetter(0), rows))
    span = 0 if low is None or high is None else high - low
    interval, trend = _trend(store, plan, edges, span, trend_interval)
    gaps = _gaps(store, since, until)

    breakdown: GroupBreakdown | None = None
    if dimension is not None:
        if dimension in (GroupBy.DEVICE, GroupBy.SITE, GroupBy.GROUP):
            breakdown = _device_breakdown(devices, per_device, dimension)
        elif dimension is GroupBy.PEER:
            breakdown = GroupBreakdown(
                dimension,
                _sorted_counts(GroupCount(peer, count, seen) for peer, count, seen in every_peer),
            )
        elif dimension is GroupBy.REASON:
            breakdown = GroupBreakdown(
                dimension,
                _sorted_counts(GroupCount(r.reason_code, r.count, r.devices) for r in reason_rows),
            )
        else:
            members: defaultdict[str, int] = defaultdict(int)
            for mask in codes_by_device.values():
                seen = {
                    _CODE_CATEGORY[bit] for bit in range(len(_CODE_CATEGORY)) if mask >> bit & 1
                }
                for category in seen:
                    members[category.value] += 1
            breakdown = GroupBreakdown(
                dimension,
                _sorted_counts(
                    GroupCount(category.value, count, members[category.value])
                    for category, count in per_category.items()
                ),
            )

    summaries = tuple(
        DeviceSummary(
            name=device.name,
            hostname=device.hostname,
            site=device.site,
            status=device.status,
            records=per_device[device.id],
            newest_deletion=_utc(newest_by_device.get(device.id)),
            error_kind=device.error_kind,
            error_message=device.error_message,
            groups=device.groups,
            new_records=new_per_device[device.id],
            disruptive_records=disruptive_per_device[device.id],
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
        by_reason=reason_rows,
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
            routine=sum(count for category, count in per_category.items() if category.routine),
            new_routine=sum(
                count for rid, count in new_text.items() if reasons[rid].category.routine
            ),
        ),
        by_group=breakdown,
        trend_interval=interval,
        gaps=gaps,
        failing=failing,
        unknown_reasons=unknown_list,
        new_by_reason=new_rows,
        flap_threshold=flap_threshold,
        run_started=_utc(last_run[0][0]) if last_run else None,
        run_finished=_utc(last_run[0][1]) if last_run else None,
        last_success=_utc(last_success),
        include_routine=include_routine,
        incidents=find_incidents(events, book, thresholds, ordered=True),
        pairs=pair_tunnels(events, book, thresholds.pair_window, ordered=True),
        thresholds=thresholds,
        series=(
            _series(store, plan, edges, since_s, until_s, interval, devices, reasons)
            if series
            else None
        ),
    )
