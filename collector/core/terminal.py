"""Terminal control sequences out of device text (:func:`strip_controls`); text as one line
(:func:`one_line`).

Device output is untrusted and is printed again on the operator's terminal (reports,
``-vv``), so nothing that a terminal would act on may survive into a record or a message.
What is removed (ECMA-48 names):

* CSI sequences, 7-bit ``ESC [`` and the one-character C1 ``CSI`` (U+009B), with their
  parameter, intermediate and final bytes (``\\x1b[2J``, ``\\x9b2J``);
* control strings: OSC (``ESC ]`` or U+009D), DCS (``ESC P`` / U+0090), SOS (``ESC X`` /
  U+0098), PM (``ESC ^`` / U+009E) and APC (``ESC _`` / U+009F), up to their terminator
  (ST: ``ESC \\`` or U+009C; BEL also ends an OSC, as xterm accepts). A string that is not
  terminated ends at the line end: the rest of the output keeps its lines;
* other escape sequences (``ESC 7``, ``ESC ( B``, ``ESC =``) and a lone ESC;
* the remaining C0 controls but tab and line feed (CR, BS, BEL ...), DEL and every C1
  control (U+0080-U+009F).

Tabs and line feeds are kept, so line numbers stay those of the device's output.
"""

from __future__ import annotations

import re

__all__ = ["has_controls", "one_line", "strip_controls"]

_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
_ESCAPE = r"\x1b[ -/]*[0-~]?"
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
# Order matters: the longer forms first, the single control characters last.
_SEQUENCE = re.compile(f"{_STRING}|{_CSI}|{_ESCAPE}|{_CONTROL}")
_ANY_CONTROL = re.compile(_CONTROL)


def has_controls(text: str) -> bool:
    """Whether ``text`` holds anything :func:`strip_controls` would remove.

    Examples:
        >>> has_controls("a\\tb\\n")
        False
        >>> has_controls("dpd\\x9b2J timeout")
        True
    """
    return _ANY_CONTROL.search(text) is not None


def strip_controls(text: str) -> str:
    """``text`` without terminal control sequences and control characters (tab, LF kept).

    Examples:
        >>> strip_controls("\\x1b]0;title\\x07  1.1.1.1  dpd timeout")
        '  1.1.1.1  dpd timeout'
        >>> strip_controls("dpd\\x9b2J timeout\\r\\n")
        'dpd timeout\\n'
        >>> strip_controls("a\\x1bP1$r\\x1b\\\\b\\x1b")
        'ab'
    """
    if _ANY_CONTROL.search(text) is None:
        return text
    return _SEQUENCE.sub("", text)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` as one line for the operator: whitespace runs collapsed, control characters
    replaced with ``?`` (device text must not drive a terminal), cut to ``limit`` characters
    (ending ``...``). The one "collapse to one line" of the collector.

    Examples:
        >>> one_line("Error: bad\\n  command\\x1b[2J")
        'Error: bad command?[2J'
        >>> one_line("x" * 20, limit=10)
        'xxxxxxx...'
    """
    line = _CONTROL_CHARACTERS.sub("?", " ".join(str(text).split()))
    if limit is not None and len(line) > limit:
        line = line[: limit - 3] + "..."
    return line
