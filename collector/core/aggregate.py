"""The fleet report: plain values, and the pure aggregation of one run's results.

Two producers fill the same dataclasses: :class:`RunFold` (and :func:`aggregate`, the
fold over a list), one ``DeviceResult`` of a ``collect`` run at a time, and the store's
SQL queries for ``report --since`` over history. ``collector.output.render`` renders
either the same way.
Nothing here touches a file, a socket or the clock (``generated_at`` is passed in).

Size: over 500 lines because it holds both the report's value types (every section of
:class:`FleetReport`) and the single-run fold that fills them.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from operator import attrgetter, itemgetter

from collector.core.clock import ZoneError, resolve_zone, to_utc
from collector.core.incidents import (
    DEFAULT_THRESHOLDS,
    Event,
    Incident,
    Thresholds,
    TunnelPair,
    _epoch_seconds,
    address_book,
    find_incidents,
    keys_to_keep,
    pair_tunnels,
    sort_events,
)
from collector.core.records import (
    UNKNOWN_REASON_CODE,
    Category,
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)


class GroupBy(StrEnum):
    """The dimensions ``--group-by`` can break deletions down by."""

    DEVICE = "device"
    SITE = "site"
    GROUP = "group"
    REASON = "reason"
    CATEGORY = "category"
    PEER = "peer"


class TrendInterval(StrEnum):
    """Width of a trend bucket."""

    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """One device's line in the fleet report."""

    name: str
    hostname: str
    site: str | None
    status: DeviceStatus
    records: int
    """How many deletions the device reported (run) or has in the window (history)."""
    newest_deletion: datetime | None
    """The most recent ``offline_time`` among them (device-local for a run, UTC in history)."""
    error_kind: ErrorKind | None = None
    error_message: str | None = None
    groups: tuple[str, ...] = ()
    new_records: int | None = None
    """Deletions not seen in any earlier run (history only; None when unknown)."""
    listing: tuple[OfflineRecord, ...] = ()
    """The records themselves, for ``--records`` and the JSON ``records`` list.

    Filled by :func:`aggregate`; the store fills it only when a listing is asked for.
    """
    disruptive_records: int | None = None
    """How many of ``records`` are disruptive (not ``Category.routine``); None: unknown."""


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """Deletions with one reason code."""

    reason_code: str
    category: Category
    count: int
    example: str
    """The reason as one device printed it (``dpd-timeout``, ``dpd timeout`` ...)."""
    devices: int = 0
    """How many devices reported at least one such deletion."""


@dataclass(frozen=True, slots=True)
class CategoryCount:
    """Deletions in one category."""

    category: Category
    count: int


