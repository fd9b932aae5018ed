"""Parse ``display ike offline-info`` output into offline records.

A pure module: text in, :class:`ParseResult` out (or :class:`ParseError`). No I/O, no
clock. It reads every layout the devices print and the noise a terminal session
leaves around the table:

* the router layout (AR, the command reference): ``peer  offline-reason  version
  offline-time`` with dates ``YYYY-MM-DD HH:MM:SS``;
* the firewall layout (USG): an extra ``port`` column, hyphenated reasons, dates
  ``YYYY/MM/DD  HH:MM:SS``, separator lines of any length, header words that do not
  line up with the values below them;
* reasons longer than their column, which push the following columns right and can
  leave a single space before the version. Rows are therefore never cut at fixed
  column offsets: each row is anchored on the address at the start (validated with
  :mod:`ipaddress`), the optional port, the ``v1``/``v2`` token and the timestamp at
  the end; the reason is whatever lies between;
* noise: the echoed command, prompts (``<name>``, ``HRP_M<name>``, ``HRP_S<name>``,
  ``[name]``), ``Info:``/``Warning:`` lines, the timestamp line some firewalls print
  before every display output, CRLF line ends, trailing blanks, and pager remnants
  (``  ---- More ----`` followed by ANSI cursor-left/erase sequences, possibly with
  the next row continuing on the same line).

What the parser decides:

* A refused command (``Error: ...`` or ``Error[1]: ...`` lines, usually after a caret
  line) raises :class:`CommandRejected` carrying the device's error line. It is never
  "0 records".
* Text with no ``Current info Num`` line, no table header and no parsable row (an empty
  string, a prompt alone, another command's output) raises :class:`ParseError`: it is
  not this command's output.
* Anything else returns a :class:`ParseResult`. What went wrong in it is listed in
  ``problems``, never hidden: a ``Current info Num`` that does not match the rows
  (``count-mismatch``, e.g. a read that ended early), rows but no count line
  (``missing-count``), a line that looks like a row but cannot be parsed
  (``unparsed-row``, with its line number and text; the other rows still parse),
  and unrecognised lines (``garbage``). :attr:`ParseResult.complete` tells whether the
  table can be trusted to be whole.

Transport code maps :class:`CommandRejected` to ``command-rejected``, other
:class:`ParseError` to ``protocol`` and an incomplete result to ``incomplete-output``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from collector.records import OfflineRecord

__all__ = [
    "CommandRejected",
    "ParseError",
    "ParseResult",
    "Problem",
    "ProblemKind",
    "parse",
    "strip_terminal_noise",
]


class ProblemKind(StrEnum):
    """What can be wrong in an output that is still this command's output."""

    COUNT_MISMATCH = "count-mismatch"
    """``Current info Num`` differs from the number of rows in the table."""
    MISSING_COUNT = "missing-count"
    """A table or rows, but no ``Current info Num`` line to check them against."""
    UNPARSED_ROW = "unparsed-row"
    """A line that looks like a row but cannot be parsed (bad address, date, shape)."""
    GARBAGE = "garbage"
    """A line that is neither a row nor known noise."""

    @property
    def truncation(self) -> bool:
        """Whether this kind means rows may be missing from the result.

        Examples:
            >>> ProblemKind.COUNT_MISMATCH.truncation
            True
            >>> ProblemKind.GARBAGE.truncation
            False
        """
        return self in _TRUNCATION_KINDS


