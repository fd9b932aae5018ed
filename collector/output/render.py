"""Turn records and fleet reports into text: tables, JSON, CSV, NDJSON, Prometheus.

Every function here returns a string; nothing prints. The only I/O is
:func:`write_atomic`, which the CLI uses for ``--output`` and ``--prometheus``.

Fleet report shapes (:func:`render_report`):

* ``table``: titled tabulate tables for a person: devices, totals, deletions by
  reason and by category, the ``--group-by`` breakdown, flapping peers, trend, gaps,
  failing devices, unknown reasons; with ``records=True`` the full listing last.
* ``json``: one object ``{"schema_version", "generated_at", "window": {"since",
  "until"}, "devices": [...], "summary": {...}}``; each device has ``name``,
  ``hostname``, ``site``, ``groups``, ``status`` (``ok``/``failed``), ``error`` (null or ``{"kind",
  "message"}``), ``record_count``, ``new_records``, ``newest_deletion`` and
  ``records`` (the parser's record fields; always included in JSON).
  ``summary`` holds ``totals``, ``by_reason``, ``by_category``, ``by_group``,
  ``top_peers``, ``trend``, ``gaps``, ``failing``, ``unknown_reasons``,
  ``new_by_reason``, ``flap_threshold`` and ``run``.
* ``csv``: the per-device summary (:data:`DEVICE_CSV_FIELDS`); with
  ``records=True`` one row per record instead (:data:`RECORD_CSV_FIELDS`).
* ``ndjson``: first one line per record ``{"type": "record", "device": NAME,
  <record fields>}``, then one line per device ``{"type": "device", <the JSON device
  fields but records>}``, then one last line ``{"type": "summary", <the JSON summary>,
  "schema_version", "generated_at", "window"}``. Every line is one JSON object with a ``type``.

Times are ISO 8601: record times as the device printed them (no zone), run and
report times in UTC with their offset. There is no colour anywhere, so output is the
same on a terminal, in a pipe and under ``NO_COLOR``.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import Gauge

from collector.core.aggregate import (
    Comparison,
    DeviceSummary,
    FleetReport,
    GroupBreakdown,
    ReasonCount,
    TrendInterval,
)
from collector.core.incidents import Incident, TunnelPair
from collector.core.options import plural
from collector.core.records import (
    ALL_REASONS,
    RECORD_FIELDS,
    ROUTINE_CATEGORIES,
    UNKNOWN_REASON_CODE,
    Category,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
    reason_text,
)


class Format(StrEnum):
    """The output formats of ``parse``, ``collect`` and ``report``."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    NDJSON = "ndjson"
    HTML = "html"
    """Fleet reports only: one self-contained page with charts (``collector.output.html``)."""


FORMATS: tuple[str, ...] = tuple(fmt.value for fmt in Format if fmt is not Format.HTML)
"""The formats of ``parse`` (records)."""
REPORT_FORMATS: tuple[str, ...] = tuple(fmt.value for fmt in Format)
"""The formats of ``collect`` and ``report``."""


class SupportsToDict(Protocol):
    """Anything that turns itself into a JSON-friendly mapping (e.g. ``parse.Problem``)."""

    def to_dict(self) -> Mapping[str, Any]: ...


def _format(fmt: str | Format) -> Format:
    try:
        return Format(fmt)
    except ValueError:
        raise ValueError(
            f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}"
        ) from None


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value safe in a spreadsheet: text starting with ``=``, ``+``, ``-``, ``@`` (or a
    tab or CR) gets a leading ``'`` so it is not run as a formula (CSV injection, OWASP);
    None is empty; numbers stay numbers (a negative number is not text).

    Examples:
        >>> csv_cell("=HYPERLINK(1)"), csv_cell("-1"), csv_cell(-1), csv_cell(None)
        ("'=HYPERLINK(1)", "'-1", -1, '')
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_writer(handle: Any) -> Any:
    """``csv.writer`` with ``\n`` line ends (the csv default ``\r\n`` surprises pipelines)."""
    return csv.writer(handle, lineterminator="\n")


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