@dataclass(frozen=True, slots=True)
class UnknownReason:
    """A reason text the taxonomy does not know, verbatim, with its count."""

    text: str
    count: int


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Deletions for one value of the ``--group-by`` dimension."""

    key: str | None
    """The device name, site, group, reason code, category or peer; None: no site."""
    deletions: int
    devices: int
    """Devices contributing (for ``device`` always 1; for ``peer`` devices that saw it)."""
    devices_failed: int = 0
    """Devices of this key that failed to collect (device, site and group dimensions)."""


@dataclass(frozen=True, slots=True)
class GroupBreakdown:
    """The deletions broken down by one dimension."""

    dimension: GroupBy
    counts: tuple[GroupCount, ...]


@dataclass(frozen=True, slots=True)
class PeerFlap:
    """A peer whose tunnels went down repeatedly."""

    peer: str
    deletions: int
    devices: int
    """How many devices saw this peer go down."""
    reasons: tuple[str, ...]
    """Reason codes, most frequent first."""
    last_seen: datetime
    """The newest ``offline_time`` for this peer."""


@dataclass(frozen=True, slots=True)
class TrendBucket:
    """Deletions whose ``offline_time`` falls in ``[start, start + interval)``."""

    start: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Series:
    """Deletions per trend bucket by category and by device, for the HTML report's charts.

    Buckets are UTC in both reports (a run's device-local times converted with each
    device's zone), so incidents (UTC) sit on the same time axis.
    """

    by_category: tuple[tuple[datetime, Category, int], ...]
    """(bucket start, category, deletions), by start then category."""
    by_device: tuple[tuple[str, datetime, int], ...]
    """(device, bucket start, deletions), by device then start."""


@dataclass(frozen=True, slots=True)
class GapSummary:
    """A window in which a device's buffer wrapped and deletions may be lost."""

    device: str
    missing_since: datetime | None
    """The newest deletion stored before the gap (UTC)."""
    missing_until: datetime | None
    """The oldest deletion of the snapshot that showed the gap (UTC)."""
    detected_at: datetime | None = None
    """When the run that found the gap started (UTC)."""
    buffer: str | None = None
    """Which of the device's buffers wrapped (``slot 3``, ``slot 1 cpu 0``); None on a
    device with one buffer."""


@dataclass(frozen=True, slots=True)
class DeviceFailure:
    """A device that could not be read."""

    name: str
    hostname: str
    error_kind: ErrorKind
    error_message: str
    last_success: datetime | None = None
    """Last time the device was read (history only)."""


@dataclass(frozen=True, slots=True)
class Totals:
    """The headline numbers."""

    devices: int
    devices_ok: int
    devices_failed: int
    records: int
    peers: int
    """Distinct peers among the records."""
    unknown_reasons: int = 0
    """Records whose reason the taxonomy does not know."""
    new_records: int | None = None
    """Deletions first seen in the latest run (history only; None when unknown)."""
    gaps: int = 0
    routine: int = 0
    """Routine deletions among ``records`` (rekeys, HA housekeeping: ``Category.routine``)."""
    new_routine: int | None = None
    """Routine deletions among ``new_records`` (None when unknown)."""

    @property
    def disruptive(self) -> int:
        """Deletions that mean a tunnel went down: ``records`` less the routine ones."""
        return self.records - self.routine

    @property
    def new_disruptive(self) -> int | None:
        if self.new_records is None:
            return None
        return self.new_records - (self.new_routine or 0)


class Dimension(StrEnum):
    REASON = "reason"
    CATEGORY = "category"
    SITE = "site"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Change:
    dimension: Dimension
    key: str | None
    """Reason code, category, site (None: no site) or device name."""
    before: int
    now: int
    routine: bool = False
    """A routine reason or category (rekeys, HA): a rise there is not an outage."""

    @property
    def change(self) -> int:
        return self.now - self.before

    @property
    def percent(self) -> float | None:
        """The change relative to before; None when there was nothing before."""
        if self.before == 0:
            return None
        return 100.0 * self.change / self.before


@dataclass(frozen=True, slots=True)
class Comparison:
    since: datetime | None
    until: datetime | None
    """The other window (UTC)."""
    before: int
    """Headline deletions in the other window (disruptive unless --include-routine)."""
    now: int
    changes: tuple[Change, ...]
    """Every dimension's rows, disruptive ones that got worse first (see :func:`compare`)."""

    @property
    def change(self) -> int:
        return self.now - self.before


@dataclass(frozen=True, slots=True)
class FleetReport:
    """Everything the fleet report shows, from one run or from history."""

    generated_at: datetime
    """When the report was made (UTC, aware); passed in, never read from a clock here."""
    window_since: datetime | None
    window_until: datetime | None
    devices: tuple[DeviceSummary, ...]
    by_reason: tuple[ReasonCount, ...]
    by_category: tuple[CategoryCount, ...]
    top_peers: tuple[PeerFlap, ...]
    trend: tuple[TrendBucket, ...]
    totals: Totals
    by_group: GroupBreakdown | None = None
    trend_interval: TrendInterval = TrendInterval.DAY
    gaps: tuple[GapSummary, ...] = ()
    failing: tuple[DeviceFailure, ...] = ()
    unknown_reasons: tuple[UnknownReason, ...] = ()
    new_by_reason: tuple[ReasonCount, ...] = ()
    """Deletions first seen in the latest run, by reason (history; empty when unknown)."""
    flap_threshold: int = 2
    run_started: datetime | None = None
    """Start of the run this report covers (UTC), when it covers one."""
    run_finished: datetime | None = None
    last_success: datetime | None = None
    """End of the latest run that read at least one device (UTC)."""
    local_times: bool = False
    """Device-level times (newest deletion, gaps, last read) are in each device's own
    zone, with its offset (``--local-times``); otherwise every time is UTC."""
    include_routine: bool = False
    """``--include-routine``: flapping peers and headline counts include routine deletions."""
    incidents: tuple[Incident, ...] = ()
    """Disruptive deletions clustered in time (``collector.core.incidents``), oldest first."""
    pairs: tuple[TunnelPair, ...] = ()
    """Both ends of tunnels whose two devices are in the inventory, oldest first."""
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    """The incident thresholds used."""
    comparison: Comparison | None = None
    """``report --compare-to``: this window against another (``collector.core.compare``)."""
    series: Series | None = None
    """Per-bucket counts by category and device (made when asked: ``--format html``)."""

    @property
    def run_duration_seconds(self) -> float | None:
        if self.run_started is None or self.run_finished is None:
            return None
        return (self.run_finished - self.run_started).total_seconds()


DEFAULT_TOP = 10
DEFAULT_FLAP_THRESHOLD = 2
"""A peer that went down once is not flapping; twice in one buffer is worth a look."""
_CATEGORY_ORDER = {category: index for index, category in enumerate(Category)}


def choose_trend_interval(times: Iterable[datetime]) -> TrendInterval:
    """Hourly buckets for up to two days of data, daily beyond.

    Examples:
        >>> from datetime import datetime
        >>> choose_trend_interval([datetime(2024, 1, 1), datetime(2024, 1, 2)])
        <TrendInterval.HOUR: 'hour'>
        >>> choose_trend_interval([datetime(2024, 1, 1), datetime(2024, 1, 9)])
        <TrendInterval.DAY: 'day'>
    """
    moments = list(times)
    if moments and max(moments) - min(moments) <= timedelta(days=2):
        return TrendInterval.HOUR
    return TrendInterval.DAY


def bucket_start(moment: datetime, interval: TrendInterval) -> datetime:
    """The start of the trend bucket holding ``moment`` (keeps its tzinfo, or lack of it).

    Examples:
        >>> from datetime import datetime
        >>> bucket_start(datetime(2024, 5, 1, 13, 45, 2), TrendInterval.HOUR)
        datetime.datetime(2024, 5, 1, 13, 0)
        >>> bucket_start(datetime(2024, 5, 1, 13, 45, 2), TrendInterval.DAY)
        datetime.datetime(2024, 5, 1, 0, 0)
    """
    if interval is TrendInterval.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def device_zone(result: DeviceResult) -> tzinfo:
    """The zone of a device's offline times: the inventory's ``data.timezone``, else the
    offset ``display clock`` printed, else UTC (as the store resolves it)."""
    text = result.device.data.get("timezone")
    try:
        return resolve_zone(None if text is None else str(text), result.device_clock)[0]
    except ZoneError:
        return UTC  # refused before connecting by the CLI; a library caller's own choice


def _summary(result: DeviceResult, zone: tzinfo, *, listing: bool) -> DeviceSummary:
    device = result.device
    error = result.error
    newest = max(map(_TIME, result.records), default=None)
    return DeviceSummary(
        name=device.name,
        hostname=device.hostname,
        site=device.site,
        status=result.status,
        records=len(result.records),
        newest_deletion=None if newest is None else to_utc(newest, zone),
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else error.message,
        groups=device.groups,
        listing=result.records if listing else (),
        disruptive_records=sum(1 for record in result.records if not record.category.routine),
    )


# The per-record work of a fleet report counts tuples picked from the records with
# ``Counter.update(map(getter, records))``: the counting loop runs in C, and Python only
# loops over distinct values. 200,000 records cost ~0.2 s this way, ~0.9 s record by record.
_TIME = attrgetter("offline_time")
_PEER = attrgetter("peer")
_REASON_KEY = attrgetter("reason_code", "category", "reason")
_PEER_CODE = attrgetter("peer", "reason_code")
_PEER_TIME = attrgetter("peer", "offline_time")
_HOUR_KEY = attrgetter("year", "month", "day", "hour", "tzinfo")
_EVENT_REASON = attrgetter("reason_code", "reason", "category")
_RECORD_DIMENSIONS = {
    GroupBy.REASON: attrgetter("reason_code"),
    GroupBy.CATEGORY: attrgetter("category.value"),
    GroupBy.PEER: _PEER,
}
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Tally:
    """Everything the report counts over records, by distinct value (one device at a time)."""

    reasons: Counter[tuple[str, Category, str]] = dataclasses.field(default_factory=Counter)
    """(reason code, category, reason text as printed) -> deletions."""
    reason_devices: Counter[str] = dataclasses.field(default_factory=Counter)
    """reason code -> devices that saw it."""
    peers: Counter[str] = dataclasses.field(default_factory=Counter)
    """peer -> deletions."""
    peer_devices: Counter[str] = dataclasses.field(default_factory=Counter)
    """peer -> devices that saw it."""
    peer_codes: Counter[int] = dataclasses.field(default_factory=Counter)
    """(peer, reason code) -> deletions, keyed ``peer_ids[peer] << 16 | codes[code]`` (an
    int costs half a tuple, and a large fleet has a few hundred thousand such pairs)."""
    peer_ids: dict[str, int] = dataclasses.field(default_factory=dict)
    codes: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, records: Sequence[OfflineRecord], *, reasons: bool, peers: bool) -> None:
        """Count one device's records: their reasons, their peers, or both."""
        if not records:
            return
        if reasons:
            by_reason = Counter(map(_REASON_KEY, records))
            self.reasons.update(by_reason)
            self.reason_devices.update({code for code, _, _ in by_reason})
        if peers:
            self._add_peers(records)

    def _add_peers(self, records: Sequence[OfflineRecord]) -> None:
        peers = Counter(map(_PEER, records))
        self.peers.update(peers)
        self.peer_devices.update(peers.keys())
        ids, codes, peer_codes = self.peer_ids, self.codes, self.peer_codes
        for (peer, code), count in Counter(map(_PEER_CODE, records)).items():
            peer_id = ids.get(peer)
            if peer_id is None:
                peer_id = ids[peer] = len(ids)
            code_id = codes.get(code)
            if code_id is None:
                code_id = codes[code] = len(codes)
            peer_codes[peer_id << 16 | code_id] += count

    def codes_of(self, peers: Iterable[str]) -> dict[str, dict[str, int]]:
        """Deletions by reason code of each of ``peers``."""
        wanted = {self.peer_ids[peer]: peer for peer in peers}
        names = list(self.codes)
        found: dict[str, dict[str, int]] = {peer: {} for peer in wanted.values()}
        for key, count in self.peer_codes.items():
            peer = wanted.get(key >> 16)
            if peer is not None:
                found[peer][names[key & 0xFFFF]] = count
        return found


