"""Fleet reports and records as text tables for a person (tabulate), fitted to the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from collector.core.aggregate import (
    Comparison,
    FleetReport,
    TrendInterval,
)
from collector.core.options import plural
from collector.core.records import (
    RECORD_FIELDS,
    ROUTINE_CATEGORIES,
    ErrorKind,
    reason_text,
)
from collector.output.machine import record_row


def tabulate_rows(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    width: int | None = None,
    wrap: int | None = None,
) -> str:
    """tabulate with values shown verbatim.

    tabulate parses numeric-looking strings by default: a device named ``007`` would
    print as ``7`` and an unknown reason ``1e3`` as ``1000``. Parsing is off; columns
    holding only real numbers are right-aligned instead. (Imported here: tabulate reads
    its package metadata on import, and cron runs writing JSON, CSV or Prometheus
    never need it.)
    """
    from tabulate import tabulate

    align = []
    for index in range(len(headers)):
        values = [row[index] for row in rows if index < len(row) and row[index] is not None]
        numeric = bool(values) and all(
            isinstance(value, int | float) and not isinstance(value, bool) for value in values
        )
        align.append("right" if numeric else "left")
    maxcolwidths = None
    if width is not None and wrap is not None and rows:
        # The other columns as they are; the wrapped one (an error message) gets the rest.
        others = sum(  # tabulate pads headers by 2 (MIN_PADDING)
            max(len(str(headers[i])) + 2, *(len(str(row[i])) for row in rows))
            for i in range(len(headers))
            if i != wrap
        )
        budget = max(12, width - others - 2 * (len(headers) - 1))
        maxcolwidths = [budget if i == wrap else None for i in range(len(headers))]
    return tabulate(
        rows,
        headers=list(headers),
        missingval="-",
        disable_numparse=True,
        colalign=align if rows else None,
        maxcolwidths=maxcolwidths,
    )


def _table(
    title: str,
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    width: int | None = None,
    wrap: int | None = None,
) -> str:
    """A titled table; with ``width``, column ``wrap`` is wrapped so the table fits."""
    underline = "=" * len(title)
    return f"{title}\n{underline}\n{tabulate_rows(rows, headers, width, wrap)}\n"


def stamp(moment: datetime | None) -> str:
    """A time for a table cell, always with its zone: ``Z`` for UTC, else the offset.

    Examples:
        >>> from datetime import UTC, timedelta, timezone
        >>> stamp(datetime(2026, 12, 1, 7, 46, 28, tzinfo=UTC))
        '2026-12-01 07:46:28Z'
        >>> stamp(datetime(2026, 12, 1, 15, 46, 28, tzinfo=timezone(timedelta(hours=8))))
        '2026-12-01 15:46:28+08:00'
    """
    if moment is None:
        return "-"
    text = moment.isoformat(sep=" ", timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _times_line(report: FleetReport) -> str:
    if report.local_times:
        return (
            "Times: each device's own time with its UTC offset (--local-times);"
            " peers, trend and window in UTC (Z)"
        )
    return "Times: UTC (Z); --local-times shows each device's own time"


_TABLE_REASONS = 3
_TABLE_PAIRS = 20


def _reason_summary(reasons: tuple[str, ...]) -> str:
    """The first few reasons (most frequent first) for a table cell, as operators read them.

    Examples:
        >>> _reason_summary(("dpd_timeout", "peer_request"))
        'dpd timeout, peer request'
        >>> _reason_summary(("a", "b", "c", "d", "e"))
        'a, b, c (+2 more)'
    """
    shown = ", ".join(reason_text(code) for code in reasons[:_TABLE_REASONS])
    hidden = len(reasons) - _TABLE_REASONS
    return f"{shown} (+{hidden} more)" if hidden > 0 else shown


def _bucket(start: datetime, interval: TrendInterval) -> str:
    """A trend bucket's start as a person reads it: the day, or the day and hour."""
    if interval is TrendInterval.DAY:
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m-%d %H:00")


def _window_line(report: FleetReport) -> str:
    if report.window_since is None and report.window_until is None:
        return "Window: what the devices hold now (one run)"
    return f"Window: {stamp(report.window_since)} .. {stamp(report.window_until)}"


