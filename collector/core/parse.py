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
  column offsets: each row is anchored on the address at the start (IPv4 checked by a
  strict dotted-quad pattern, IPv6 with :mod:`ipaddress`), the optional port, the
  ``v1``/``v2`` token and the timestamp at the end; the reason is whatever lies
  between. The shape tried first (with or without a port) follows the table header;
  without a header the port shape is tried first;
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

Records carry the reason code and category of
:func:`collector.core.records.classify_reason` (the same as ``OfflineRecord.build``);
unknown reasons are kept verbatim with code ``unknown``.

Transport code maps :class:`CommandRejected` to ``command-rejected``, other
:class:`ParseError` to ``protocol`` and an incomplete result to ``incomplete-output``.

Size: over 500 lines because the two table grammars (offline-info in its router, firewall
and multi-SPU layouts; NE40E offline history) share one line classifier, one problem
vocabulary and the fast path they are benchmarked on (bench/bench_parser.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from collector.core import vrp_text
from collector.core.errors import CollectorError
from collector.core.records import OfflineRecord, classify_reason
from collector.core.terminal import has_controls, strip_controls

__all__ = [
    "CommandRejected",
    "ParseError",
    "ParseResult",
    "Problem",
    "ProblemKind",
    "parse",
    "parse_offline_history",
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


class ParseError(CollectorError):
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

# Every other terminal control (CSI incl. C1 CSI, OSC/DCS strings, C0/C1 controls, lone
# ESC) goes through collector.core.terminal. None may reach a record: reports print reasons on
# the operator's terminal.


def strip_terminal_noise(text: str) -> str:
    """Remove pager prompts, terminal control sequences and CRs; LFs are kept.

    Examples:
        >>> strip_terminal_noise("  ---- More ----\\x1b[16D" + " " * 16 + "\\x1b[16D  1.1.1.1")
        '                  1.1.1.1'
        >>> strip_terminal_noise("a\\r\\nb\\x07")
        'a\\nb'
    """
    # isprintable() is a fast C scan; most lines have no control character at all.
    if (text.isprintable() or not has_controls(text)) and "More" not in text:
        return text
    return strip_controls(vrp_text.PAGER_PROMPT.sub("", text))


# --- line shapes ------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# The address: a strict dotted-quad IPv4 (validated by the pattern itself: no call per
# row) or anything IPv6-looking (it has a colon), validated with ipaddress (cached).
_ADDRESS = rf"[ \t]*+({_OCTET}(?:\.{_OCTET}){{3}}|[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+)[ \t]++"
# The reason is what lies between the address (or port) and " vN <timestamp>" at the
# end of the line: words, lazily, so that a reason containing spaces, hyphens or even a
# "v2" word still ends where the version column does. Possessive quantifiers (3.11)
# stop the engine from re-trying every split of the padding blanks. A reason holding a
# control character (str.isprintable() is False) is sent to the careful path, which
# strips terminal noise first: none may reach a record.
_REASON_TO_END = (
    r"(\S++(?:[ \t]++\S++)*?)[ \t]++[vV]([12])[ \t]++"
    r"([0-9]{4}[-/][0-9]{2}[-/][0-9]{2}[ \t]++[0-9]{2}:[0-9]{2}:[0-9]{2})[ \t\r]*+"
)


def _row_shape(port: str) -> re.Pattern[str]:
    """One compiled pattern per row shape, matching any single line (MULTILINE).

    Groups: peer, port (an empty group in the router shape), reason, version digit,
    timestamp, and ``other``: the whole line when it is not a well-formed row. With
    that catch-all, ``findall`` over a text yields exactly one tuple per line.
    """
    return re.compile(rf"^(?:{_ADDRESS}{port}{_REASON_TO_END}|(.*))$", re.ASCII | re.MULTILINE)


_ROUTER_ROW = _row_shape("()")
_FIREWALL_ROW = _row_shape(r"([0-9]{1,5})[ \t]++")
_OTHER_GROUP = 6
_ADDRESS_START = frozenset("0123456789abcdefABCDEF:")

_COUNT_LINE = re.compile(r"Current\s+info\s+Num\s*:\s*([0-9]{1,9})", re.ASCII | re.IGNORECASE)
_TITLE_LINE = re.compile(r"Ike\s+offline\s+information\s*:?", re.ASCII | re.IGNORECASE)
_HEADER_LINE = re.compile(r"peer\b.*\boffline", re.ASCII | re.IGNORECASE)
_HEADER_SEARCH = re.compile(r"^[ \t]*peer\b.*\boffline.*$", re.ASCII | re.IGNORECASE | re.MULTILINE)
_PORT_WORD = re.compile(r"\bport\b", re.ASCII | re.IGNORECASE)
# The command echoed without a prompt (netmiko with strip_prompt, abbreviations).
_ECHO_LINE = re.compile(r"dis[a-z]*\s+ike\s+off", re.ASCII | re.IGNORECASE)
# HA firewalls (HRP) print a timestamp line before every display output, in the forms
# docs/DEVICES.md quotes: "2024-03-05 10:11:12.345 +08:00", "2021-07-23 11:24:18.392 "
# (NE8000/VRP8: milliseconds, a trailing blank, no offset) and, on older USG firmware,
# "11:01:45  2014/07/08" (the time first). Outside the table they are noise anyway; in
# the careful path (no table found) they must not read as damaged rows.
_CLOCK_LINE = re.compile(
    r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}\s+[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:\s*[+-][0-9]{1,2}(?::?[0-9]{2})?)?(?:\s+[A-Za-z][A-Za-z ]*)?"
    r"|[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?\s+[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}"
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


# The reason taxonomy lookup folds spellings with a regex: cache it per printed text
# (a table repeats a few reasons 200 times).
_classify = lru_cache(maxsize=1024)(classify_reason)
_VERSIONS = {"1": 1, "2": 2}
_to_datetime = datetime.fromisoformat


def _iso_stamp(stamp: str) -> str:
    """An offline time as the row pattern captured it, in the form fromisoformat reads.

    Examples:
        >>> _iso_stamp("2024/03/05  10:11:12")
        '2024-03-05 10:11:12'
    """
    return f"{stamp[:10].replace('/', '-')} {stamp[-8:]}"


def _find_header(text: str) -> tuple[int, int, str] | None:
    """The table header line: ``(start, end, line)`` offsets in ``text``, or None.

    Looks for "ffline" with ``str.find`` (offline/Offline) before falling back to a regex
    search over the whole text, which costs more than parsing the rows.

    Examples:
        >>> _find_header("x\\n  Peer   Port  Offline-reason  Version  Offline-time\\n")[2]
        'Peer   Port  Offline-reason  Version  Offline-time'
        >>> _find_header("  Ike offline information:") is None
        True
    """
    start = 0
    while (index := text.find("ffline", start)) >= 0:
        line_start = text.rfind("\n", 0, index) + 1
        line_end = text.find("\n", index)
        if line_end < 0:
            line_end = len(text)
        line = strip_terminal_noise(text[line_start:line_end]).strip()
        if _HEADER_LINE.match(line):
            return line_start, line_end, line
        start = line_end
    header = _HEADER_SEARCH.search(text)
    if header is None:
        return None
    return header.start(), header.end(), header.group().strip()


def _header_has_port(header: tuple[int, int, str] | None) -> bool:
    """Whether the table header names a port column (firewall layout).

    True when there is no header: the firewall shape is then tried first, as a
    router row never has a number between the address and the reason.

    Examples:
        >>> _header_has_port((0, 0, "Peer   Port  Offline-reason  Version  Offline-time"))
        True
        >>> _header_has_port((0, 0, "peer  offline-reason  version  offline-time"))
        False
    """
    return header is None or _PORT_WORD.search(header[2]) is not None


def _rows_begin(text: str, header: tuple[int, int, str] | None) -> int:
    """Where the table's rows begin: the line after the rule under the header.

    A row is only ever a line inside the table: after the header and the rule below it
    (blank or pager lines may stand between them; a table without that rule starts
    right after the header), up to the closing rule, which :func:`parse` finds while it
    reads the rows. A layout without a header starts after ``Current info Num`` and its
    title line. Text with neither is all candidate rows (0): the careful path then
    reports what it is. Whatever stands before the table (timestamp lines in any
    form, banners) or after its closing rule is noise.

    Examples:
        >>> text = "10:01:45  2014/07/08\\n peer offline-reason version offline-time\\n"
        >>> text += "---\\n 1.1.1.1 dpd timeout v2 2024-01-01 00:00:00\\n---\\n<R>"
        >>> text[_rows_begin(text, _find_header(text)):].split("\\n")[0]
        ' 1.1.1.1 dpd timeout v2 2024-01-01 00:00:00'
    """
    if header is not None:
        begin = header[1] + 1
    else:
        count = _COUNT_LINE.search(text)
        if count is None:
            return 0
        begin = text.find("\n", count.end()) + 1 or len(text)
        title = _TITLE_LINE.search(text, begin, text.find("\n", begin) + 1 or len(text))
        if title is not None:
            begin = text.find("\n", title.end()) + 1 or len(text)
    position = begin
    for _ in range(_RULE_LOOKAHEAD):
        if position >= len(text):
            break
        line_end = text.find("\n", position)
        if line_end < 0:
            line_end = len(text)
        line = strip_terminal_noise(text[position:line_end]).strip()
        position = line_end + 1
        if _is_separator(line):
            return min(position, len(text))
        if _is_row(line):
            break  # a row before any rule: the rows start right after the header
    return min(begin, len(text))


_RULE_LOOKAHEAD = 6
"""Lines after the header searched for the rule under it (noise may stand between)."""


def _is_row(line: str) -> bool:
    """Whether a line is a well-formed row of either shape.

    Examples:
        >>> _is_row("  1.1.1.1  dpd timeout  v2  2024-01-01 00:00:00")
        True
        >>> _is_row("<HUAWEI>")
        False
    """
    for shape in (_ROUTER_ROW, _FIREWALL_ROW):
        match = shape.match(line)
        if match is not None and match.lastindex != _OTHER_GROUP:
            return True
    return False


def _is_closing_rule(other: str) -> bool:
    """Whether a line the row pattern did not take is the table's closing rule.

    Examples:
        >>> _is_closing_rule("  ---- More ----\\x1b[16D" + " " * 16 + "\\x1b[16D" + "-" * 20)
        True
        >>> _is_closing_rule("  ---- More ----")
        False
    """
    if "---" not in other and "===" not in other:
        return False
    return _is_separator(strip_terminal_noise(other).strip())


def _why_not_a_row(stripped: str) -> str:
    """The most specific reason a row-like line did not parse.

    Examples:
        >>> _why_not_a_row("10.1.1.300  dpd timeout  v2  2024-01-01 00:00:00")
        "'10.1.1.300' is not an IPv4 or IPv6 address"
    """
    address = stripped.split(None, 1)[0]
    return _address_error(address) or (
        "expected address, [port,] reason, v1/v2 and a timestamp YYYY-MM-DD HH:MM:SS"
    )


class _Collector:
    """The state of one parse, and the careful line-by-line path.

    :func:`parse` finds well-formed rows with one regex scan over the whole text; every
    other line (noise, damaged rows, pager remnants) comes here one at a time.
    """

    def __init__(self, firewall_first: bool) -> None:
        self.records: list[OfflineRecord] = []
        self.problems: list[Problem] = []
        self.declared: int | None = None
        self.declared_line: tuple[int, str] | None = None
        self.saw_table = False
        self.firewall_first = firewall_first
        self.unparsed_rows = 0
        self.in_message = False
        """The last line classified was an Info:/Warning: message (or its continuation)."""

    def add_problem(self, kind: ProblemKind, message: str, number: int, line: str) -> None:
        self.problems.append(Problem(kind, message, number, line))

    def row(self, fields: tuple[str, ...], number: int, line: str) -> None:
        """Build a record from the fields of a row, or report why they are invalid."""
        peer, port_text, reason, version, stamp, _ = fields
        port = int(port_text) if port_text else None
        error = _address_error(peer) if ":" in peer else None
        if error is None and port is not None and port > 65535:
            error = f"port {port} is out of range"
        if error is None:
            try:
                when = _to_datetime(_iso_stamp(stamp))
            except ValueError as exc:
                error = f"invalid offline time {stamp}: {exc}"
        if error is not None:
            self.unparsed_rows += 1
            self.add_problem(
                ProblemKind.UNPARSED_ROW, f"row not parsed: {error}", number, line.rstrip()
            )
            return
        code, category = _classify(reason)
        self.records.append(
            OfflineRecord(peer, port, reason, code, category, _VERSIONS[version], when)
        )

    def line(self, raw: str, number: int) -> None:
        """Classify one line: a row (after removing terminal noise), noise, or a problem."""
        clean = strip_terminal_noise(raw)
        stripped = clean.strip()
        if not stripped:
            return
        if stripped[0] in _ADDRESS_START:
            shapes = (
                (_FIREWALL_ROW, _ROUTER_ROW)
                if self.firewall_first
                else (_ROUTER_ROW, _FIREWALL_ROW)
            )
            for shape in shapes:
                match = shape.match(clean)
                if match is not None and match.lastindex != _OTHER_GROUP:
                    self.in_message = False
                    self.row(tuple(value or "" for value in match.groups()), number, clean)
                    return
        self.other(stripped, number, clean.rstrip())

    def outside(self, raw: str, number: int) -> None:
        """A line before or after the table: never a row, whatever it looks like.

        Timestamp lines in any form, banners, prompts are noise; an unknown line (a
        row-like one included) is reported as ``garbage``, which does not make the
        table incomplete.
        """
        clean = strip_terminal_noise(raw)
        stripped = clean.strip()
        if stripped:
            self.other(stripped, number, clean.rstrip(), outside=True)

    def other(self, stripped: str, number: int, line: str, *, outside: bool = False) -> None:
        """Classify a line that is not a well-formed row (``outside``: of the table)."""
        continuing_message = self.in_message
        self.in_message = False
        if _is_separator(stripped):
            return
        if vrp_text.ERROR_MARK.match(stripped):
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
        if stripped == "^" or _TITLE_LINE.fullmatch(stripped):
            return
        if _HEADER_LINE.match(stripped):
            self.saw_table = True
            self.firewall_first = _PORT_WORD.search(stripped) is not None
            return
        if vrp_text.MESSAGE_MARK.match(stripped):
            self.in_message = True
            return
        if (
            vrp_text.PROMPT_LINE.match(stripped)
            or _ECHO_LINE.match(stripped)
            or _CLOCK_LINE.fullmatch(stripped)
        ):
            return
        if outside:
            if not continuing_message:
                self.add_problem(
                    ProblemKind.GARBAGE, "unrecognised line outside the table", number, line
                )
            return
        if _ROW_LIKE.match(stripped):
            self.unparsed_rows += 1
            self.add_problem(
                ProblemKind.UNPARSED_ROW,
                f"row not parsed: {_why_not_a_row(stripped)}",
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


# --- NE40E / NetEngine 8000: display ike offline history -------------------------------

# One section per slot (docs/DEVICES.md has the sample and where it came from):
#   IKE Offline Information for Slot : 1
#   Current Record Number : 1
#   --------------------------------------------------------------
#   PEER                  VPN        TIME                  REASON
#   --------------------------------------------------------------
#   192.168.1.2:500       -          2021-07-23 11:24:18   Receive phase1 delete info
#   --------------------------------------------------------------
_HISTORY_MARK = re.compile(
    r"IKE\s+Offline\s+Information\s+for\s+Slot|Current\s+Record\s+Number\s*:"
    r"|^[ \t]*PEER[ \t]+VPN[ \t]+TIME[ \t]+REASON",
    re.ASCII | re.IGNORECASE | re.MULTILINE,
)
_HISTORY_SECTION = re.compile(
    r"IKE\s+Offline\s+Information\s+for\s+Slot\s*:\s*([0-9]{1,3}(?:/[0-9]{1,3})?)",
    re.ASCII | re.IGNORECASE,
)
_HISTORY_COUNT = re.compile(r"Current\s+Record\s+Number\s*:\s*([0-9]{1,9})", re.ASCII | re.I)
_HISTORY_HEADER = re.compile(r"PEER\s+VPN\s+TIME\s+REASON\b", re.ASCII | re.IGNORECASE)
_HISTORY_ROW = re.compile(
    r"[ \t]*(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<v6port>[0-9]{1,5})"
    r"|(?P<v4>[0-9]{1,3}(?:\.[0-9]{1,3}){3})(?::(?P<v4port>[0-9]{1,5}))?"
    r"|(?P<bare>[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*))"
    r"[ \t]+(?P<vpn>\S+)[ \t]+"
    r"(?P<date>[0-9]{4}[-/][0-9]{2}[-/][0-9]{2})[ \t]+(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.[0-9]+)?[ \t]+(?P<reason>\S(?:.*\S)?)[ \t\r]*",
    re.ASCII,
)
_NO_VPN = "-"


class _HistorySection:
    """One slot's part of an offline-history output, while it is read."""

    __slots__ = ("declared", "line", "rows", "slot", "text")

    def __init__(self, slot: str | None, line: int, text: str) -> None:
        self.slot = slot
        self.line = line
        self.text = text
        self.declared: int | None = None
        self.rows = 0


def parse_offline_history(text: str) -> ParseResult:
    """Parse NE40E/NetEngine 8000 ``display ike offline history`` output (all slots).

    Each record carries its ``slot`` and ``vpn_instance`` (None for ``-``); the layout
    prints the peer as ``ip:port`` (``[v6]:port`` for IPv6) and no IKE version, so
    ``ike_version`` is None. Each slot's ``Current Record Number`` is checked against its
    own rows; ``declared_count`` is their sum. Rows are only read inside a section's
    table (between the rule under the header and the closing rule).

    Raises:
        CommandRejected: the device refused the command.
        ParseError: no section, count or table at all.

    Examples:
        >>> rule = "-" * 60
        >>> result = parse_offline_history("\\n".join([
        ...     "IKE Offline Information for Slot : 1", "Current Record Number : 1", rule,
        ...     "PEER              VPN    TIME                  REASON", rule,
        ...     "192.168.1.2:500   -      2021-07-23 11:24:18   Receive phase1 delete info",
        ...     rule]))
        >>> record = result.records[0]
        >>> record.peer, record.port, record.slot, record.vpn_instance, record.reason_code
        ('192.168.1.2', 500, '1', None, 'peer_phase1_delete')
        >>> result.complete, record.ike_version
        (True, None)
    """
    records: list[OfflineRecord] = []
    problems: list[Problem] = []
    sections: list[_HistorySection] = []
    section: _HistorySection | None = None
    in_table = False
    after_header = False
    for number, raw in enumerate(text.split("\n"), 1):
        line = strip_terminal_noise(raw).rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if vrp_text.ERROR_MARK.match(stripped):
            raise CommandRejected(stripped, number)
        title = _HISTORY_SECTION.search(stripped)
        if title is not None:
            section = _HistorySection(title.group(1), number, line)
            sections.append(section)
            in_table = after_header = False
            continue
        count = _HISTORY_COUNT.fullmatch(stripped)
        if count is not None:
            if section is None or section.declared is not None:
                section = _HistorySection(None, number, line)
                sections.append(section)
            section.declared = int(count.group(1))
            continue
        if _HISTORY_HEADER.match(stripped):
            if section is None:
                section = _HistorySection(None, number, line)
                sections.append(section)
            in_table, after_header = False, True
            continue
        if _is_separator(stripped):
            if after_header:
                in_table, after_header = True, False
            elif in_table:
                in_table = False
            continue
        after_header = False
        if not in_table or section is None:
            continue  # prompts, the echo, timestamp lines, banners: noise
        match = _HISTORY_ROW.fullmatch(line)
        record = _history_record(match, section.slot) if match is not None else None
        section.rows += 1
        if isinstance(record, OfflineRecord):
            records.append(record)
        else:
            why = record or "expected PEER (ip:port), VPN, TIME and REASON"
            problems.append(
                Problem(ProblemKind.UNPARSED_ROW, f"row not parsed: {why}", number, line)
            )
    if not sections:
        raise ParseError(
            "not display ike offline history output (no slot section, record number or table)"
        )
    problems[:0] = _history_count_problems(sections)
    counted = [item.declared for item in sections if item.declared is not None]
    return ParseResult(tuple(records), tuple(problems), sum(counted) if counted else None)


def _is_offline_history(text: str) -> bool:
    """Whether text is NE40E ``display ike offline history`` output (its marks).

    Examples:
        >>> _is_offline_history("  IKE Offline Information for Slot : 1")
        True
        >>> _is_offline_history("  Current info Num :0")
        False
    """
    marks = "Record Number" in text or "for Slot" in text or "VPN" in text
    return marks and _HISTORY_MARK.search(text) is not None


def _history_count_problems(sections: list[_HistorySection]) -> list[Problem]:
    """Each slot's ``Current Record Number`` against its own rows."""
    problems: list[Problem] = []
    for item in sections:
        slot = f"slot {item.slot or '?'}"
        if item.declared is None:
            message = f"{slot}: no 'Current Record Number' line ({item.rows} rows seen)"
            problems.append(Problem(ProblemKind.MISSING_COUNT, message, item.line, item.text))
        elif item.declared != item.rows:
            found = f"{item.rows} rows were found"
            if item.rows < item.declared:
                found += ": the output is truncated"
            message = f"{slot}: 'Current Record Number' says {item.declared} but {found}"
            problems.append(Problem(ProblemKind.COUNT_MISMATCH, message, item.line, item.text))
    return problems


def _history_record(match: re.Match[str], slot: str | None) -> OfflineRecord | str:
    """A record from an offline-history row, or why the row is invalid."""
    peer = match["v4"] or match["v6"] or match["bare"]
    port_text = match["v4port"] or match["v6port"]
    error = _address_error(peer)
    port = int(port_text) if port_text else None
    if error is None and port is not None and port > 65535:
        error = f"port {port} is out of range"
    if error is not None:
        return error
    try:
        when = datetime.fromisoformat(f"{match['date'].replace('/', '-')} {match['time']}")
    except ValueError as exc:
        return f"invalid offline time {match['date']} {match['time']}: {exc}"
    vpn = match["vpn"]
    reason = match["reason"]
    code, category = _classify(reason)
    return OfflineRecord(
        peer, port, reason, code, category, None, when, slot, None, None if vpn == _NO_VPN else vpn
    )


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
    # The offline-info header ("peer ... offline-time") is near the top and found
    # cheaply; only text without one is looked at as NE40E offline history.
    header = _find_header(text)
    if header is None and _is_offline_history(text):
        return parse_offline_history(text)
    collector = _Collector(firewall_first=_header_has_port(header))
    begin = _rows_begin(text, header)
    offset = 0
    if begin:
        before = text[:begin].split("\n")
        before.pop()  # text[:begin] ends with the line end of the line before the rows
        for number, line in enumerate(before, 1):
            collector.outside(line, number)
        offset = len(before)
    region = text[begin:] if begin else text
    shape = _FIREWALL_ROW if collector.firewall_first else _ROUTER_ROW
    # Router stamps are already ISO (2017-02-18 02:12:39), firewall ones are not
    # (2017/02/18  02:12:39). A router row written the firewall way fails
    # fromisoformat and is read by the careful path.
    iso_stamps = shape is _ROUTER_ROW
    append = collector.records.append
    classify = _classify
    to_datetime = _to_datetime
    versions = _VERSIONS
    # A named tuple's generated __new__ only packs its arguments into the tuple:
    # tuple.__new__ with the values builds the same record without that extra Python
    # frame (0.16 vs 0.52 us a record, python -m timeit on the benchmark machine).
    new_record = tuple.__new__
    lines: list[str] | None = None
    # The hot loop: one regex pass (findall, so no match objects) turns every line
    # of the table into a tuple; a well-formed IPv4 row becomes a record right here.
    # Everything else (noise, IPv6 peers, damaged rows, pager remnants) goes to the
    # careful path.
    for index, (peer, port, reason, version, stamp, other) in enumerate(shape.findall(region), 1):
        if (
            peer
            and ":" not in peer
            and reason.isprintable()
            and (len(port) < 5 or int(port) <= 65535)
        ):
            try:
                when = to_datetime(stamp if iso_stamps else _iso_stamp(stamp))
            except ValueError:
                pass  # the careful path reports the invalid date
            else:
                code, category = classify(reason)
                append(
                    new_record(
                        OfflineRecord,
                        (
                            peer,
                            int(port) if port else None,
                            reason,
                            code,
                            category,
                            versions[version],
                            when,
                            None,
                            None,
                            None,
                        ),
                    )
                )
                continue
        elif not other and not reason:
            continue  # an empty line
        number = offset + index
        if other:
            if begin and _is_closing_rule(other):
                if lines is None:
                    lines = region.split("\n")
                for after, line in enumerate(lines[index:], number + 1):
                    collector.outside(line, after)
                break
            collector.line(other, number)
            continue
        if lines is None:
            lines = region.split("\n")
        if not reason.isprintable():
            collector.line(lines[index - 1], number)
            continue
        collector.in_message = False
        fields = (peer, port, reason, version, stamp, other)
        collector.row(fields, number, lines[index - 1])
    return collector.result(text)