def _tabulate(
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


def _record_row(record: OfflineRecord) -> list[Any]:
    data = record.to_dict()
    return [data[name] for name in RECORD_FIELDS]


def render_records(
    records: Sequence[OfflineRecord],
    problems: Sequence[SupportsToDict] = (),
    fmt: str | Format = Format.TABLE,
) -> str:
    """Render parsed records for the ``parse`` command.

    Shapes:

    * ``json``: one object ``{"records": [...], "problems": [...]}``; each record has
      exactly the fields of ``OfflineRecord.to_dict()``, each problem its ``to_dict()``.
    * ``table``: one tabulate table, a column per record field (``-`` for no port).
    * ``csv``: a header row of the record fields, then one row per record.
    * ``ndjson``: one JSON object per record per line.

    Problems appear only in ``json``; in the other formats the caller reports them
    on stderr (they are not data).

    Args:
        records: The records, in the order to print them.
        problems: Parser problems (anything with ``to_dict()``).
        fmt: ``table``, ``json``, ``csv`` or ``ndjson``.

    Returns:
        The text, ending with a newline (empty string for ndjson with no records).

    Raises:
        ValueError: ``fmt`` is not one of the formats.
    """
    chosen = _format(fmt)
    if chosen is Format.HTML:
        raise ValueError("html is a fleet report format (collect, report), not one for records")
    if chosen is Format.JSON:
        document = {
            "records": [record.to_dict() for record in records],
            "problems": [dict(problem.to_dict()) for problem in problems],
        }
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if chosen is Format.CSV:
        return _csv_text(RECORD_FIELDS, (_record_row(record) for record in records))
    if chosen is Format.NDJSON:
        return "".join(_json_line(record.to_dict()) + "\n" for record in records)
    rows = [_record_row(record) for record in records]
    return _tabulate(rows, RECORD_FIELDS) + "\n"


log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 60.0
"""A temp file of :func:`write_atomic` this old belongs to a write that will never finish
(a write takes milliseconds; a younger one may be another process's, in progress)."""


def remove_stale_temps(directory: Path, name: str) -> None:
    """Remove ``.NAME.*.tmp`` files older than :data:`STALE_TEMP_SECONDS` in ``directory``."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in directory.glob(f".{glob.escape(name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - leftover.lstat().st_mtime > STALE_TEMP_SECONDS and leftover.is_file():
                    leftover.unlink()
                    log.info("removed %s, left by an interrupted write", leftover)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    A temporary file in the same directory (same filesystem, so the rename is
    atomic) is written, flushed and fsynced, then renamed over ``path``. The
    directory is fsynced too so the rename survives a crash.

    Args:
        path: The destination file.
        text: The full content (UTF-8).

    Temporary files of earlier writes to the same ``path`` that a killed process left
    behind (our ``.NAME.*.tmp``, older than :data:`STALE_TEMP_SECONDS`) are removed first.

    Raises:
        OSError: The directory is missing or not writable (the temp file is removed).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    remove_stale_temps(directory, target.name)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600, but node_exporter (another user) must read a textfile:
        # keep the mode of the file being replaced, else rw-r--r--. (os.umask() would
        # tell the usual default but changes process state under other threads.)
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


DEVICE_CSV_FIELDS: tuple[str, ...] = (
    "name",
    "hostname",
    "site",
    "status",
    "records",
    "new_records",
    "newest_deletion",
    "error_kind",
    "error_message",
)
"""Columns of ``collect --format csv`` (one row per device)."""

RECORD_CSV_FIELDS: tuple[str, ...] = ("device", "hostname", *RECORD_FIELDS)
"""Columns of ``collect --format csv --records`` (one row per record)."""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _device_dict(device: DeviceSummary, *, with_records: bool) -> dict[str, Any]:
    error = None
    if device.error_kind is not None:
        error = {"kind": device.error_kind.value, "message": device.error_message or ""}
    data: dict[str, Any] = {
        "name": device.name,
        "hostname": device.hostname,
        "site": device.site,
        "groups": list(device.groups),
        "status": device.status.value,
        "error": error,
        "record_count": device.records,
        "new_records": device.new_records,
        "newest_deletion": _iso(device.newest_deletion),
    }
    if with_records:
        data["records"] = [record.to_dict() for record in device.listing]
    return data


def _reason_dict(item: ReasonCount) -> dict[str, Any]:
    return {
        "reason_code": item.reason_code,
        "reason": reason_text(item.reason_code, item.example),
        "category": item.category.value,
        "routine": item.category.routine,
        "count": item.count,
        "devices": item.devices,
        "example": item.example,
    }


def _group_dict(breakdown: GroupBreakdown | None) -> dict[str, Any] | None:
    if breakdown is None:
        return None
    return {
        "dimension": breakdown.dimension.value,
        "counts": [
            {
                "key": count.key,
                "deletions": count.deletions,
                "devices": count.devices,
                "devices_failed": count.devices_failed,
            }
            for count in breakdown.counts
        ],
    }


def _pair_dict(pair: TunnelPair) -> dict[str, Any]:
    return {
        "at": _iso(pair.at),
        "device": pair.device,
        "reason_code": pair.reason,
        "other_device": pair.other,
        "other_reason_code": pair.other_reason,
        "initiator": pair.initiator,
        "explanation": pair.explanation,
    }


def _incident_dict(incident: Incident) -> dict[str, Any]:
    return {
        "kind": incident.kind.value,
        "start": _iso(incident.start),
        "end": _iso(incident.end),
        "seconds": incident.seconds,
        "subject": incident.subject,
        "subject_device": incident.subject_device,
        "deletions": incident.deletions,
        "devices": list(incident.devices),
        "peers": list(incident.peers),
        "reasons": [{"reason_code": code, "count": count} for code, count in incident.reasons],
        "pairs": [_pair_dict(pair) for pair in incident.pairs],
        "summary": incident.summary,
    }


def _series_dict(report: FleetReport) -> dict[str, Any] | None:
    series = report.series
    if series is None:
        return None
    return {
        "interval": report.trend_interval.value,
        "by_category": [
            {"start": _iso(start), "category": category.value, "count": count}
            for start, category, count in series.by_category
        ],
        "by_device": [
            {"device": device, "start": _iso(start), "count": count}
            for device, start, count in series.by_device
        ],
    }


def _comparison_dict(comparison: Comparison | None) -> dict[str, Any] | None:
    if comparison is None:
        return None
    return {
        "window": {"since": _iso(comparison.since), "until": _iso(comparison.until)},
        "before": comparison.before,
        "now": comparison.now,
        "change": comparison.change,
        "changes": [
            {
                "dimension": item.dimension.value,
                "key": item.key,
                "routine": item.routine,
                "before": item.before,
                "now": item.now,
                "change": item.change,
                "percent": None if item.percent is None else round(item.percent, 1),
            }
            for item in comparison.changes
        ],
    }


def summary_dict(report: FleetReport) -> dict[str, Any]:
    """The ``summary`` object of the JSON report (also the last NDJSON line)."""
    totals = report.totals
    return {
        "totals": {
            "devices": totals.devices,
            "devices_ok": totals.devices_ok,
            "devices_failed": totals.devices_failed,
            "records": totals.records,
            "peers": totals.peers,
            "unknown_reasons": totals.unknown_reasons,
            "new_records": totals.new_records,
            "gaps": totals.gaps,
            "disruptive": totals.disruptive,
            "routine": totals.routine,
            "new_disruptive": totals.new_disruptive,
            "new_routine": totals.new_routine,
        },
        "by_reason": [_reason_dict(item) for item in report.by_reason],
        "by_category": [
            {
                "category": item.category.value,
                "routine": item.category.routine,
                "count": item.count,
            }
            for item in report.by_category
        ],
        "by_group": _group_dict(report.by_group),
        "top_peers": [
            {
                "peer": flap.peer,
                "deletions": flap.deletions,
                "devices": flap.devices,
                "reasons": list(flap.reasons),
                "last_seen": _iso(flap.last_seen),
            }
            for flap in report.top_peers
        ],
        "trend": {
            "interval": report.trend_interval.value,
            "buckets": [
                {"start": _iso(bucket.start), "count": bucket.count} for bucket in report.trend
            ],
        },
        "gaps": [
            {
                "device": gap.device,
                "buffer": gap.buffer,
                "missing_since": _iso(gap.missing_since),
                "missing_until": _iso(gap.missing_until),
                "detected_at": _iso(gap.detected_at),
            }
            for gap in report.gaps
        ],
        "failing": [
            {
                "name": failure.name,
                "hostname": failure.hostname,
                "error": {"kind": failure.error_kind.value, "message": failure.error_message},
                "last_success": _iso(failure.last_success),
            }
            for failure in report.failing
        ],
        "unknown_reasons": [
            {"text": item.text, "count": item.count} for item in report.unknown_reasons
        ],
        "new_by_reason": [_reason_dict(item) for item in report.new_by_reason],
        "flap_threshold": report.flap_threshold,
        "include_routine": report.include_routine,
        "incidents": [_incident_dict(incident) for incident in report.incidents],
        "tunnel_pairs": [_pair_dict(pair) for pair in report.pairs],
        "comparison": _comparison_dict(report.comparison),
        "series": _series_dict(report),
        "incident_thresholds": {
            "gap_seconds": report.thresholds.gap.total_seconds(),
            "burst_min": report.thresholds.burst_min,
            "spread_min": report.thresholds.spread_min,
            "hub_min": report.thresholds.hub_min,
            "spread_share": report.thresholds.spread_share,
            "pair_window_seconds": report.thresholds.pair_window.total_seconds(),
        },
        "run": {
            "started": _iso(report.run_started),
            "finished": _iso(report.run_finished),
            "duration_seconds": report.run_duration_seconds,
            "last_success": _iso(report.last_success),
        },
    }


_TIMES = {False: "utc", True: "local"}
"""``times`` in JSON: every time is UTC, or device-level ones are each device's own."""


JSON_SCHEMA_VERSION = 1
"""``schema_version`` of the JSON and NDJSON fleet reports: raised when a field changes meaning
or goes away (adding a field does not change it), so a consumer can refuse what it does
not know."""


def report_dict(report: FleetReport) -> dict[str, Any]:
    """The JSON report as a Python object (see the module docstring for the shape)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "generated_at": _iso(report.generated_at),
        "times": _TIMES[report.local_times],
        "window": {"since": _iso(report.window_since), "until": _iso(report.window_until)},
        "devices": [_device_dict(device, with_records=True) for device in report.devices],
        "summary": summary_dict(report),
    }


def _ndjson_report(report: FleetReport) -> str:
    lines: list[str] = []
    for device in report.devices:
        for record in device.listing:
            lines.append(_json_line({"type": "record", "device": device.name, **record.to_dict()}))
    for device in report.devices:
        lines.append(_json_line({"type": "device", **_device_dict(device, with_records=False)}))
    lines.append(
        _json_line(
            {
                "type": "summary",
                "schema_version": JSON_SCHEMA_VERSION,
                "generated_at": _iso(report.generated_at),
                "times": _TIMES[report.local_times],
                "window": {
                    "since": _iso(report.window_since),
                    "until": _iso(report.window_until),
                },
                **summary_dict(report),
            }
        )
    )
    return "".join(line + "\n" for line in lines)


def _csv_report(report: FleetReport, *, records: bool) -> str:
    if records:
        return _csv_text(
            RECORD_CSV_FIELDS,
            (
                [device.name, device.hostname, *_record_row(record)]
                for device in report.devices
                for record in device.listing
            ),
        )
    return _csv_text(
        DEVICE_CSV_FIELDS,
        (
            [
                device.name,
                device.hostname,
                device.site,
                device.status.value,
                device.records,
                device.new_records,
                _iso(device.newest_deletion),
                None if device.error_kind is None else device.error_kind.value,
                device.error_message,
            ]
            for device in report.devices
        ),
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
    return f"{title}\n{underline}\n{_tabulate(rows, headers, width, wrap)}\n"


def _stamp(moment: datetime | None) -> str:
    """A time for a table cell, always with its zone: ``Z`` for UTC, else the offset.

    Examples:
        >>> from datetime import UTC, timedelta, timezone
        >>> _stamp(datetime(2026, 12, 1, 7, 46, 28, tzinfo=UTC))
        '2026-12-01 07:46:28Z'
        >>> _stamp(datetime(2026, 12, 1, 15, 46, 28, tzinfo=timezone(timedelta(hours=8))))
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
    return f"Window: {_stamp(report.window_since)} .. {_stamp(report.window_until)}"


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
        f"Compared with {_stamp(comparison.since)} .. {_stamp(comparison.until)}: "
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


def _table_report(report: FleetReport, *, records: bool, width: int | None = None) -> str:
    header = [
        f"Fleet report generated {_stamp(report.generated_at)}",
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
                    _stamp(device.newest_deletion),
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
                    _stamp(flap.last_seen),
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
                        _stamp(pair.at),
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
                        _stamp(gap.missing_since),
                        _stamp(gap.missing_until),
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
                        _stamp(f.last_success),
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
                    [device.name, *_record_row(record)]
                    for device in report.devices
                    for record in device.listing
                ],
                ["device", *RECORD_FIELDS],
            )
        )
    return "\n".join(sections)


