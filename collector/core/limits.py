"""Bounds on what one device may send: bytes and rows, checked while the answer arrives.

Device output is untrusted. A VRP device keeps its latest 200 deletions per table (command
reference of ``display ike offline-info``); NE40E prints one such table per slot. The caps
here sit far above anything real, and are checked on every chunk as it is read, so a hostile
or broken device (a 50 MB table whose ``Current info Num`` matches, an endless stream) costs
at most :attr:`OutputLimits.max_bytes` of text before its session is closed and the device
fails with ``oversized-output``:

* **bytes**: at most :data:`MAX_OUTPUT_BYTES` characters of one command's answer;
* **declared rows**: a ``Current info Num`` (NE40E: ``Current Record Number``) above
  :data:`MAX_TABLE_ROWS` (five times the 200 a buffer holds) ends the read at that line;
* **lines**: at most :data:`MAX_TABLE_ROWS` plus :data:`_FRAME_LINES` lines per table
  seen (one table when none has begun), whatever the tables declare.

Pure: :class:`OutputGuard` is fed text and raises :class:`OutputTooLarge`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collector.core.errors import CollectorError

__all__ = [
    "MAX_OUTPUT_BYTES",
    "MAX_TABLE_ROWS",
    "OutputGuard",
    "OutputLimits",
    "OutputTooLarge",
    "check_table",
]

MAX_OUTPUT_BYTES = 4 * 1024 * 1024
"""Characters of one command's answer: 200 rows are about 20 KB, a 16-slot NE40E 350 KB."""
MAX_TABLE_ROWS = 1000
"""Rows in one table (one ``Current info Num``): a VRP buffer holds 200."""
_FRAME_LINES = 50
"""Lines around a table's rows: count line, rules, header, echo, prompt, Info lines."""
_COUNT = re.compile(
    r"Current\s+(?:info\s+Num|Record\s+Number)\s*:\s*(\d{1,12})[ \t\r]*\n", re.IGNORECASE
)
"""A table's count line: ``Current info Num :N`` (AR, USG), ``Current Record Number : N``
(NE40E ``display ike offline history``, one per slot)."""
_TAIL = 64
"""Characters kept from the previous chunk, so a count line split across chunks is seen."""


class OutputTooLarge(CollectorError):
    """A device's answer went over a cap; the message says which, for the operator."""


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """The caps of one command's answer (defaults: see the module doc)."""

    max_bytes: int = MAX_OUTPUT_BYTES
    max_table_rows: int = MAX_TABLE_ROWS


def check_table(declared: int, limits: OutputLimits) -> None:
    """Raise :class:`OutputTooLarge` if one table declares more rows than allowed.

    Examples:
        >>> check_table(200, OutputLimits())
        >>> try:
        ...     check_table(5000, OutputLimits())
        ... except OutputTooLarge as exc:
        ...     print(str(exc)[:45])
        'Current info Num' says 5000, more than the 1
    """
    if declared > limits.max_table_rows:
        raise OutputTooLarge(
            f"'Current info Num' says {declared}, more than the {limits.max_table_rows}"
            " rows one table may hold (a VRP buffer keeps 200)"
        )


class OutputGuard:
    """Counts one command's answer as it arrives; :meth:`feed` raises when a cap is passed.

    Examples:
        >>> guard = OutputGuard(OutputLimits(max_bytes=10))
        >>> guard.feed("12345")
        >>> guard.feed("678901")
        Traceback (most recent call last):
        ...
        collector.core.limits.OutputTooLarge: more than 10 bytes of output (the cap is 10 bytes)
    """

    def __init__(self, limits: OutputLimits | None = None) -> None:
        self.limits = limits if limits is not None else OutputLimits()
        self.size = 0
        self.lines = 0
        self.tables = 0
        self._tail = ""

    def feed(self, chunk: str) -> None:
        """Count ``chunk``; raise :class:`OutputTooLarge` if the answer is now over a cap."""
        limits = self.limits
        self.size += len(chunk)
        if self.size > limits.max_bytes:
            raise OutputTooLarge(
                f"more than {_size(limits.max_bytes)} of output (the cap is"
                f" {_size(limits.max_bytes)})"
            )
        self.lines += chunk.count("\n")
        window = self._tail + chunk
        if "Num" in window:
            for match in _COUNT.finditer(window):
                if match.end() <= len(self._tail):
                    continue  # seen with the previous chunk
                self.tables += 1
                check_table(int(match.group(1)), limits)
        self._tail = window[-_TAIL:]
        allowed = max(1, self.tables) * (limits.max_table_rows + _FRAME_LINES)
        if self.lines > allowed:
            raise OutputTooLarge(
                f"more than {allowed} lines of output for {max(1, self.tables)} table(s)"
                f" (the cap is {limits.max_table_rows} rows per table)"
            )


def _size(count: int) -> str:
    """Bytes for people.

    Examples:
        >>> _size(4 * 1024 * 1024), _size(10)
        ('4 MB', '10 bytes')
    """
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MB"
    return f"{count} bytes"
