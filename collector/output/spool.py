"""Each device's records, written out as the device finishes, until the report is written.

``collect --format json|ndjson`` and ``csv --records`` list every record. Holding 200
records of each of thousands of devices until the end of the run would make the
collector's memory grow with the fleet; instead :meth:`RecordSpool.add` turns a device's
records into the report's own text (:data:`collector.output.machine.RECORD_FORMATS`) as
soon as the device is stored, appends them to an unnamed temporary file (beside
``--output``: same filesystem; nothing is left behind if the process is killed), and
the writer (:func:`collector.output.render.write_report`) copies them back into the
report, a device at a time, in the report's own device order.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from collector.core.records import DeviceResult
from collector.output.machine import RECORD_FORMATS

if TYPE_CHECKING:
    from collector.core.aggregate import DeviceSummary

_CHUNK = 1 << 20
"""Bytes read back at a time (a device's 200 records are ~100 kB of JSON)."""


def lists_records(fmt: str, records: bool) -> bool:
    """Whether the report in ``fmt`` lists every record (and so needs a spool).

    Examples:
        >>> lists_records("json", False), lists_records("csv", False), lists_records("csv", True)
        (True, False, True)
    """
    return fmt in ("json", "ndjson") or (fmt == "csv" and records)


class RecordSpool:
    """One report format's text of each device's records, in an unnamed temp file."""

    def __init__(self, fmt: str, directory: Path | None = None) -> None:
        """Args:
            fmt: ``json``, ``ndjson`` or ``csv`` (the records of ``csv --records``).
            directory: Where the temp file goes (the report's directory); None: $TMPDIR.

        Raises:
            OSError: The temp file cannot be made.
        """
        self._text = RECORD_FORMATS[fmt]
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by close())
        self._size = 0
        self._where: dict[str, tuple[int, int]] = {}

    def add(self, result: DeviceResult) -> None:
        """Append the text of one device's records (a device added again replaces it)."""
        device = result.device
        if not result.records:
            self._where.pop(device.name, None)
            return
        data = self._text(device.name, device.hostname, result.records).encode("utf-8")
        self._file.write(data)
        self._where[device.name] = (self._size, len(data))
        self._size += len(data)

    def __call__(self, device: DeviceSummary) -> Iterator[str]:
        """The text of ``device``'s records, in chunks (nothing when it has none)."""
        where = self._where.get(device.name)
        if where is None:
            return
        self._file.flush()
        offset, length = where
        end = offset + length
        decoder = codecs.getincrementaldecoder("utf-8")()  # a chunk may end mid-character
        while offset < end:
            data = os.pread(self._file.fileno(), min(_CHUNK, end - offset), offset)
            if not data:
                raise OSError(f"the record spool ended early ({offset} of {end} bytes)")
            offset += len(data)
            yield decoder.decode(data, final=offset >= end)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
