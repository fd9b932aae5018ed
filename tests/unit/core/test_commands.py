"""collector.core.commands: the closed list of what may be sent to a device, the peer
check and the keystrokes; the one place a command line is built."""

from __future__ import annotations

import pytest

from collector.core import commands
from collector.core.commands import (
    CommandNotAllowed,
    InvalidPeer,
    check_command,
    check_keystrokes,
    offline_info_command,
    validate_peer,
)


@pytest.mark.parametrize(
    "line",
    [
        "screen-length 0 temporary",
        "display ike offline-info",
        "display ike offline-info peer 10.1.2.3",
        "display clock",
        "N",
        "quit",
        "",
    ],
)
def test_allowed_commands(line: str) -> None:
    check_command(line)


@pytest.mark.parametrize(
    "line",
    [
        "Y",
        "y",
        "yes",
        "n",
        "save",
        "system-view",
        "reset ike sa",
        "display current-configuration",
        "display ike offline-info peer 10.1.2.3\nsave",
        "display ike offline-info peer 10.1.2.3 ",
        "display ike offline-info peer 300.1.1.1",
        "display ike offline-info peer 010.1.1.1",
        "display ike offline-info peer ::1",
        "screen-length 0",
        " display clock",
    ],
)
def test_everything_else_is_refused(line: str) -> None:
    with pytest.raises(CommandNotAllowed):
        check_command(line)


def test_allowed_list_is_closed() -> None:
    expected = {
        "screen-length 0 temporary",
        "display ike offline-info",
        "display ike offline-info peer <IPv4>",
        "display ike offline-info [peer <IPv4>] slot <n> cpu <n>",
        "display ike offline history",
        "display ike offline history peer-ip <IPv4>",
        "display clock",
        "N",
        "quit",
    }
    assert expected == commands.ALLOWED_COMMANDS


@pytest.mark.parametrize(
    "peer",
    [
        "10.0.0.1 ",
        " 10.0.0.1",
        "10.0.0.1\n",
        "10.0.0.1;save",
        "10.0.0",
        "1.2.3.4.5",
        "a.b.c.d",
        "2001:db8::1",
        "010.0.0.1",
        "256.0.0.1",
        "",
    ],
)
def test_invalid_peers(peer: str) -> None:
    with pytest.raises(InvalidPeer):
        validate_peer(peer)
    with pytest.raises(InvalidPeer):
        offline_info_command(peer)


def test_offline_info_command() -> None:
    assert offline_info_command(None) == "display ike offline-info"
    assert offline_info_command("192.0.2.1") == "display ike offline-info peer 192.0.2.1"


def test_keystrokes() -> None:
    check_keystrokes("display clock\n")
    check_keystrokes("display clock\r\n")
    check_keystrokes("N\n")
    check_keystrokes(" ")
    check_keystrokes("\n")
    for data in ("Y\n", "display clock", "  ", "N\nY\n", "\x00", "q"):
        with pytest.raises(CommandNotAllowed):
            check_keystrokes(data)
