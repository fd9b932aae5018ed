"""The VRP user-view command tree: keyword abbreviation, parameters and the error replies.

Pure: a typed line goes in, a ``Command`` (what to run) or a ``CommandError`` (what VRP would
complain about, and where the caret goes) comes out. VRP accepts any unambiguous prefix of a
keyword (``dis ike off``) and rejects a prefix that several keywords share (``d``: ``debugging``,
``delete``, ``dir``, ``display`` ...) with ``Error: Ambiguous command``. Keywords the mock does
not implement are in the tree anyway so abbreviations are as ambiguous as on a real device.

The tree depends on the device (:func:`command_tree`): a multi-SPU firewall takes ``display
ike offline-info [ peer remote-address ] [ slot slot-id cpu cpu-id ]`` (USG command
reference); an NE40E has no ``offline-info`` but ``display ike offline history [ peer-ip
peer-ip [ vpn-instance-name name ] [ port port ] ] [ slot slot-id ]`` (NE40E/NE8000 IPsec
configuration guide; ``vpn-instance`` is accepted too) and ``display ike error history``.
Parameters are placeholders: ``<ip>``, ``<0-512>``, or named ``<slot:0-32>``, ``<vpn:name>``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A node maps keywords (or parameter placeholders ``<ip>``, ``<0-512>``) to child nodes; the key
# ``None`` marks where a command may end, holding the action name. Empty nodes are keywords the
# mock knows for abbreviation purposes only.
Node = dict[str | None, Any]

_IKE_OTHERS: Node = {
    "peer": {},
    "proposal": {},
    "sa": {},
    "statistics": {},
    "global-config": {},
    "identity": {},
}
"""``display ike`` keywords every platform has that the mock does not implement."""
_IKE: Node = {
    "offline-info": {None: "ike_offline", "peer": {"<ip>": {None: "ike_offline"}}},
    **_IKE_OTHERS,
}

_SLOT_CPU: Node = {"<slot:0-32>": {"cpu": {"<cpu:0-31>": {None: "ike_offline"}}}}
_IKE_SPU: Node = {
    **_IKE,
    "offline-info": {
        None: "ike_offline",
        "peer": {"<ip>": {None: "ike_offline", "slot": _SLOT_CPU}},
        "slot": _SLOT_CPU,
    },
}


def _history(action: str) -> Node:
    """``[ peer-ip A [ vpn-instance NAME ] [ port N ] ] [ slot N ]`` ending in ``action``."""
    slot: Node = {"<slot:0-32>": {None: action}}
    after_port: Node = {None: action, "slot": slot}
    port: Node = {"<port:0-65535>": after_port}
    after_vpn: Node = {None: action, "port": port, "slot": slot}
    vpn: Node = {"<vpn:name>": after_vpn}
    after_peer: Node = {
        None: action,
        "vpn-instance": vpn,
        "vpn-instance-name": vpn,
        "port": port,
        "slot": slot,
    }
    return {None: action, "peer-ip": {"<ip>": after_peer}, "slot": slot}


_IKE_NE40E: Node = {
    "offline": {"history": _history("ike_offline_history")},
    "error": {"history": _history("ike_error_history")},
    **_IKE_OTHERS,
}

_DISPLAY: Node = {
    "acl": {},
    "alarm": {},
    "arp": {},
    "clock": {None: "clock"},
    "cpu-usage": {},
    "current-configuration": {},
    "device": {},
    "diagnostic-information": {},
    "elabel": {},
    "hrp": {},
    "ike": _IKE,
    "interface": {},
    "ip": {},
    "ipsec": {},
    "license": {},
    "logbuffer": {},
    "memory-usage": {},
    "saved-configuration": {},
    "users": {},
    "version": {None: "version"},
    "vlan": {},
}

USER_VIEW: Node = {
    "cd": {},
    "clear": {},
    "clock": {},
    "cls": {},
    "copy": {},
    "debugging": {},
    "delete": {},
    "dir": {},
    "display": _DISPLAY,
    "format": {},
    "ftp": {},
    "language-mode": {},
    "lock": {},
    "mkdir": {},
    "more": {},
    "move": {},
    "ping": {},
    "pwd": {},
    "quit": {None: "quit"},
    "reboot": {},
    "refresh": {},
    "rename": {},
    "reset": {},
    "return": {},
    "save": {},
    "screen-length": {"<0-512>": {"temporary": {None: "screen_length"}}},
    "screen-width": {},
    "send": {},
    "ssh": {},
    "stelnet": {},
    "super": {},
    "system-view": {},
    "telnet": {},
    "terminal": {},
    "tftp": {},
    "tracert": {},
    "undo": {},
}


def _with_ike(ike: Node) -> Node:
    return {**USER_VIEW, "display": {**_DISPLAY, "ike": ike}}


_TREES: dict[str, Node] = {
    "router": USER_VIEW,
    "firewall": USER_VIEW,
    "firewall-spu": _with_ike(_IKE_SPU),
    "ne40e": _with_ike(_IKE_NE40E),
}


def command_tree(layout: str, spus: bool = False) -> Node:
    """The user view of a device: AR router and USG firewall share one; a multi-SPU firewall
    adds ``slot S cpu C``; an NE40E has ``offline history`` instead of ``offline-info``.

    Examples:
        >>> parse_command("dis ike off his peer-ip 10.1.1.9 vpn-instance vpna slot 3",
        ...               command_tree("ne40e")).params
        {'<ip>': '10.1.1.9', '<vpn:name>': 'vpna', '<slot:0-32>': '3'}
        >>> parse_command("display ike offline-info", command_tree("ne40e")).column
        12
    """
    if layout == "firewall" and spus:
        return _TREES["firewall-spu"]
    return _TREES.get(layout, USER_VIEW)


class ErrorKind(StrEnum):
    """The ``Error: ... found at '^' position.`` variants VRP prints."""

    UNRECOGNIZED = "Unrecognized command"
    AMBIGUOUS = "Ambiguous command"
    INCOMPLETE = "Incomplete command"
    WRONG_PARAMETER = "Wrong parameter"


@dataclass(frozen=True, slots=True)
class CommandError:
    """A line VRP refuses, with the column (in the typed line) the caret points at."""

    kind: ErrorKind
    column: int

    def lines(self, prompt: str) -> list[str]:
        """The caret line and the error line, as the device prints them after the echo."""
        return [
            " " * (len(prompt) + self.column) + "^",
            f"Error: {self.kind} found at '^' position.",
        ]


@dataclass(frozen=True, slots=True)
class Command:
    """A recognised command: the action name, the full keywords and the parameter values."""

    action: str
    keywords: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)
    columns: dict[str, int] = field(default_factory=dict, compare=False)
    """Column (in the typed line) of each parameter, for a caret under a bad value."""


_TOKEN = re.compile(r"\S+")


def _param_ok(placeholder: str, token: str) -> bool:
    if placeholder == "<ip>":
        try:
            ipaddress.IPv4Address(token)
        except ValueError:
            return False
        return True
    if placeholder.endswith(":name>"):
        return re.fullmatch(r"[A-Za-z0-9_.-]{1,31}", token) is not None
    match = re.fullmatch(r"<(?:\w+:)?(\d+)-(\d+)>", placeholder)
    if match and token.isdigit():
        return int(match.group(1)) <= int(token) <= int(match.group(2))
    return False


def parse_command(line: str, tree: Node | None = None) -> Command | CommandError | None:
    """Resolve a typed line against the command tree.

    Returns ``None`` for a blank line.

    Examples:
        >>> parse_command("dis ike off").action
        'ike_offline'
        >>> parse_command("screen-l 0 temp").params
        {'<0-512>': '0'}
        >>> parse_command("d").kind
        <ErrorKind.AMBIGUOUS: 'Ambiguous command'>
        >>> parse_command("dispaly ike").column
        0
    """
    node: Node = USER_VIEW if tree is None else tree
    tokens = list(_TOKEN.finditer(line))
    if not tokens:
        return None
    keywords: list[str] = []
    params: dict[str, str] = {}
    columns: dict[str, int] = {}
    for match in tokens:
        token = match.group().lower()
        words = [key for key in node if isinstance(key, str) and not key.startswith("<")]
        if token in words:
            chosen: str | None = token
        else:
            candidates = [word for word in words if word.startswith(token)]
            if len(candidates) > 1:
                return CommandError(ErrorKind.AMBIGUOUS, match.start())
            chosen = candidates[0] if candidates else None
        if chosen is None:
            placeholders = [key for key in node if isinstance(key, str) and key.startswith("<")]
            if not placeholders:
                return CommandError(ErrorKind.UNRECOGNIZED, match.start())
            if not _param_ok(placeholders[0], match.group()):
                return CommandError(ErrorKind.WRONG_PARAMETER, match.start())
            params[placeholders[0]] = match.group()
            columns[placeholders[0]] = match.start()
            node = node[placeholders[0]]
            continue
        keywords.append(chosen)
        node = node[chosen]
        if not node:
            # A keyword the mock only knows by name: refuse it where it was typed.
            return CommandError(ErrorKind.UNRECOGNIZED, match.start())
    action = node.get(None)
    if action is None:
        return CommandError(ErrorKind.INCOMPLETE, len(line.rstrip()))
    return Command(action=str(action), keywords=tuple(keywords), params=params, columns=columns)