def reason_counts(
    tallies: Iterable[tuple[str, Category, str, int]], devices: Mapping[str, int]
) -> tuple[ReasonCount, ...]:
    """Deletions per reason code, most first (ties: the code alphabetically).

    ``tallies`` holds ``(code, category, text as printed, count)``; ``devices`` the
    devices per code. ``example`` is the code's most frequent text; on a tie the first
    alphabetically. The one rule for a single run (:func:`aggregate`) and for the history
    (:func:`collector.history.report.history_report`, which cannot know which text a device
    printed first), so ``collect`` and ``report`` print the same text for the same data.

    Examples:
        >>> rows = reason_counts(
        ...     [("dpd_timeout", Category.LIVENESS, "dpd-timeout", 2),
        ...      ("dpd_timeout", Category.LIVENESS, "dpd timeout", 2)],
        ...     {"dpd_timeout": 1},
        ... )
        >>> [(row.reason_code, row.count, row.example, row.devices) for row in rows]
        [('dpd_timeout', 4, 'dpd timeout', 1)]
    """
    counts: Counter[str] = Counter()
    texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    categories: dict[str, Category] = {}
    for code, category, text, count in tallies:
        if not count:
            continue
        counts[code] += count
        texts[code][text] += count
        categories[code] = category
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(
        ReasonCount(
            reason_code=code,
            category=categories[code],
            count=count,
            example=min(texts[code].items(), key=lambda item: (-item[1], item[0]))[0],
            devices=devices.get(code, 0),
        )
        for code, count in ordered
    )