_TRUNCATION_KINDS = frozenset({ProblemKind.COUNT_MISMATCH, ProblemKind.MISSING_COUNT})


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an output, for the operator."""

    kind: ProblemKind
    message: str
    """One line saying what is wrong."""
    line: int | None = None
    """1-based line number in the input (lines split on ``\\n``), when one line is at fault."""
    text: str | None = None
    """That line, without its line end, trailing blanks and terminal escape sequences."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``kind``, ``message``, ``line``, ``text``."""
        return {
            "kind": self.kind.value,
            "message": self.message,
            "line": self.line,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The records of one output and what was wrong with it."""

    records: tuple[OfflineRecord, ...]
    problems: tuple[Problem, ...] = ()
    declared_count: int | None = None
    """The ``Current info Num`` the device printed; None when the line is missing."""

    @property
    def complete(self) -> bool:
        """True when the count line matches the rows parsed and nothing was truncated."""
        return (
            self.declared_count is not None
            and self.declared_count == len(self.records)
            and not any(problem.kind.truncation for problem in self.problems)
        )

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``parse --format json``: ``{"records": [...], "problems": [...]}``."""
        return {
            "records": [record.to_dict() for record in self.records],
            "problems": [problem.to_dict() for problem in self.problems],
        }


class ParseError(Exception):
    """The text is not usable ``display ike offline-info`` output (the parser's only error)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        """One line, for the operator."""
        self.line = line
        """1-based line number of the line at fault, if any."""


class CommandRejected(ParseError):
    """The device refused the command (``Error: ...``); never to be read as 0 records."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        """The device's error line, e.g. ``Error: Unrecognized command found at '^' position.``"""

    def __str__(self) -> str:
        return f"device refused the command: {self.message}"


# --- terminal noise ---------------------------------------------------------------

# VRP's pager prints "  ---- More ----", and when a key is pressed erases it with
# cursor-left + blanks + cursor-left ("\x1b[16D" + 16 spaces + "\x1b[16D"; some
# versions use 42 columns). The next row then follows on the same line.
_PAGER_PROMPT = re.compile(r"[ \t]*-{2,}[ \t]*More[ \t]*-{2,}")
# CSI sequences, a lone ESC, backspaces and other C0 controls that are not line
# structure (tab, LF, CR, VT and FF are kept: they are whitespace to the row patterns).
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0e-\x1f\x7f]")
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]|More")


def strip_terminal_noise(text: str) -> str:
    """Remove pager prompts and terminal control sequences, keeping the line structure.

    Examples:
        >>> strip_terminal_noise("  ---- More ----\\x1b[16D" + " " * 16 + "\\x1b[16D  1.1.1.1")
        '                  1.1.1.1'
        >>> strip_terminal_noise("a\\r\\nb")
        'a\\r\\nb'
    """
    if not _NEEDS_CLEANING.search(text):
        return text
    return _TERMINAL_CONTROL.sub("", _PAGER_PROMPT.sub("", text))


# --- line shapes (matched on lines stripped of surrounding whitespace) --------------

_ADDRESS = r"([0-9A-Fa-f:.]+)"
_VERSION_AND_TIME = (
    r"\s+[vV]([12])\s+"
    r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
)
# One compiled pattern per row shape. The reason is lazy so that it stops at the
# first " vN <timestamp>" that ends the line: a reason may itself contain spaces,
# hyphens or even a "v2" word.
_ROUTER_ROW = re.compile(_ADDRESS + r"\s+(\S.*?)" + _VERSION_AND_TIME, re.ASCII)
_FIREWALL_ROW = re.compile(_ADDRESS + r"\s+([0-9]{1,5})\s+(\S.*?)" + _VERSION_AND_TIME, re.ASCII)

_ERROR_LINE = re.compile(r"Error(?:\[[0-9]+\])?\s*:", re.ASCII)
_COUNT_LINE = re.compile(r"Current\s+info\s+Num\s*:\s*([0-9]{1,9})", re.ASCII | re.IGNORECASE)
_TITLE_LINE = re.compile(r"Ike\s+offline\s+information\s*:?", re.ASCII | re.IGNORECASE)
_HEADER_LINE = re.compile(r"peer\b.*\boffline", re.ASCII | re.IGNORECASE)
_PORT_WORD = re.compile(r"\bport\b", re.ASCII | re.IGNORECASE)
# <HUAWEI>, HRP_M<FW1>, HRP_S<FW1>, [HUAWEI], [~HUAWEI-ike] ... with or without a
# command after it (the echo).
_PROMPT_LINE = re.compile(r"(?:HRP_[MS])?(?:<[^<>\n]*>|\[[^\[\]\n]*\])", re.ASCII)
# The command echoed without a prompt (netmiko with strip_prompt, abbreviations).
_ECHO_LINE = re.compile(r"dis[a-z]*\s+ike\s+off", re.ASCII | re.IGNORECASE)
_MESSAGE_LINE = re.compile(r"(?:Info|Warning)\s*:", re.ASCII | re.IGNORECASE)
# USG firewalls print the clock before every display output: 2024-03-05 10:11:12.345 +08:00
_CLOCK_LINE = re.compile(
    r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}\s+[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:\s*[+-][0-9]{1,2}(?::?[0-9]{2})?)?(?:\s+[A-Za-z][A-Za-z ]*)?",
    re.ASCII,
)
# Lines that are probably a damaged row: they start with an address-like token or end
# with a version and a timestamp.
_ROW_LIKE = re.compile(
    r"[0-9A-Fa-f:.]*[0-9:][0-9A-Fa-f:.]*(?:\s|\Z)|.*\s[vV][12]\s+[0-9]{4}[-/]", re.ASCII
)


