"""What a VRP terminal prints around the output, in one place: prompts, the pager, questions
and error markers. The parser (:mod:`collector.core.parse`) recognises them in a saved or
collected text; the dialogue (:mod:`collector.ssh.vrp_dialogue`) in the live stream.

Examples:
    >>> bool(PROMPT_LINE.match("HRP_M<FW1>display ike offline-info"))
    True
    >>> PAGER.sub("", "a  ---- More ----\x1b[16D                \x1b[16Db")
    'ab'
    >>> bool(QUESTION.search("Save the configuration? [Y/N]:")), bool(ERROR_MARK.match("Error: x"))
    (True, True)
"""

from __future__ import annotations

import re

_MORE = r"-{2,}[ \t]*More[ \t]*-{2,}"
_HRP = r"(?:HRP_[MS])?"
"""HA firewalls prefix the prompt with their HRP role (``HRP_M<FW1>``, ``HRP_S<FW1>``)."""
_ERROR = r"Error(?:\[[0-9]+\])?\s*:"

# VRP's pager prints "  ---- More ----", and when a key is pressed erases it with
# cursor-left + blanks + cursor-left ("\x1b[16D" + 16 spaces + "\x1b[16D"; some
# versions use 42 columns). The next row then follows on the same line.
PAGER_PROMPT = re.compile(rf"[ \t]*{_MORE}")
"""The pager prompt, wherever it stands."""
PAGER = re.compile(rf"[ \t]*{_MORE}(?:[ \t]*\x1b\[[0-9]*D[ ]*\x1b\[[0-9]*D)?")
"""The pager prompt with the erase sequence that follows a key press."""
MORE_AT_END = re.compile(r"-{4}[ \t]*More[ \t]*-{4}[ \t]*$")
"""The whole pager prompt (``  ---- More ----``) at the end of a chunk: one ending in
``---- More --`` is not one yet, so a page is answered once whatever the chunking."""

ERROR_MARK = re.compile(_ERROR, re.ASCII)
"""``Error:`` / ``Error[1]:`` at the start of a (stripped) line: the device refused."""
ERROR_LINE = re.compile(rf"^\s*{_ERROR}", re.MULTILINE)
"""An ``Error:`` line anywhere in a text."""
MESSAGE_MARK = re.compile(r"(?:Info|Warning)\s*:", re.ASCII | re.IGNORECASE)

# <HUAWEI>, HRP_M<FW1>, HRP_S<FW1>, [HUAWEI], [~HUAWEI-ike] ... with or without a
# command after it (the echo).
PROMPT_LINE = re.compile(rf"{_HRP}(?:<[^<>\n]*>|\[[^\[\]\n]*\])", re.ASCII)
LOGIN_PROMPT = re.compile(
    rf"(?:^|[\r\n])[ \t]*(?P<prompt>{_HRP}"
    r"(?:<(?P<angle>[^<>\r\n]{1,80})>|\[~?\*?(?P<square>[^\[\]\r\n]{1,80})\]))[ \t]*$"
)
"""The first prompt after login, its name in ``angle`` or ``square``."""
PROMPT_AT_END = re.compile(
    rf"(?:^|[\r\n])[ \t]*{_HRP}[<\[]~?\*?(?P<name>[^<>\[\]\r\n]{{1,80}})[>\]][ \t]*$"
)
"""A prompt at the end of the text (the output of a command is complete)."""
QUESTION = re.compile(r"\[\s*Y\s*/\s*N\s*\]\s*:?\s*$|\(\s*y\s*/\s*n\s*\)\s*:?\s*$", re.I)
"""A ``[Y/N]`` or ``(y/n)`` question at the end of the text (always answered ``N``)."""