def _totals_line(report: FleetReport) -> str:
    totals = report.totals
    if report.include_routine:
        deletions = (
            f"{totals.records} deletions ({totals.disruptive} disruptive, {totals.routine} routine)"
        )
        new = totals.new_records
    else:
        deletions = plural(totals.disruptive, "disruptive deletion")
        new = totals.new_disruptive
    parts = [
        f"{plural(totals.devices, 'device')} ({totals.devices_ok} ok,"
        f" {totals.devices_failed} failed)",
        deletions,
        plural(totals.peers, "peer"),
    ]
    if new is not None:
        parts.append(f"{new} new since the previous run")
    if totals.unknown_reasons:
        parts.append(f"{totals.unknown_reasons} with unknown reasons")
    if totals.gaps:
        parts.append(plural(totals.gaps, "gap"))
    changed = sum(1 for f in report.failing if f.error_kind is ErrorKind.HOST_KEY_CHANGED)
    if changed:
        parts.append(f"HOST KEY CHANGED on {changed}")
    return "Totals: " + ", ".join(parts)


def _routine_line(report: FleetReport) -> str | None:
    """Routine deletions on their own line (not in the totals unless --include-routine)."""
    totals = report.totals
    if report.include_routine:
        return None
    categories = ", ".join(sorted(category.value for category in ROUTINE_CATEGORIES))
    new = "" if totals.new_routine is None else f" ({totals.new_routine} new)"
    return (
        f"Routine: {plural(totals.routine, 'deletion')}{new} ({categories}: SAs renewed,"
        " not tunnels "
        "down; left out of the totals and flapping peers, --include-routine counts them)"
    )


_TABLE_CHANGES = 25


def _change_text(change: int, percent: float | None) -> str:
    """``+12 (+40%)``, ``-3 (-10%)``, ``+5 (new)``, ``0``."""
    if change == 0:
        return "0"
    share = "new" if percent is None else f"{percent:+.0f}%"
    return f"{change:+d} ({share})"


def _comparison_table(comparison: Comparison) -> str:
    moved = [item for item in comparison.changes if item.change]
    shown = moved[:_TABLE_CHANGES]
    more = f"; {len(moved) - len(shown)} more in JSON" if len(moved) > len(shown) else ""
    title = (
        f"Compared with {stamp(comparison.since)} .. {stamp(comparison.until)}: "
        f"{comparison.before} -> {comparison.now} deletions "
        f"({_change_text(comparison.change, _percent(comparison.before, comparison.change))}); "
        f"worse first{more}"
    )
    return _table(
        title,
        [
            [
                item.dimension.value,
                _humane_key(item.dimension.value, item.key),
                "routine" if item.routine else "",
                item.before,
                item.now,
                _change_text(item.change, item.percent),
            ]
            for item in shown
        ],
        ["by", "what", "", "before", "now", "change"],
    )


def _percent(before: int, change: int) -> float | None:
    return None if before == 0 else 100.0 * change / before


def _humane_key(dimension: str, key: str | None) -> str:
    if key is None:
        return "(no site)"
    if dimension == "reason":
        return reason_text(key)
    return key