def render_report(
    report: FleetReport,
    fmt: str | Format = Format.TABLE,
    *,
    records: bool = False,
    width: int | None = None,
) -> str:
    """Render a fleet report (``collect`` or ``report``).

    Args:
        report: The report, from ``report.aggregate`` or the store's queries.
        fmt: ``table``, ``json``, ``csv`` or ``ndjson`` (shapes in the module docstring).
        records: ``--records``: add the full listing (table), one row per record (csv).
            JSON and NDJSON always carry the records the report holds.
        width: Table format on a terminal this wide: error messages are wrapped so the
            device tables fit (the full text is in every format, wrapped or not).

    Returns:
        The text, ending with a newline.

    Raises:
        ValueError: ``fmt`` is not one of the formats.
    """
    chosen = _format(fmt)
    if chosen is Format.HTML:
        from collector.output.html import render_html

        return render_html(report)
    if chosen is Format.JSON:
        return json.dumps(report_dict(report), ensure_ascii=False, indent=2) + "\n"
    if chosen is Format.NDJSON:
        return _ndjson_report(report)
    if chosen is Format.CSV:
        return _csv_report(report, records=records)
    return _table_report(report, records=records, width=width)


METRIC_PREFIX = "ike_offline"


def render_prometheus(report: FleetReport) -> str:
    """The report as a node_exporter textfile (Prometheus text exposition format).

    Low-cardinality only: series per device status, error kind, reason code and
    category (closed sets, all emitted even at 0 so alerts see a value), never per
    peer or per device. Built with ``prometheus_client`` so escaping and format are
    the library's.

    Metrics (all gauges):

    * ``ike_offline_report_timestamp_seconds``: when the report was made.
    * ``ike_offline_last_run_timestamp_seconds``: end of the run (if known).
    * ``ike_offline_last_success_timestamp_seconds``: end of the latest run that read
      at least one device (absent if none).
    * ``ike_offline_run_duration_seconds``: run wall time (if known).
    * ``ike_offline_devices{status}``: devices ok / failed.
    * ``ike_offline_device_errors{kind}``: failed devices per error kind.
    * ``ike_offline_deletions{reason_code}``, ``ike_offline_deletions_by_category{category}``:
      deletions in the report (the devices' buffers for a run, the window for history).
    * ``ike_offline_new_deletions{reason_code}``: first seen in the latest run (only when
      the report knows, i.e. from the store).
    * ``ike_offline_disruptive_deletions``, ``ike_offline_routine_deletions``: the report's
      deletions split by ``Category.routine``; ``ike_offline_new_disruptive_deletions`` and
      ``ike_offline_new_routine_deletions`` the same for the latest run's new ones (from
      the store): alert on ``new_disruptive_deletions``, which rekeying never raises.
    * ``ike_offline_unknown_reason_deletions``, ``ike_offline_flapping_peers``,
      ``ike_offline_gaps``.
    """
    # Imported here: prometheus_client (with its http.server and email imports) costs
    # ~65 ms of start-up that parse, report and collect runs without --prometheus skip.
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"{METRIC_PREFIX}_{name}", doc, list(labels), registry=registry)

    gauge("report_timestamp_seconds", "When the report was generated (Unix time).").set(
        report.generated_at.timestamp()
    )
    if report.run_finished is not None:
        gauge("last_run_timestamp_seconds", "End of the collection run (Unix time).").set(
            report.run_finished.timestamp()
        )
    if report.last_success is not None:
        gauge(
            "last_success_timestamp_seconds",
            "End of the latest run that read at least one device (Unix time).",
        ).set(report.last_success.timestamp())
    duration = report.run_duration_seconds
    if duration is not None:
        gauge("run_duration_seconds", "Wall time of the collection run.").set(duration)

    devices = gauge("devices", "Devices in the run by collection status.", ["status"])
    devices.labels(status=DeviceStatus.OK.value).set(report.totals.devices_ok)
    devices.labels(status=DeviceStatus.FAILED.value).set(report.totals.devices_failed)

    errors = gauge("device_errors", "Devices that could not be read, by error kind.", ["kind"])
    error_counts = {kind: 0 for kind in ErrorKind}
    for failure in report.failing:
        error_counts[failure.error_kind] += 1
    for kind, count in error_counts.items():
        errors.labels(kind=kind.value).set(count)

    codes = [reason.code for reason in ALL_REASONS] + [UNKNOWN_REASON_CODE]
    deletions = gauge("deletions", "Deletions in the report by reason code.", ["reason_code"])
    by_code = {item.reason_code: item.count for item in report.by_reason}
    for code in codes:
        deletions.labels(reason_code=code).set(by_code.get(code, 0))

    categories = gauge(
        "deletions_by_category", "Deletions in the report by reason category.", ["category"]
    )
    by_category = {item.category: item.count for item in report.by_category}
    for category in Category:
        categories.labels(category=category.value).set(by_category.get(category, 0))

    if report.totals.new_records is not None:
        new = gauge(
            "new_deletions",
            "Deletions first seen in the latest run, by reason code.",
            ["reason_code"],
        )
        new_by_code = {item.reason_code: item.count for item in report.new_by_reason}
        for code in codes:
            new.labels(reason_code=code).set(new_by_code.get(code, 0))

    gauge(
        "disruptive_deletions",
        "Deletions in the report that took a tunnel down (not rekeys or HA housekeeping).",
    ).set(report.totals.disruptive)
    gauge("routine_deletions", "Routine deletions in the report (rekeys, HA housekeeping).").set(
        report.totals.routine
    )
    if report.totals.new_records is not None:
        new_disruptive = report.totals.new_disruptive or 0
        gauge(
            "new_disruptive_deletions",
            "Deletions first seen in the latest run that took a tunnel down (alert on this).",
        ).set(new_disruptive)
        gauge(
            "new_routine_deletions",
            "Routine deletions (rekeys, HA housekeeping) first seen in the latest run.",
        ).set(report.totals.new_routine or 0)
    gauge("unknown_reason_deletions", "Deletions whose reason the taxonomy does not know.").set(
        report.totals.unknown_reasons
    )
    gauge(
        "flapping_peers",
        "Peers listed as flapping (at least the threshold of deletions; top list only).",
    ).set(len(report.top_peers))
    gauge("gaps", "Buffer wrap-arounds in which deletions may have been lost.").set(
        max(report.totals.gaps, len(report.gaps))
    )
    return generate_latest(registry).decode("utf-8")
