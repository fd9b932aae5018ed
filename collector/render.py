"""Turn records and fleet reports into text: tables, JSON, CSV, NDJSON, Prometheus.

Every function here returns a string; nothing prints. The only I/O is
:func:`write_atomic`, which the CLI uses for ``--output`` and ``--prometheus``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from tabulate import tabulate

from collector.records import RECORD_FIELDS, OfflineRecord


class Format(StrEnum):
    """The output formats of ``parse``, ``collect`` and ``report``."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    NDJSON = "ndjson"


FORMATS: tuple[str, ...] = tuple(fmt.value for fmt in Format)


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


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    # lineterminator "\n": the csv default "\r\n" surprises shell pipelines.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


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
    return tabulate(rows, headers=list(RECORD_FIELDS), missingval="-") + "\n"


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    A temporary file in the same directory (same filesystem, so the rename is
    atomic) is written, flushed and fsynced, then renamed over ``path``. The
    directory is fsynced too so the rename survives a crash.

    Args:
        path: The destination file.
        text: The full content (UTF-8).

    Raises:
        OSError: The directory is missing or not writable (the temp file is removed).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
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
