"""Fleet reports and records as data: JSON, NDJSON and CSV (cells neutralised against formula
injection). The ``write_*`` functions write a whole report to a handle, a device at a time
(``collect`` streams each device's records from a spool); the others return a string or a
dict; nothing prints.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    pass

from collector.core.aggregate import (
    Comparison,
    DeviceSummary,
    FleetReport,
    GroupBreakdown,
    ReasonCount,
)
from collector.core.incidents import Incident, TunnelPair
from collector.core.records import (
    RECORD_FIELDS,
    OfflineRecord,
    reason_text,
)


def json_line(value: Any) -> str:
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


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


def record_row(record: OfflineRecord) -> list[Any]:
    data = record.to_dict()
    return [data[name] for name in RECORD_FIELDS]


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


def _head_dict(report: FleetReport) -> dict[str, Any]:
    """What the JSON report starts with (and the NDJSON summary line carries)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "generated_at": _iso(report.generated_at),
        "times": _TIMES[report.local_times],
        "window": {"since": _iso(report.window_since), "until": _iso(report.window_until)},
    }


def report_dict(report: FleetReport) -> dict[str, Any]:
    """The JSON report as a Python object (see the module docstring for the shape)."""
    return {
        **_head_dict(report),
        "devices": [_device_dict(device, with_records=True) for device in report.devices],
        "summary": summary_dict(report),
    }


RecordText = Callable[[DeviceSummary], Iterable[str]]
"""One device's records as text in the format being written: from a spool
(:class:`collector.output.spool.RecordSpool`) when ``collect`` streams them, else from
:attr:`DeviceSummary.listing` (:func:`listing_text`)."""

RecordFormat = Callable[[str, str, Sequence[OfflineRecord]], str]
"""(device name, hostname, records) -> their text in one format (:data:`RECORD_FORMATS`)."""

_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",\n" + " " * 10, ": "))
"""A record's fields one a line as in the report (``devices[i].records[j]``, indent 10):
with no ``indent`` the C encoder runs, ~10x faster than ``indent=2``; exact because every
value of ``OfflineRecord.to_dict()`` is a scalar (the separator is only put between items)."""


def json_records(name: str, hostname: str, records: Sequence[OfflineRecord]) -> str:
    """The records as the items of a device's JSON ``records`` list (``,`` between them,
    indented as in the report, no newline at either end)."""
    del name, hostname  # the device entry around them names the device
    encode = _RECORD_ENCODER.encode
    return ",\n".join(
        "        {\n          " + encode(record.to_dict())[1:-1] + "\n        }"
        for record in records
    )


def ndjson_records(name: str, hostname: str, records: Sequence[OfflineRecord]) -> str:
    """The records as NDJSON ``record`` lines."""
    del hostname
    return "".join(
        json_line({"type": "record", "device": name, **record.to_dict()}) + "\n"
        for record in records
    )


def csv_records(name: str, hostname: str, records: Sequence[OfflineRecord]) -> str:
    """The records as rows of ``csv --records`` (:data:`RECORD_CSV_FIELDS`), no header."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    for record in records:
        writer.writerow([csv_cell(value) for value in (name, hostname, *record_row(record))])
    return buffer.getvalue()


RECORD_FORMATS: dict[str, RecordFormat] = {
    "json": json_records,
    "ndjson": ndjson_records,
    "csv": csv_records,
}
"""The formats whose report lists the records: how each writes one device's records."""


def listing_text(fmt: str) -> RecordText:
    """Each device's records from the report itself (:attr:`DeviceSummary.listing`)."""
    text = RECORD_FORMATS[fmt]

    def of(device: DeviceSummary) -> Iterable[str]:
        return (text(device.name, device.hostname, device.listing),) if device.listing else ()

    return of


def _indented(value: Any, indent: str) -> str:
    """``value`` as JSON (indent 2) to sit at ``indent``: every line but the first shifted."""
    return json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n" + indent)


def write_json(report: FleetReport, handle: TextIO, records: RecordText | None = None) -> None:
    """Write the JSON report, the same text as ``json.dumps(report_dict(report), indent=2)``
    plus a newline, a device at a time: each device's records come from ``records``."""
    records = listing_text("json") if records is None else records
    head = _indented(_head_dict(report), "")
    handle.write(head[: -len("\n}")] + ',\n  "devices": ')
    handle.write("[\n" if report.devices else "[]")
    for index, device in enumerate(report.devices):
        entry = _indented(_device_dict(device, with_records=False), "    ")
        handle.write(("    " if index == 0 else ",\n    ") + entry[: -len("\n    }")])
        handle.write(',\n      "records": ')
        empty = True
        for text in records(device):
            if text:
                handle.write(("[\n" if empty else ",\n") + text)
                empty = False
        handle.write("[]\n    }" if empty else "\n      ]\n    }")
    if report.devices:
        handle.write("\n  ]")
    handle.write(',\n  "summary": ' + _indented(summary_dict(report), "  ") + "\n}\n")


def write_ndjson(report: FleetReport, handle: TextIO, records: RecordText | None = None) -> None:
    """Write the NDJSON report: every record line, every device line, the summary line."""
    records = listing_text("ndjson") if records is None else records
    for device in report.devices:
        for text in records(device):
            handle.write(text)
    for device in report.devices:
        handle.write(json_line({"type": "device", **_device_dict(device, with_records=False)}))
        handle.write("\n")
    summary = {"type": "summary", **_head_dict(report), **summary_dict(report)}
    handle.write(json_line(summary) + "\n")


def write_csv(
    report: FleetReport, handle: TextIO, *, records: bool, listing: RecordText | None = None
) -> None:
    """Write the CSV report: one row per device, or with ``records`` one per record."""
    if records:
        listing = listing_text("csv") if listing is None else listing
        csv_writer(handle).writerow(RECORD_CSV_FIELDS)
        for device in report.devices:
            for text in listing(device):
                handle.write(text)
        return
    writer = csv_writer(handle)
    writer.writerow(DEVICE_CSV_FIELDS)
    for device in report.devices:
        row = [
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
        writer.writerow([csv_cell(value) for value in row])
