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

import io
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    pass

from collector.core.aggregate import (
    FleetReport,
)
from collector.core.records import (
    RECORD_FIELDS,
    OfflineRecord,
)
from collector.output.html import render_html
from collector.output.machine import (
    RecordText,
    csv_text,
    json_line,
    record_row,
    write_csv,
    write_json,
    write_ndjson,
)
from collector.output.tables import table_report, tabulate_rows


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
        return csv_text(RECORD_FIELDS, (record_row(record) for record in records))
    if chosen is Format.NDJSON:
        return "".join(json_line(record.to_dict()) + "\n" for record in records)
    rows = [record_row(record) for record in records]
    return tabulate_rows(rows, RECORD_FIELDS) + "\n"


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
    buffer = io.StringIO()
    write_report(report, buffer, fmt, records=records, width=width)
    return buffer.getvalue()


def write_report(
    report: FleetReport,
    handle: TextIO,
    fmt: str | Format = Format.TABLE,
    *,
    records: bool = False,
    width: int | None = None,
    listing: RecordText | None = None,
) -> None:
    """Write the fleet report to ``handle``: :func:`render_report`'s text, a device at a
    time in JSON, NDJSON and CSV, each device's records from ``listing`` (a spool of
    ``collect``'s, :mod:`collector.output.spool`) or else from the report.

    Raises:
        ValueError: ``fmt`` is not one of the formats.
    """
    chosen = _format(fmt)
    if chosen is Format.JSON:
        write_json(report, handle, listing)
    elif chosen is Format.NDJSON:
        write_ndjson(report, handle, listing)
    elif chosen is Format.CSV:
        write_csv(report, handle, records=records, listing=listing)
    elif chosen is Format.HTML:
        handle.write(render_html(report))
    else:
        handle.write(table_report(report, records=records, width=width))
