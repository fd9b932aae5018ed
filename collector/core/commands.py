"""The closed list of what the collector may ever type on a device.

The collector is read-only: every line the transport writes to a device channel goes
through :func:`check_command` (or :func:`check_keystrokes` for raw channel writes), and
anything not listed here is refused before it reaches the socket. The list:

* ``screen-length 0 temporary`` - turn paging off for this session only (not saved);
* ``display ike offline-info [ peer <IPv4> ] [ slot <n> cpu <n> ]`` (AR, USG, multi-SPU
  USG9500: one buffer per SPU);
* ``display ike offline history [ peer-ip <IPv4> ]`` (NE40E / NetEngine 8000, all slots);
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
from typing import TYPE_CHECKING, NamedTuple

from collector.core.errors import CollectorError

if TYPE_CHECKING:
    from collector.core.records import Device

__all__ = [
    "ALLOWED_COMMANDS",
    "ANSWER_NO",
    "CLOCK",
    "DISABLE_PAGING",
    "IKE_COMMANDS",
    "OFFLINE_HISTORY",
    "OFFLINE_INFO",
    "PAGER_KEY",
    "QUIT",
    "CommandNotAllowed",
    "InvalidDeviceSetting",
    "InvalidPeer",
    "Spu",
    "check_command",
    "check_device_settings",
    "check_keystrokes",
    "ike_command_setting",
    "offline_history_command",
    "offline_info_command",
    "parse_spus",
    "validate_peer",
]

DISABLE_PAGING = "screen-length 0 temporary"
OFFLINE_INFO = "display ike offline-info"
OFFLINE_HISTORY = "display ike offline history"
"""NE40E / NetEngine 8000 (VRP8 carrier routers): no ``offline-info``, one section per slot."""
IKE_COMMANDS = (OFFLINE_INFO, OFFLINE_HISTORY)
"""The two commands that list deleted tunnels, in the order tried on an unknown device."""
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
    OFFLINE_INFO_SPU = OFFLINE_INFO + " [peer <IPv4>] slot <n> cpu <n>"
    OFFLINE_HISTORY = OFFLINE_HISTORY
    OFFLINE_HISTORY_PEER = OFFLINE_HISTORY + " peer-ip <IPv4>"
    CLOCK = CLOCK
    ANSWER_NO = ANSWER_NO
    QUIT = QUIT


ALLOWED_COMMANDS: frozenset[str] = frozenset(kind.value for kind in Allowed)
"""Every allowed line, the peer form with its ``<IPv4>`` placeholder."""

_FIXED: frozenset[str] = frozenset(
    {DISABLE_PAGING, OFFLINE_INFO, OFFLINE_HISTORY, CLOCK, ANSWER_NO, QUIT}
)
_PEER_FORM = re.compile(
    re.escape(OFFLINE_INFO) + r"(?: peer ([0-9.]{7,15}))?(?: slot [0-9]{1,3} cpu [0-9]{1,3})?"
    r"|" + re.escape(OFFLINE_HISTORY) + r" peer-ip ([0-9.]{7,15})",
    re.ASCII,
)


class CommandNotAllowed(CollectorError, ValueError):
    """A line that is not on the allowed list (the collector never sends it)."""


class InvalidPeer(CollectorError, ValueError):
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
        collector.core.commands.InvalidPeer: peer '10.1.1.2\\nsave' is not a dotted-decimal IPv4 \
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


class InvalidDeviceSetting(CollectorError, ValueError):
    """An inventory ``data.ike_command`` or ``data.ike_spus`` the collector cannot use."""


class Spu(NamedTuple):
    """One service processing unit of a multi-SPU firewall: its own 200-entry buffer."""

    slot: str
    cpu: str

    def __str__(self) -> str:
        return f"{self.slot}/{self.cpu}"


_SPU = re.compile(r"([0-9]{1,3})/([0-9]{1,3})", re.ASCII)


def parse_spus(value: object) -> tuple[Spu, ...]:
    """Read an inventory ``data.ike_spus``: ``["1/0", "1/1"]`` (YAML) or ``1/0;1/1`` (CSV).

    Raises:
        InvalidDeviceSetting: not ``slot/cpu`` pairs; the message says the form.

    Examples:
        >>> parse_spus(["1/0", "3/1"])
        (Spu(slot='1', cpu='0'), Spu(slot='3', cpu='1'))
        >>> parse_spus("1/0;1/1")
        (Spu(slot='1', cpu='0'), Spu(slot='1', cpu='1'))
        >>> parse_spus("1-0")
        Traceback (most recent call last):
        ...
        collector.core.commands.InvalidDeviceSetting: ike_spus must list 'slot/cpu' pairs \