def _by_reason(tally: _Tally) -> tuple[ReasonCount, ...]:
    return reason_counts(
        ((code, category, text, count) for (code, category, text), count in tally.reasons.items()),
        tally.reason_devices,
    )


def _by_category(tally: _Tally) -> tuple[CategoryCount, ...]:
    counts: Counter[Category] = Counter()
    for (_, category, _), count in tally.reasons.items():
        counts[category] += count
    ordered = sorted(counts.items(), key=lambda item: (-item[1], _CATEGORY_ORDER[item[0]]))
    return tuple(CategoryCount(category, count) for category, count in ordered)


def _unknown_reasons(tally: _Tally) -> tuple[UnknownReason, ...]:
    counts: Counter[str] = Counter()
    for (code, _, text), count in tally.reasons.items():
        if code == UNKNOWN_REASON_CODE:
            counts[text] += count
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(UnknownReason(text, count) for text, count in ordered)


def _utc_hours(records: Sequence[OfflineRecord], zone: tzinfo) -> Iterable[tuple[datetime, int]]:
    """One device's deletions per UTC hour: its distinct local hours, shifted to UTC (a
    zone with a half-hour offset has its records shifted one by one)."""
    hours = Counter(map(_HOUR_KEY, map(_TIME, records)))
    shifted: list[tuple[datetime, int]] = []
    for (year, month, day, hour, _), count in hours.items():
        local = datetime(year, month, day, hour)
        offset = zone.utcoffset(local) or timedelta(0)
        if offset % _HOUR:
            return Counter(
                bucket_start(to_utc(moment, zone), TrendInterval.HOUR)
                for moment in map(_TIME, records)
            ).items()
        shifted.append(((local - offset).replace(tzinfo=UTC), count))
    return shifted


def series_of(
    categories: Counter[tuple[datetime, Category]], devices: Counter[tuple[str, datetime]]
) -> Series:
    """A :class:`Series` from counts keyed (start, category) and (device, start)."""
    return Series(
        by_category=tuple(
            (start, category, count)
            for (start, category), count in sorted(
                categories.items(), key=lambda item: (item[0][0], _CATEGORY_ORDER[item[0][1]])
            )
            if count
        ),
        by_device=tuple(
            (name, start, count) for (name, start), count in sorted(devices.items()) if count
        ),
    )