def table_report(report: FleetReport, *, records: bool, width: int | None = None) -> str:
    header = [
        f"Fleet report generated {stamp(report.generated_at)}",
        _times_line(report),
        _window_line(report),
        _totals_line(report),
    ]
    routine = _routine_line(report)
    if routine is not None:
        header.append(routine)
    if report.run_duration_seconds is not None:
        header.append(f"Run: {report.run_duration_seconds:.1f} s")
    sections = ["\n".join(header) + "\n"]
    sections.append(
        _table(
            "Devices",
            [
                [
                    device.name,
                    device.hostname,
                    device.site,
                    device.status.value,
                    device.records,
                    stamp(device.newest_deletion),
                    ""
                    if device.error_kind is None
                    else f"{device.error_kind.value}: {device.error_message or ''}",
                ]
                for device in report.devices
            ],
            ["device", "hostname", "site", "status", "deletions", "newest deletion", "error"],
            width,
            6,
        )
    )
    sections.append(
        _table(
            "Deletions by reason",
            [
                [
                    reason_text(item.reason_code, item.example),
                    item.category.value,
                    item.category.impact,
                    item.count,
                    item.devices,
                    item.example,
                ]
                for item in report.by_reason
            ],
            ["reason", "category", "impact", "deletions", "devices", "as printed"],
        )
    )
    sections.append(
        _table(
            "Deletions by category",
            [
                [item.category.value, item.category.impact, item.count]
                for item in report.by_category
            ],
            ["category", "impact", "deletions"],
        )
    )
    if report.new_by_reason:
        sections.append(
            _table(
                "New since the previous run, by reason",
                [
                    [reason_text(item.reason_code, item.example), item.category.value, item.count]
                    for item in report.new_by_reason
                ],
                ["reason", "category", "deletions"],
            )
        )
    if report.by_group is not None:
        dimension = report.by_group.dimension.value
        sections.append(
            _table(
                f"Deletions by {dimension}",
                [
                    [
                        _humane_key(dimension, count.key) if dimension == "reason" else count.key,
                        count.deletions,
                        count.devices,
                        count.devices_failed,
                    ]
                    for count in report.by_group.counts
                ],
                [dimension, "deletions", "devices", "devices failed"],
            )
        )
    sections.append(
        _table(
            f"Flapping peers (at least {report.flap_threshold} "
            f"{'deletions' if report.include_routine else 'disruptive deletions'})",
            [
                [
                    flap.peer,
                    flap.deletions,
                    flap.devices,
                    _reason_summary(flap.reasons),
                    stamp(flap.last_seen),
                ]
                for flap in report.top_peers
            ],
            ["peer", "deletions", "devices", "main reasons", "last seen"],
        )
    )
    if report.comparison is not None:
        sections.append(_comparison_table(report.comparison))
    sections.append(
        _table(
            f"Incidents (disruptive deletions within {report.thresholds.gap.total_seconds():.0f} s"
            " of each other)",
            [
                [incident.kind.value, len(incident.devices), incident.deletions, incident.summary]
                for incident in report.incidents
            ],
            ["kind", "devices", "deletions", "what happened"],
        )
    )
    if report.pairs:
        shown = report.pairs[-_TABLE_PAIRS:]
        hidden = len(report.pairs) - len(shown)
        more = f"; the {hidden} older ones in JSON" if hidden else ""
        sections.append(
            _table(
                f"Both ends of a tunnel in the inventory (latest {len(shown)}{more})",
                [
                    [
                        stamp(pair.at),
                        pair.device,
                        reason_text(pair.reason),
                        pair.other,
                        reason_text(pair.other_reason),
                        pair.initiator or "-",
                        pair.explanation,
                    ]
                    for pair in shown
                ],
                ["at", "device", "reason", "other end", "its reason", "initiated by", "why"],
            )
        )
    sections.append(
        _table(
            f"Deletions per {report.trend_interval.value} (UTC)",
            [
                [_bucket(bucket.start, report.trend_interval), bucket.count]
                for bucket in report.trend
            ],
            [report.trend_interval.value, "deletions"],
        )
    )
    if report.gaps:
        sections.append(
            _table(
                "Gaps (the buffer wrapped between runs: deletions may be lost; collect more often)",
                [
                    [
                        gap.device if gap.buffer is None else f"{gap.device} ({gap.buffer})",
                        stamp(gap.missing_since),
                        stamp(gap.missing_until),
                    ]
                    for gap in report.gaps
                ],
                ["device", "missing since", "missing until"],
            )
        )
    if report.failing:
        sections.append(
            _table(
                "Devices that could not be read",
                [
                    [
                        f.name,
                        f.hostname,
                        f.error_kind.value,
                        f.error_message,
                        stamp(f.last_success),
                    ]
                    for f in report.failing
                ],
                ["device", "hostname", "error", "message", "last read"],
                width,
                3,
            )
        )
    if report.unknown_reasons:
        sections.append(
            _table(
                "Unknown reasons (verbatim)",
                [[item.text, item.count] for item in report.unknown_reasons],
                ["reason as printed", "deletions"],
            )
        )
    if records:
        sections.append(
            _table(
                "Records",
                [
                    [device.name, *record_row(record)]
                    for device in report.devices
                    for record in device.listing
                ],
                ["device", *RECORD_FIELDS],
            )
        )
    return "\n".join(sections)
