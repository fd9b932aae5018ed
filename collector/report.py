"""The fleet report: plain values, and the pure aggregation of one run's results.

Two producers fill the same dataclasses: :func:`aggregate` over the in-memory
``DeviceResult`` values of one ``collect`` run, and the store's SQL queries for
``report --since`` over history. ``collector.render`` renders either the same way.
Nothing here touches a file, a socket or the clock (``generated_at`` is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from collector.records import (
    Category,
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
class GapSummary:
    """A window in which a device's buffer wrapped and deletions may be lost."""

    device: str
    missing_since: datetime | None
    """The newest deletion stored before the gap (UTC)."""
    missing_until: datetime | None
    """The oldest deletion of the snapshot that showed the gap (UTC)."""
    detected_at: datetime | None = None
    """When the run that found the gap started (UTC)."""


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

    @property
    def run_duration_seconds(self) -> float | None:
        if self.run_started is None or self.run_finished is None:
            return None
        return (self.run_finished - self.run_started).total_seconds()