def _group_keys(result: DeviceResult, dimension: GroupBy) -> list[str | None]:
    """The keys a device falls under for the device-level dimensions."""
    device = result.device
    if dimension is GroupBy.DEVICE:
        return [device.name]
    if dimension is GroupBy.SITE:
        return [device.site]
    # GroupBy.GROUP: a device in two groups counts in both; a device in none under None.
    return list(dict.fromkeys(device.groups)) or [None]


def _sort_counts(counts: Iterable[GroupCount]) -> tuple[GroupCount, ...]:
    return tuple(
        sorted(counts, key=lambda item: (-item.deletions, item.key is None, item.key or ""))
    )


def _in_bursts(times: Sequence[float], peers: Sequence[int], thresholds: Thresholds) -> list[int]:
    """1 for each of one device's deletions in a cluster (neighbours at most ``gap``
    apart, as :func:`collector.core.incidents.find_incidents` clusters them) with at
    least ``burst_min`` distinct peers, else 0."""
    flags = [0] * len(times)
    gap = thresholds.gap.total_seconds()
    order = sorted(range(len(times)), key=times.__getitem__)
    cluster: list[int] = []
    for index in [*order, -1]:
        if index >= 0 and cluster and times[index] - times[cluster[-1]] <= gap:
            cluster.append(index)
            continue
        if len({peers[i] for i in cluster}) >= thresholds.burst_min:
            for member in cluster:
                flags[member] = 1
        cluster = [index]
    return flags


class _GroupFold:
    """The ``--group-by`` breakdown, one device at a time (see :func:`group_breakdown`)."""

    def __init__(self, dimension: GroupBy) -> None:
        self.dimension = dimension
        self.by_device = dimension in (GroupBy.DEVICE, GroupBy.SITE, GroupBy.GROUP)
        self.deletions: Counter[str | None] = Counter()
        self.members: defaultdict[str | None, set[str]] = defaultdict(set)
        self.failed: defaultdict[str | None, set[str]] = defaultdict(set)

    def add(self, result: DeviceResult) -> None:
        name = result.device.name
        if self.by_device:
            for key in _group_keys(result, self.dimension):
                self.deletions[key] += len(result.records)
                self.members[key].add(name)
                if not result.ok:
                    self.failed[key].add(name)
            return
        counts = Counter(map(_RECORD_DIMENSIONS[self.dimension], result.records))
        self.deletions.update(counts)
        for key in counts:
            self.members[key].add(name)

    def breakdown(self) -> GroupBreakdown:
        if self.by_device:
            counts = (
                GroupCount(key, self.deletions[key], len(names), len(self.failed[key]))
                for key, names in self.members.items()
            )
        else:
            counts = (
                GroupCount(key, count, len(self.members[key]))
                for key, count in self.deletions.items()
            )
        return GroupBreakdown(self.dimension, _sort_counts(counts))


def group_breakdown(results: Iterable[DeviceResult], dimension: GroupBy) -> GroupBreakdown:
    """Break one run's deletions down by ``dimension``.

    For ``device``, ``site`` and ``group`` every device appears (failed ones too, with
    their count in ``devices_failed``), even with no deletions; for ``reason``,
    ``category`` and ``peer`` only values that occur, with how many devices saw them.

    Args:
        results: One run's results.
        dimension: What to group by.

    Returns:
        The counts, most deletions first, then by key (None last).
    """
    fold = _GroupFold(GroupBy(dimension))
    for result in results:
        fold.add(result)
    return fold.breakdown()