such as ["1/0", "1/1"] (CSV: 1/0;1/1), not '1-0'
    """
    problem = (
        f'ike_spus must list \'slot/cpu\' pairs such as ["1/0", "1/1"] (CSV: 1/0;1/1),'
        f" not {value!r}"
    )
    if isinstance(value, str):
        value = [item for item in re.split(r"[;|,\s]+", value) if item]
    if not isinstance(value, list | tuple) or not value:
        raise InvalidDeviceSetting(problem)
    spus: list[Spu] = []
    for item in value:
        match = _SPU.fullmatch(str(item).strip()) if isinstance(item, str | int) else None
        if match is None:
            raise InvalidDeviceSetting(problem)
        spu = Spu(str(int(match.group(1))), str(int(match.group(2))))
        if spu in spus:
            raise InvalidDeviceSetting(f"ike_spus lists {spu} twice")
        spus.append(spu)
    return tuple(spus)


_COMMAND_SETTINGS = {
    "auto": None,
    "offline-info": OFFLINE_INFO,
    OFFLINE_INFO: OFFLINE_INFO,
    "offline-history": OFFLINE_HISTORY,
    "offline history": OFFLINE_HISTORY,
    OFFLINE_HISTORY: OFFLINE_HISTORY,
}


def ike_command_setting(value: object) -> str | None:
    """Read an inventory ``data.ike_command``: the command to use, or None for auto.

    Raises:
        InvalidDeviceSetting: anything else; the message lists what is accepted.

    Examples:
        >>> ike_command_setting("offline-history")
        'display ike offline history'
        >>> ike_command_setting("auto") is None
        True
    """
    if isinstance(value, str):
        key = " ".join(value.split()).lower()
        if key in _COMMAND_SETTINGS:
            return _COMMAND_SETTINGS[key]
    raise InvalidDeviceSetting(
        f"ike_command {value!r} is not one of: auto, offline-info, offline-history"
        f" ({OFFLINE_INFO!r}, {OFFLINE_HISTORY!r})"
    )


def check_device_settings(device: Device) -> None:
    """Check a device's ``data.ike_command`` and ``data.ike_spus`` before connecting.

    Raises:
        InvalidDeviceSetting: one of them cannot be used (also: SPUs on offline history,
            which has no per-SPU form).
    """
    command = ike_command_setting(device.data.get("ike_command", "auto"))
    spus = device.data.get("ike_spus")
    if spus is not None:
        parse_spus(spus)
        if command == OFFLINE_HISTORY:
            raise InvalidDeviceSetting(
                "ike_spus applies to 'display ike offline-info' (multi-SPU firewalls);"
                " 'display ike offline history' already lists every slot"
            )


def offline_info_command(peer: str | None = None, spu: Spu | None = None) -> str:
    """The ``display ike offline-info`` command line, optionally for one peer or SPU.

    Examples:
        >>> offline_info_command()
        'display ike offline-info'
        >>> offline_info_command("192.0.2.7")
        'display ike offline-info peer 192.0.2.7'
        >>> offline_info_command("192.0.2.7", Spu("1", "0"))
        'display ike offline-info peer 192.0.2.7 slot 1 cpu 0'
    """
    command = OFFLINE_INFO if peer is None else f"{OFFLINE_INFO} peer {validate_peer(peer)}"
    if spu is not None:
        command += f" slot {spu.slot} cpu {spu.cpu}"
    return command


def offline_history_command(peer: str | None = None) -> str:
    """The NE40E / NetEngine 8000 ``display ike offline history`` line (every slot).

    Examples:
        >>> offline_history_command("192.0.2.7")
        'display ike offline history peer-ip 192.0.2.7'
    """
    if peer is None:
        return OFFLINE_HISTORY
    return f"{OFFLINE_HISTORY} peer-ip {validate_peer(peer)}"


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
        collector.core.commands.CommandNotAllowed: refusing to send 'save' to a device: not on \
the read-only allowed list
        >>> check_command("Y")
        Traceback (most recent call last):
        ...
        collector.core.commands.CommandNotAllowed: refusing to send 'Y' to a device: not on the \
read-only allowed list
    """
    if command == "" or command in _FIXED:
        return
    match = _PEER_FORM.fullmatch(command)
    if match is not None:
        peer = match.group(1) or match.group(2)
        try:
            if peer is not None:
                validate_peer(peer)
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
        collector.core.commands.CommandNotAllowed: refusing to send 'y' to a device: not on the \
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
