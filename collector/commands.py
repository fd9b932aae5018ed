"""The closed list of what the collector may ever type on a device.

The collector is read-only: every line the transport writes to a device channel goes
through :func:`check_command` (or :func:`check_keystrokes` for raw channel writes), and
anything not listed here is refused before it reaches the socket. The list:

* ``screen-length 0 temporary`` - turn paging off for this session only (not saved);
* ``display ike offline-info`` and ``display ike offline-info peer <IPv4>``;
* ``display clock``;
* ``N`` - the answer to a post-login ``[Y/N]`` question (password change, "save the
  configuration now?"); never ``Y``;
* ``quit`` - leave the session;
* an empty line (Enter) and a single space (the key that turns a ``---- More ----`` page).
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum

__all__ = [
    "ALLOWED_COMMANDS",
    "ANSWER_NO",
    "CLOCK",
    "DISABLE_PAGING",
    "OFFLINE_INFO",
    "PAGER_KEY",
    "QUIT",
    "CommandNotAllowed",
    "InvalidPeer",
    "check_command",
    "check_keystrokes",
    "offline_info_command",
    "validate_peer",
]

DISABLE_PAGING = "screen-length 0 temporary"
OFFLINE_INFO = "display ike offline-info"
CLOCK = "display clock"
ANSWER_NO = "N"
QUIT = "quit"
PAGER_KEY = " "
"""What the collector types at ``---- More ----`` (space: next page)."""


class Allowed(StrEnum):
    """The kinds of line the collector may send."""

    DISABLE_PAGING = DISABLE_PAGING
    OFFLINE_INFO = OFFLINE_INFO
    OFFLINE_INFO_PEER = OFFLINE_INFO + " peer <IPv4>"
    CLOCK = CLOCK
    ANSWER_NO = ANSWER_NO
    QUIT = QUIT


ALLOWED_COMMANDS: frozenset[str] = frozenset(kind.value for kind in Allowed)
"""Every allowed line, the peer form with its ``<IPv4>`` placeholder."""

_FIXED: frozenset[str] = frozenset({DISABLE_PAGING, OFFLINE_INFO, CLOCK, ANSWER_NO, QUIT})
_PEER_FORM = re.compile(re.escape(OFFLINE_INFO) + r" peer ([0-9.]{7,15})", re.ASCII)


class CommandNotAllowed(ValueError):
    """A line that is not on the allowed list (the collector never sends it)."""


class InvalidPeer(ValueError):
    """A ``--peer`` value that is not a dotted-decimal IPv4 address."""


def validate_peer(peer: str) -> str:
    """Return ``peer`` if it is a plain dotted-decimal IPv4 address, else raise.

    Anything with whitespace, a newline, a zone, leading zeros or extra text is refused
    (it would otherwise reach the device's command line).

    Raises:
        InvalidPeer: with a one-line message naming the value.

    Examples:
        >>> validate_peer("10.1.1.2")
        '10.1.1.2'
        >>> validate_peer("10.1.1.2\\nsave")
        Traceback (most recent call last):
        ...
        collector.commands.InvalidPeer: peer '10.1.1.2\\nsave' is not a dotted-decimal IPv4 \
address (like 10.1.1.2)
    """
    message = f"peer {peer!r} is not a dotted-decimal IPv4 address (like 10.1.1.2)"
    if not isinstance(peer, str) or not re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", peer):
        raise InvalidPeer(message)
    try:
        address = ipaddress.IPv4Address(peer)
    except ValueError:
        raise InvalidPeer(message) from None
    if str(address) != peer:  # leading zeros: 010.1.1.2
        raise InvalidPeer(message)
    return peer


def offline_info_command(peer: str | None = None) -> str:
    """The ``display ike offline-info`` command line, optionally for one peer.

    Examples:
        >>> offline_info_command()
        'display ike offline-info'
        >>> offline_info_command("192.0.2.7")
        'display ike offline-info peer 192.0.2.7'
    """
    if peer is None:
        return OFFLINE_INFO
    return f"{OFFLINE_INFO} peer {validate_peer(peer)}"


def check_command(command: str) -> None:
    """Refuse any line that is not on the allowed list.

    Args:
        command: One line as it will be typed, without the line end. The empty line
            (a bare Enter) is allowed.

    Raises:
        CommandNotAllowed: the line is not allowed; the message names it.

    Examples:
        >>> check_command("display ike offline-info peer 10.0.0.1")
        >>> check_command("save")
        Traceback (most recent call last):
        ...
        collector.commands.CommandNotAllowed: refusing to send 'save' to a device: not on \
the read-only allowed list
        >>> check_command("Y")
        Traceback (most recent call last):
        ...
        collector.commands.CommandNotAllowed: refusing to send 'Y' to a device: not on the \
read-only allowed list
    """
    if command == "" or command in _FIXED:
        return
    match = _PEER_FORM.fullmatch(command)
    if match is not None:
        try:
            validate_peer(match.group(1))
        except InvalidPeer:
            pass
        else:
            return
    raise CommandNotAllowed(
        f"refusing to send {command!r} to a device: not on the read-only allowed list"
    )


def check_keystrokes(data: str, line_end: str = "\n") -> None:
    """Check raw channel data: whole allowed lines, or the single pager key.

    Args:
        data: What is about to be written to the channel.
        line_end: The line end the writer uses (netmiko's ``RETURN``).

    Raises:
        CommandNotAllowed: some part of ``data`` is not allowed.

    Examples:
        >>> check_keystrokes("display clock\\n")
        >>> check_keystrokes(" ")
        >>> check_keystrokes("\\n")
        >>> check_keystrokes("y")
        Traceback (most recent call last):
        ...
        collector.commands.CommandNotAllowed: refusing to send 'y' to a device: not on the \
read-only allowed list
    """
    if data == PAGER_KEY:
        return
    normalized = data.replace("\r\n", "\n").replace("\r", "\n")
    if line_end not in ("\n", "\r\n", "\r"):
        raise CommandNotAllowed(f"unexpected line end {line_end!r}")
    lines = normalized.split("\n")
    # A write is whole lines: the text after the last line end must be empty.
    if lines[-1] != "":
        check_command(lines[-1])
        raise CommandNotAllowed(f"refusing to send {lines[-1]!r} without a line end")
    for line in lines[:-1]:
        check_command(line)