class RunFold:
    """One run's fleet report, folded one device result at a time.

    :func:`aggregate` is this fold over a list; ``collect`` folds each result as it
    arrives and drops its records (``listing=False``), so a run's memory does not grow
    with its records. The state is compact: counters by distinct value, one summary per
    device, and for incidents and tunnel pairs one (interned key, UTC epoch) pair per
    disruptive deletion in arrays. Folding the same results in any order or split gives
    the same report: device-ordered sections are put back in ``rank`` order.
    """

    def __init__(
        self,
        *,
        top: int | None = DEFAULT_TOP,
        flap_threshold: int = DEFAULT_FLAP_THRESHOLD,
        group_by: GroupBy | str | None = None,
        trend_interval: TrendInterval | str | None = None,
        zone_of: Callable[[DeviceResult], tzinfo] = device_zone,
        include_routine: bool = False,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        series: bool = False,
        listing: bool = True,
    ) -> None:
        """Args as :func:`aggregate`'s; ``listing``: keep each device's records in its
        :attr:`DeviceSummary.listing` (False: the records are counted, then dropped).

        Raises:
            ValueError: ``group_by`` or ``trend_interval`` is not a known value.
        """
        self._top = top
        self._flap_threshold = flap_threshold
        self._group = None if group_by is None else _GroupFold(GroupBy(group_by))
        self._interval = None if trend_interval is None else TrendInterval(trend_interval)
        self._zone_of = zone_of
        self._include_routine = include_routine
        self._thresholds = thresholds
        self._listing = listing
        self._devices: list[tuple[int, DeviceSummary, Device]] = []
        self._started: datetime | None = None
        self._finished: datetime | None = None
        self._ok = 0
        self._records = 0
        self._span: list[datetime] = []
        """The oldest and newest offline time (as printed), for the trend's interval."""
        self._tally = _Tally()
        """Reasons over every record (with ``include_routine`` peers too)."""
        self._disruptive = _Tally()
        """Peers over the disruptive records: flapping peers by default, and incidents."""
        self._peer_tally = self._tally if include_routine else self._disruptive
        self._all_peers: set[str] | None = None if include_routine else set()
        """Every record's peer, for the totals (``_tally`` counts them with include_routine)."""
        self._last_seen: dict[str, tuple[float, datetime, tzinfo]] = {}
        """peer -> (UTC epoch, local time, zone) of its newest flapping-relevant deletion."""
        self._hours: Counter[datetime] = Counter()
        self._series: tuple[Counter[tuple[datetime, Category]], Counter[tuple[str, datetime]]]
        self._series = (Counter(), Counter())
        """(bucket, category) and (device, bucket) counts, in ``_series_interval`` buckets."""
        self._series_interval = TrendInterval.HOUR
        self._want_series = series
        self._peer_ids: dict[str, int] = {}
        """Peer -> its index in the event arrays (``_peers[index]``)."""
        self._peers: list[str] = []
        self._reason_ids: dict[tuple[str, str, Category], int] = {}
        """(reason code, reason as printed, category) -> index."""
        self._event_peer = array("I")
        self._event_reason = array("I")
        self._event_at = array("d")
        """One entry per disruptive deletion: peer, reason, UTC epoch."""
        self._event_burst = array("b")
        """1: in a cluster of its device's deletions (``gap`` apart) with at least
        ``burst_min`` distinct peers, so it can be part of a device burst."""
        self._event_slices: list[tuple[int, str, int, int]] = []
        """(rank, device, first, end) of each device's disruptive deletions in the arrays."""

    def add(self, result: DeviceResult, rank: int | None = None) -> DeviceSummary:
        """Fold one device's result in; ``rank``: its place in the run (default: next).

        Returns:
            The device's line of the report.
        """
        rank = len(self._devices) if rank is None else rank
        zone = self._zone_of(result)
        records = result.records
        summary = _summary(result, zone, listing=self._listing)
        self._devices.append((rank, summary, result.device))
        if result.started is not None and (self._started is None or result.started < self._started):
            self._started = result.started
        if result.finished is not None and (
            self._finished is None or result.finished > self._finished
        ):
            self._finished = result.finished
        self._ok += result.ok
        if self._group is not None:
            self._group.add(result)
        if not records:
            return summary
        self._records += len(records)
        times = list(map(_TIME, records))
        oldest, newest = min(times), max(times)
        self._span = (
            [min(oldest, self._span[0]), max(newest, self._span[1])]
            if self._span
            else [oldest, newest]
        )
        disruptive = [record for record in records if not record.category.routine]
        self._tally.add(records, reasons=True, peers=self._include_routine)
        self._disruptive.add(disruptive, reasons=False, peers=True)
        if self._all_peers is not None:
            self._all_peers.update(map(_PEER, records))
        peer_records = records if self._include_routine else disruptive
        epoch = _epoch_seconds(zone)
        # Sorted (peer, time) pairs into a dict: each peer keeps its latest time.
        for peer, local in dict(sorted(map(_PEER_TIME, peer_records))).items():
            at = epoch(local)
            seen = self._last_seen.get(peer)
            if seen is None or at > seen[0]:
                self._last_seen[peer] = (at, local, zone)
        for start, count in _utc_hours(records, zone):
            self._hours[start] += count
        if self._want_series:
            # Hourly until the records span more than two days: then the report's buckets
            # are days whatever comes (the span only grows), and so are these from now on.
            interval = self._interval or choose_trend_interval(self._span)
            if interval is not self._series_interval:
                self._series = self._series_in(interval)
                self._series_interval = interval
            categories, devices = self._series
            for record in records:
                start = bucket_start(to_utc(record.offline_time, zone), interval)
                categories[(start, record.category)] += 1
                devices[(result.device.name, start)] += 1
        self._add_events(result.device.name, rank, disruptive, epoch)
        return summary

    def _add_events(
        self,
        name: str,
        rank: int,
        disruptive: Sequence[OfflineRecord],
        epoch: Callable[[datetime], float],
    ) -> None:
        """One device's disruptive deletions as (peer, reason, time) in the arrays."""
        first = len(self._event_at)
        peer_ids, peers = self._peer_ids, self._peers
        for peer in map(_PEER, disruptive):
            index = peer_ids.get(peer)
            if index is None:
                index = peer_ids[peer] = len(peers)
                peers.append(peer)
            self._event_peer.append(index)
        reason_ids = self._reason_ids
        for reason in map(_EVENT_REASON, disruptive):
            index = reason_ids.get(reason)
            if index is None:
                index = reason_ids[reason] = len(reason_ids)
            self._event_reason.append(index)
        times = list(map(epoch, map(_TIME, disruptive)))
        self._event_at.extend(times)
        self._event_burst.extend(_in_bursts(times, self._event_peer[first:], self._thresholds))
        self._event_slices.append((rank, name, first, len(self._event_at)))

    def _events(self, book: Mapping[str, str]) -> list[Event]:
        """The disruptive deletions that can matter to incidents, in the run's order."""
        # A deletion matters if its peer may make an incident or a pair, or if it may be
        # part of a device burst (the flags, set per device: its own clusters decide).
        peers, _ = keys_to_keep(self._disruptive.peer_devices, {}, self._thresholds, book)
        wanted = {self._peer_ids[peer] for peer in peers if peer in self._peer_ids}
        names, reasons = self._peers, list(self._reason_ids)
        events: list[Event] = []
        for _, name, first, end in sorted(self._event_slices, key=itemgetter(0)):
            for peer, reason, at, burst in zip(
                self._event_peer[first:end],
                self._event_reason[first:end],
                self._event_at[first:end],
                self._event_burst[first:end],
                strict=True,
            ):
                if burst or peer in wanted:
                    code, text, category = reasons[reason]
                    events.append(Event(name, names[peer], code, text, category, at))
        return events

    def _top_peers(self) -> tuple[PeerFlap, ...]:
        tally = self._peer_tally
        deletions, devices = tally.peers, tally.peer_devices
        flapping = [peer for peer, count in deletions.items() if count >= self._flap_threshold]
        flapping.sort(key=lambda peer: (-deletions[peer], -devices[peer], peer))
        if self._top is not None:
            flapping = flapping[: max(self._top, 0)]
        if not flapping:
            return ()
        reasons = tally.codes_of(flapping)
        return tuple(
            PeerFlap(
                peer=peer,
                deletions=deletions[peer],
                devices=devices[peer],
                reasons=tuple(
                    code
                    for code, _ in sorted(
                        reasons[peer].items(), key=lambda item: (-item[1], item[0])
                    )
                ),
                last_seen=to_utc(self._last_seen[peer][1], self._last_seen[peer][2]),
            )
            for peer in flapping
        )

    def _trend(self, interval: TrendInterval) -> tuple[TrendBucket, ...]:
        counts: Counter[datetime] = Counter()
        for start, count in self._hours.items():
            counts[bucket_start(start, interval)] += count
        return tuple(TrendBucket(start, counts[start]) for start in sorted(counts))

    def _series_in(
        self, interval: TrendInterval
    ) -> tuple[Counter[tuple[datetime, Category]], Counter[tuple[str, datetime]]]:
        """The series counts so far, in ``interval`` buckets."""
        categories: Counter[tuple[datetime, Category]] = Counter()
        devices: Counter[tuple[str, datetime]] = Counter()
        for (start, category), count in self._series[0].items():
            categories[(bucket_start(start, interval), category)] += count
        for (name, start), count in self._series[1].items():
            devices[(name, bucket_start(start, interval))] += count
        return categories, devices

    def _series_of(self, interval: TrendInterval) -> Series:
        return series_of(*self._series_in(interval))

    def report(
        self,
        *,
        generated_at: datetime,
        run_started: datetime | None = None,
        run_finished: datetime | None = None,
    ) -> FleetReport:
        """The fleet report of everything folded so far (see :func:`aggregate`)."""
        ordered = sorted(self._devices, key=itemgetter(0))
        devices = tuple(sorted((summary for _, summary, _ in ordered), key=attrgetter("name")))
        if run_started is None:
            run_started = self._started
        if run_finished is None:
            run_finished = self._finished
        interval = self._interval or choose_trend_interval(self._span)
        tally = self._tally
        unknown = _unknown_reasons(tally)
        ok = self._ok
        totals = Totals(
            devices=len(devices),
            devices_ok=ok,
            devices_failed=len(devices) - ok,
            records=self._records,
            peers=len(tally.peers if self._all_peers is None else self._all_peers),
            unknown_reasons=sum(item.count for item in unknown),
            routine=sum(
                count for (_, category, _), count in tally.reasons.items() if category.routine
            ),
        )
        book = address_book(device for _, _, device in ordered)
        events = sort_events(self._events(book))
        failing = tuple(
            DeviceFailure(d.name, d.hostname, d.error_kind, d.error_message or "")
            for d in devices
            if d.status is DeviceStatus.FAILED and d.error_kind is not None
        )
        thresholds = self._thresholds
        return FleetReport(
            generated_at=generated_at,
            window_since=None,
            window_until=None,
            devices=devices,
            by_reason=_by_reason(tally),
            by_category=_by_category(tally),
            top_peers=self._top_peers(),
            trend=self._trend(interval),
            totals=totals,
            by_group=None if self._group is None else self._group.breakdown(),
            trend_interval=interval,
            failing=failing,
            unknown_reasons=unknown,
            flap_threshold=self._flap_threshold,
            run_started=run_started,
            run_finished=run_finished,
            last_success=run_finished if ok else None,
            include_routine=self._include_routine,
            incidents=find_incidents(events, book, thresholds, ordered=True),
            pairs=pair_tunnels(events, book, thresholds.pair_window, ordered=True),
            thresholds=thresholds,
            series=self._series_of(interval) if self._want_series else None,
        )