def _is_separator(line: str) -> bool:
    """A rule line of any length (string tests: no regex backtracking on long lines).

    Examples:
        >>> _is_separator("-" * 86)
        True
        >>> _is_separator("--")
        False
    """
    return ("---" in line or "===" in line) and not line.strip("-= \t")


@lru_cache(maxsize=4096)
def _address_error(text: str) -> str | None:
    """Why ``text`` is not an IP address, or None when it is one.

    Cached: a table of 200 rows usually names a handful of peers.

    Examples:
        >>> _address_error("2001:db8::1") is None
        True
        >>> _address_error("300.1.1.1")
        "'300.1.1.1' is not an IPv4 or IPv6 address"
    """
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IPv4 or IPv6 address"
    return None


class _Collector:
    """Walks the lines once, holding the state of one parse."""

    def __init__(self) -> None:
        self.records: list[OfflineRecord] = []
        self.problems: list[Problem] = []
        self.declared: int | None = None
        self.declared_line: tuple[int, str] | None = None
        self.saw_table = False
        self.firewall_first = True
        self.unparsed_rows = 0
        self.in_message = False
        """The last line classified was an Info:/Warning: message (or its continuation)."""

    def add_problem(self, kind: ProblemKind, message: str, number: int, line: str) -> None:
        self.problems.append(Problem(kind, message, number, line))

    def row(self, match: re.Match[str], port: str | None, number: int, line: str) -> bool:
        """Build a record from a row match; False (and a problem) if a value is invalid."""
        self.in_message = False
        if port is None:
            peer, reason, version, year, month, day, hour, minute, second = match.groups()
        else:
            peer, _, reason, version, year, month, day, hour, minute, second = match.groups()
        error = _address_error(peer)
        if error is None and port is not None and int(port) > 65535:
            error = f"port {port} is out of range"
        if error is None:
            try:
                when = datetime(
                    int(year), int(month), int(day), int(hour), int(minute), int(second)
                )
            except ValueError as exc:
                error = f"invalid offline time: {exc}"
        if error is not None:
            self.unparsed_rows += 1
            self.add_problem(ProblemKind.UNPARSED_ROW, f"row not parsed: {error}", number, line)
            return False
        self.records.append(
            OfflineRecord.build(
                peer, reason, int(version), when, None if port is None else int(port)
            )
        )
        return True

    def other(self, stripped: str, number: int, line: str) -> None:
        """Classify a line that is not a well-formed row."""
        continuing_message = self.in_message
        self.in_message = False
        if _ERROR_LINE.match(stripped):
            raise CommandRejected(stripped, number)
        count = _COUNT_LINE.fullmatch(stripped)
        if count:
            if self.declared is None:
                self.declared = int(count.group(1))
                self.declared_line = (number, line)
            else:
                self.add_problem(
                    ProblemKind.GARBAGE,
                    f"a second 'Current info Num' line; the first ({self.declared}) is used",
                    number,
                    line,
                )
            return
        if _is_separator(stripped) or stripped == "^" or _TITLE_LINE.fullmatch(stripped):
            return
        if _HEADER_LINE.match(stripped):
            self.saw_table = True
            self.firewall_first = _PORT_WORD.search(stripped) is not None
            return
        if _MESSAGE_LINE.match(stripped):
            self.in_message = True
            return
        if (
            _PROMPT_LINE.match(stripped)
            or _ECHO_LINE.match(stripped)
            or _CLOCK_LINE.fullmatch(stripped)
        ):
            return
        if _ROW_LIKE.match(stripped):
            self.unparsed_rows += 1
            self.add_problem(
                ProblemKind.UNPARSED_ROW,
                "row not parsed: expected address, [port,] reason, v1/v2 and a timestamp",
                number,
                line,
            )
            return
        if continuing_message:
            # VRP wraps long Info:/Warning: messages onto indented continuation lines.
            self.in_message = True
            return
        self.add_problem(ProblemKind.GARBAGE, "unrecognised line", number, line)

    def result(self, text: str) -> ParseResult:
        if self.declared is None and not self.saw_table and not self.records:
            raise self.not_this_output(text)
        rows_seen = len(self.records) + self.unparsed_rows
        if self.declared is None:
            self.problems.insert(
                0,
                Problem(
                    ProblemKind.MISSING_COUNT,
                    "no 'Current info Num' line: cannot tell whether all rows arrived"
                    f" ({rows_seen} rows seen)",
                ),
            )
        elif self.declared != rows_seen:
            number, line = self.declared_line if self.declared_line else (None, None)
            found = f"{rows_seen} rows were found"
            if self.unparsed_rows:
                found += f" ({len(self.records)} parsed, {self.unparsed_rows} not)"
            if rows_seen < self.declared:
                found += ": the output is truncated"
            self.problems.insert(
                0,
                Problem(
                    ProblemKind.COUNT_MISMATCH,
                    f"'Current info Num' says {self.declared} but {found}",
                    number,
                    line,
                ),
            )
        return ParseResult(tuple(self.records), tuple(self.problems), self.declared)

    def not_this_output(self, text: str) -> ParseError:
        """The error for text with no count line, no table header and no row."""
        if not text.strip():
            return ParseError("empty output: no 'Current info Num' line and no table")
        if not self.problems:
            return ParseError("no table in the output, only prompts, echoed commands or messages")
        first = self.problems[0]
        return ParseError(
            "not display ike offline-info output (no 'Current info Num' line and no table);"
            f" line {first.line}: {_shorten(first.text or '')!r}",
            first.line,
        )


