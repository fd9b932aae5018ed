"""What a client sees on a mock VRP session, byte for byte (raw paramiko shell)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from mock_devices.client import ShellClient
from mock_devices.device import DeviceState
from mock_devices.session import MORE, MORE_ERASE, VTY_BANNER
from mock_devices.tables import render_table

PROMPT = r"[>\]]$"


def shell(device: DeviceState, **kwargs: Any) -> ShellClient:
    return ShellClient(device.host, device.port, device.username, device.password, **kwargs)


def table_bytes(device: DeviceState, rows: Any = None) -> str:
    lines = render_table(device.records() if rows is None else rows, device.spec.layout)
    return "".join(line + "\r\n" for line in lines)


@pytest.fixture
def demo(mock_fleet: Any) -> Any:
    return mock_fleet("demo")


def test_banner_prompt_echo_and_crlf(demo: Any) -> None:
    device = demo.device("ar-bj-02")
    with shell(device) as client:
        banner = client.read_until(PROMPT)
        assert VTY_BANNER + "\r\n" in banner
        assert banner.endswith("\r\n<ar-bj-02>")
        answer = client.command("screen-length 0 temporary")
        assert answer == (
            "screen-length 0 temporary\r\n"
            "Info: The configuration takes effect on the current user terminal interface only."
            "\r\n<ar-bj-02>"
        )
        output = client.command("display ike offline-info")
        # Byte-compatible with the shared layouts the parser's fixtures are rendered with.
        assert output == "display ike offline-info\r\n" + table_bytes(device) + "<ar-bj-02>"


def test_login_delay_holds_the_banner_and_prompt_back(mock_fleet: Any) -> None:
    # A lower bound only (the mock sleeps at least this long), never a speed assertion.
    fleet = mock_fleet({"devices": [{"name": "wan-ar", "login_delay_ms": 1200}]})
    device = fleet.device("wan-ar")
    began = time.monotonic()
    with shell(device) as client:
        banner = client.read_until(PROMPT)
        waited = time.monotonic() - began
        assert VTY_BANNER + "\r\n" in banner and banner.endswith("\r\n<wan-ar>")
        client.command("screen-length 0 temporary")
        assert "Current info Num" in client.command("display ike offline-info")
    assert waited >= 1.2
    assert [e.kind for e in device.journal()][:2] == ["login", "command"]


def test_ha_master_firewall_prompt_and_peer_filter(demo: Any) -> None:
    device = demo.device("fw-bj-01")
    peer = device.records()[0].peer
    with shell(device) as client:
        assert client.read_until(PROMPT).endswith("HRP_M<fw-bj-01>")
        client.command("screen-l 0 temp")
        output = client.command(f"dis ike off peer {peer}")
        rows = [row for row in device.records() if row.peer == peer]
        assert f"Current info Num :{len(rows)}\r\n" in output
        assert output.endswith(table_bytes(device, rows) + "HRP_M<fw-bj-01>")


def test_clock_and_version(demo: Any) -> None:
    device = demo.device("fw-bj-02")
    with shell(device) as client:
        client.read_until(PROMPT)
        clock = client.command("display clock")
        assert re.search(r"\r\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00\r\n\w+day\r\n", clock)
        assert "Time Zone(CST) : UTC+08:00\r\n" in clock
        assert "USG6555E" in client.command("display version")
    router = demo.device("ar-gz-01")
    with shell(router) as client:
        client.read_until(PROMPT)
        assert "Huawei AR6120 Router uptime is" in client.command("dis version")


def test_unknown_commands_get_a_caret_and_error(demo: Any) -> None:
    device = demo.device("ar-bj-01")
    with shell(device) as client:
        client.read_until(PROMPT)
        output = client.command("dis ike offlin-info")
        assert output == (
            "dis ike offlin-info\r\n"
            + " " * (len("<ar-bj-01>") + 8)
            + "^\r\nError: Unrecognized command found at '^' position.\r\n<ar-bj-01>"
        )
        assert "Error: Ambiguous command found at '^' position." in client.command("d")
        assert "Error: Incomplete command found" in client.command("display ike")
    commands = [e.text for e in device.journal() if e.kind == "command"]
    assert commands == ["dis ike offlin-info", "d", "display ike"]


def test_paging_space_enter_and_q(demo: Any) -> None:
    device = demo.device("ar-bj-01")  # 200 records: paged at 24 lines while paging is on
    expected = render_table(device.records(), "router")
    with shell(device) as client:
        client.read_until(PROMPT)
        client.send("display ike offline-info\r")
        first = client.read_until(re.escape(MORE) + "$")
        assert (
            first
            == "display ike offline-info\r\n"
            + "".join(line + "\r\n" for line in expected[:24])
            + MORE
        )
        client.send(" ")
        second = client.read_until(re.escape(MORE) + "$")
        assert second.startswith(MORE_ERASE + expected[24] + "\r\n")
        assert second.count("\r\n") == 24
        client.send("\r")  # Enter: one more line
        third = client.read_until(re.escape(MORE) + "$")
        assert third == MORE_ERASE + expected[48] + "\r\n" + MORE
        client.send("q")
        assert client.read_until(PROMPT) == MORE_ERASE + "<ar-bj-01>"
    keys = [e.text for e in device.journal() if e.kind == "key"]
    assert keys == ["space", "enter", "q"]


def test_paging_all_the_way_reassembles_the_table(demo: Any) -> None:
    device = demo.device("fw-sh-01")  # rejects screen-length: stays paged
    with shell(device) as client:
        client.read_until(PROMPT)
        assert "Error: Unrecognized command" in client.command("screen-length 0 temporary")
        client.send("display ike offline-info\r")
        text = client.read_until(re.escape(MORE) + "$")
        while not text.endswith("<fw-sh-01>"):
            client.send(" ")
            text += client.read_until(f"(?:{re.escape(MORE)}|<fw-sh-01>)$")
    cleaned = text.replace(MORE + MORE_ERASE, "")
    assert cleaned == "display ike offline-info\r\n" + table_bytes(device) + "<fw-sh-01>"


def test_backspace_and_ctrl_c_are_line_editing(demo: Any) -> None:
    device = demo.device("ar-bj-02")
    with shell(device) as client:
        client.read_until(PROMPT)
        client.send("dis clokk\x7f\x7fck\r")
        output = client.read_until(PROMPT)
        assert output.startswith("dis clokk\b \b\b \bck\r\n")
        assert "Time Zone(" in output
        client.send("display vers\x03")
        assert client.read_until(PROMPT) == "display vers^C\r\n<ar-bj-02>"
    commands = [e.text for e in device.journal() if e.kind == "command"]
    assert commands == ["dis clock", ""]


def test_quit_closes_the_session(demo: Any) -> None:
    device = demo.device("ar-bj-02")
    with shell(device) as client:
        client.read_until(PROMPT)
        client.send("quit\r")
        assert client.read_all() == "quit\r\n"
    kinds = [e.kind for e in device.journal()]
    assert kinds[-2:] == ["command", "disconnect"]


def test_new_deletions_show_up_in_the_next_session(demo: Any) -> None:
    device = demo.device("ar-sh-02")  # starts with no records
    with shell(device) as client:
        client.read_until(PROMPT)
        client.command("screen-length 0 temporary")
        assert "Current info Num :0 " in client.command("display ike offline-info")
        added = device.add_deletions(3)
        output = client.command("display ike offline-info")
        assert "Current info Num :3 " in output
        assert all(row.peer in output for row in added)
