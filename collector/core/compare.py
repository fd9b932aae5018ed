"""Window comparison: this report's window against another (``report --compare-to``).

Pure: two :class:`collector.core.aggregate.FleetReport` values in, a :class:`Comparison` out. Per
reason, category, site and device the deletions before and now, and the change; rows
sorted so that what got worse comes first. Devices and sites count disruptive deletions
(all of them with ``--include-routine``); reasons and categories are shown each for itself,
with whether they are routine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from collector.core.aggregate import Change, Comparison, DeviceSummary, Dimension, FleetReport
from collector.core.options import parse_moment

PREVIOUS = "previous"
"""``--compare-to previous``: the window of the same length just before this one."""


def previous_window(
    since: datetime, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The window of the same length that ends where ``[since, until)`` begins.

    Examples:
        >>> from datetime import UTC
        >>> end = datetime(2026, 1, 8, tzinfo=UTC)
        >>> [d.day for d in previous_window(datetime(2026, 1, 7, tzinfo=UTC), None, end)]
        [6, 7]
    """
    length = (until or now) - since
    return since - length, since


def parse_window(
    text: str, since: datetime, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``--compare-to``: ``previous``, or ``SINCE..UNTIL`` (each as ``--since`` takes it).

    Raises:
        ValueError: neither form, or an empty window.
    """
    if text.strip().lower() == PREVIOUS:
        return previous_window(since, until, now)
    low, separator, high = text.partition("..")
    if not separator or not low.strip() or not high.strip():
        raise ValueError(
            f"{text!r} is neither 'previous' nor SINCE..UNTIL "
            "(e.g. 2026-11-01..2026-11-08, or 14d..7d)"
        )
    start, end = parse_moment(low.strip(), now), parse_moment(high.strip(), now)
    if end <= start:
        raise ValueError(f"{text!r}: the end must be after the start")
    return start, end


def _device_counts(devices: tuple[DeviceSummary, ...], include_routine: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    for device in devices:
        value = device.records if include_routine else device.disruptive_records
        counts[device.name] += device.records if value is None else value
    return counts


def _site_counts(devices: tuple[DeviceSummary, ...], include_routine: bool) -> Counter[str | None]:
    per_device = _device_counts(devices, include_routine)
    sites: Counter[str | None] = Counter()
    for device in devices:
        sites[device.site] += per_device[device.name]
    return sites


def _rows(
    dimension: Dimension,
    before: Mapping[Any, int],
    now: Mapping[Any, int],
    routine: Mapping[Any, bool] | None = None,
) -> list[Change]:
    keys = set(before) | set(now)
    return [
        Change(dimension, key, before.get(key, 0), now.get(key, 0), (routine or {}).get(key, False))
        for key in keys
        if before.get(key, 0) or now.get(key, 0)
    ]


def compare(current: FleetReport, other: FleetReport) -> Comparison:
    """``current``'s window against ``other``'s, per reason, category, site and device.

    Rows are sorted by what got worse: disruptive rows before routine ones, then the
    largest increase first, then the largest count now, then the key.
    """
    include = current.include_routine
    routine = {item.reason_code: item.category.routine for item in current.by_reason}
    routine.update({item.reason_code: item.category.routine for item in other.by_reason})
    category_routine = {item.category.value: item.category.routine for item in current.by_category}
    category_routine.update({i.category.value: i.category.routine for i in other.by_category})
    changes = [
        *_rows(
            Dimension.REASON,
            {item.reason_code: item.count for item in other.by_reason},
            {item.reason_code: item.count for item in current.by_reason},
            dict(routine),
        ),
        *_rows(
            Dimension.CATEGORY,
            {item.category.value: item.count for item in other.by_category},
            {item.category.value: item.count for item in current.by_category},
            dict(category_routine),
        ),
        *_rows(
            Dimension.SITE,
            _site_counts(other.devices, include),
            _site_counts(current.devices, include),
        ),
        *_rows(
            Dimension.DEVICE,
            dict(_device_counts(other.devices, include)),
            dict(_device_counts(current.devices, include)),
        ),
    ]
    changes.sort(key=lambda c: (c.routine, -c.change, -c.now, c.dimension.value, c.key or ""))

    def headline(report: FleetReport) -> int:
        return report.totals.records if include else report.totals.disruptive

    return Comparison(
        since=other.window_since,
        until=other.window_until,
        before=headline(other),
        now=headline(current),
        changes=tuple(changes),
    )