def _shorten(text: str, limit: int = 80) -> str:
    """Cut a line for an error message.

    Examples:
        >>> _shorten("abc", 2)
        'ab...'
    """
    return text if len(text) <= limit else text[:limit] + "..."


def parse(text: str) -> ParseResult:
    """Parse the output of ``display ike offline-info`` as a session returned it.

    Args:
        text: The raw output, with or without the echoed command, prompts, pager
            remnants and CRLF line ends.

    Returns:
        The records in the order the device listed them (newest first), the problems
        found, and the declared ``Current info Num``.

    Raises:
        CommandRejected: The device refused the command (``Error: ...``).
        ParseError: The text is not this command's output at all (empty, a prompt
            alone, another command's output).

    Examples:
        >>> result = parse('''<HUAWEI> display ike offline-info
        ...   Current info Num :1
        ...   Ike offline information:
        ... ---------------------------------------------------------------------------
        ...   peer              offline-reason              version     offline-time
        ... ---------------------------------------------------------------------------
        ...   2.1.1.2           dpd timeout                 v2          2017-02-18 02:12:39
        ... ---------------------------------------------------------------------------
        ... <HUAWEI>''')
        >>> record = result.records[0]
        >>> record.peer, record.reason_code, record.ike_version, str(record.offline_time)
        ('2.1.1.2', 'dpd_timeout', 2, '2017-02-18 02:12:39')
        >>> result.complete
        True
    """
    collector = _Collector()
    router_row = _ROUTER_ROW.fullmatch
    firewall_row = _FIREWALL_ROW.fullmatch
    for index, raw in enumerate(strip_terminal_noise(text).split("\n")):
        stripped = raw.strip()
        if not stripped:
            continue
        # Rows are nearly every line: try them first, in the order the header suggests.
        if collector.firewall_first:
            match = firewall_row(stripped)
            if match is not None:
                collector.row(match, match.group(2), index + 1, raw.rstrip())
                continue
            match = router_row(stripped)
            if match is not None:
                collector.row(match, None, index + 1, raw.rstrip())
                continue
        else:
            match = router_row(stripped)
            if match is not None:
                collector.row(match, None, index + 1, raw.rstrip())
                continue
            match = firewall_row(stripped)
            if match is not None:
                collector.row(match, match.group(2), index + 1, raw.rstrip())
                continue
        collector.other(stripped, index + 1, raw.rstrip())
    return collector.result(text)