def aggregate(
    results: Iterable[DeviceResult],
    *,
    generated_at: datetime,
    top: int | None = DEFAULT_TOP,
    flap_threshold: int = DEFAULT_FLAP_THRESHOLD,
    group_by: GroupBy | str | None = None,
    trend_interval: TrendInterval | str | None = None,
    run_started: datetime | None = None,
    run_finished: datetime | None = None,
    zone_of: Callable[[DeviceResult], tzinfo] = device_zone,
    include_routine: bool = False,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    series: bool = False,
) -> FleetReport:
    """Combine one run's device results into the fleet report (a :class:`RunFold` over them).

    Args:
        results: One ``DeviceResult`` per device of the run.
        generated_at: When the report is made (UTC); the caller reads the clock.
        top: At most this many flapping peers (None: all).
        flap_threshold: A peer is listed when it has at least this many deletions.
        group_by: Also break deletions down by this dimension (``--group-by``).
        trend_interval: ``hour`` or ``day`` buckets; None picks by the records' span.
        run_started: Start of the run; defaults to the earliest ``result.started``.
        run_finished: End of the run; defaults to the latest ``result.finished``.
        zone_of: The zone of a device's offline times (:func:`device_zone`).
        include_routine: Count routine deletions (rekeys, HA) among flapping peers too;
            by default a peer flaps on disruptive deletions only.
        thresholds: When disruptive deletions make an incident (``collector.core.incidents``).
        series: Also count deletions per bucket by category and device (HTML charts).

    Returns:
        The report. The window is None: a run reports what the devices hold now.
        Every time in it is UTC (:func:`with_local_times` turns device-level times to
        each device's zone); the records listed per device stay as the devices
        printed them.

    Raises:
        ValueError: ``group_by`` or ``trend_interval`` is not a known value.
    """
    fold = RunFold(
        top=top,
        flap_threshold=flap_threshold,
        group_by=group_by,
        trend_interval=trend_interval,
        zone_of=zone_of,
        include_routine=include_routine,
        thresholds=thresholds,
        series=series,
    )
    for result in results:
        fold.add(result)
    return fold.report(
        generated_at=generated_at, run_started=run_started, run_finished=run_finished
    )


def with_local_times(report: FleetReport, zones: Mapping[str, tzinfo]) -> FleetReport:
    """The report with device-level times in each device's own zone (``--local-times``).

    The newest deletion of each device, its gaps and when it was last read are shown in
    the device's zone, with the offset; a device missing from ``zones`` and the
    fleet-wide times (peers' last deletion, the trend, the window) stay UTC.
    """

    def local(name: str, moment: datetime | None) -> datetime | None:
        zone = zones.get(name)
        return moment if moment is None or zone is None else moment.astimezone(zone)

    return replace(
        report,
        devices=tuple(
            replace(device, newest_deletion=local(device.name, device.newest_deletion))
            for device in report.devices
        ),
        gaps=tuple(
            replace(
                gap,
                missing_since=local(gap.device, gap.missing_since),
                missing_until=local(gap.device, gap.missing_until),
            )
            for gap in report.gaps
        ),
        failing=tuple(
            replace(failure, last_success=local(failure.name, failure.last_success))
            for failure in report.failing
        ),
        local_times=True,
    )
