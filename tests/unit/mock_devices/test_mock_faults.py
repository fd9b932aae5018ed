"""Each fault of the mock, as a client sees it (netmiko, and a raw shell where netmiko hides it)."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
from helpers import netmiko_session
from netmiko import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from mock_devices.client import ShellClient
from mock_devices.device import DeviceState
from mock_devices.session import PASSWORD_CHANGE_PROMPT, SAVE_PROMPT

PROMPT = r"[>\]]$"


@pytest.fixture
def faults(mock_fleet: Any) -> Any:
    return mock_fleet("faults")


def display_offline_info(device: DeviceState) -> str:
    """The table as stock netmiko reads it from the device."""
    connection = netmiko_session(device)
    try:
        return str(connection.send_command("display ike offline-info"))
    finally:
        connection.disconnect()


def commands_sent(device: DeviceState) -> list[str]:
    return [e.text for e in device.journal() if e.kind == "command" and e.text]


def test_wrong_credentials(faults: Any) -> None:
    device = faults.device("f-wrong-credentials")
    with pytest.raises(NetmikoAuthenticationException):
        netmiko_session(device)
    assert [e.kind for e in device.journal()] == ["auth-failed"]


def test_port_closed(faults: Any) -> None:
    device = faults.device("f-port-closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((device.host, device.port), timeout=5)
    with pytest.raises(NetmikoTimeoutException, match="TCP connection to device failed"):
        netmiko_session(device)


def test_hang_no_banner(faults: Any) -> None:
    device = faults.device("f-hang-no-banner")
    with socket.create_connection((device.host, device.port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # TCP is accepted, but no "SSH-2.0-..." ever comes
    with pytest.raises(NetmikoTimeoutException, match="Error reading SSH protocol banner"):
        netmiko_session(device, banner_timeout=1)


def test_slow_device_answers_late(faults: Any) -> None:
    device = faults.device("f-slow")  # 1.5 s per command
    connection = netmiko_session(device)
    try:
        with pytest.raises(ReadTimeout):
            connection.send_command("display clock", read_timeout=0.3)
        connection.clear_buffer(backoff=False)
    finally:
        connection.disconnect()
    connection = netmiko_session(device)
    try:
        output = connection.send_command("display ike offline-info", read_timeout=30)
    finally:
        connection.disconnect()
    assert "Current info Num :40" in output


def test_very_slow_device_never_answers_in_time(faults: Any) -> None:
    device = faults.device("f-very-slow")  # 600 s before the table
    connection = netmiko_session(device)
    try:
        with pytest.raises(ReadTimeout):
            connection.send_command("display ike offline-info", read_timeout=1)
    finally:
        connection.disconnect()  # the device's pending reply is abandoned with the session
    assert "display ike offline-info" in commands_sent(device)


def test_drop_mid_output(faults: Any) -> None:
    device = faults.device("f-drop-mid-output")
    with ShellClient(device.host, device.port, device.username, device.password) as client:
        client.read_until(PROMPT)
        client.command("screen-length 0 temporary")
        client.send("display ike offline-info\r")
        partial = client.read_all()
    assert "Current info Num :40" in partial
    assert partial.count("\r\n") < 40  # half the table, then the connection is gone
    assert not re.search(PROMPT, partial.rstrip())
    assert device.journal()[-1].kind == "disconnect"
    connection = netmiko_session(device)
    with pytest.raises((ReadTimeout, OSError, EOFError)):
        connection.send_command("display ike offline-info", read_timeout=3)


def test_reject_screen_length_keeps_output_paged(faults: Any) -> None:
    device = faults.device("f-reject-screen-length")
    connection = netmiko_session(device)
    try:
        # Plain netmiko waits for the prompt while the device waits at "---- More ----".
        with pytest.raises(ReadTimeout) as info:
            connection.send_command("display ike offline-info", read_timeout=2)
        assert "Pattern not detected" in str(info.value)
    finally:
        connection.disconnect()
    assert [e.text for e in device.journal() if e.kind == "command"].count(
        "screen-length 0 temporary"
    ) == 1


def test_reject_screen_length_paged_read_with_netmiko(faults: Any) -> None:
    device = faults.device("f-reject-screen-length")
    connection = netmiko_session(device)
    try:
        output = connection.send_command(
            "display ike offline-info", expect_string=r"---- More ----", read_timeout=10
        )
        while "---- More ----" in output.splitlines()[-1]:
            connection.write_channel(" ")
            output += connection.read_until_pattern(r"---- More ----|<f-reject-screen-length>")
    finally:
        connection.disconnect()
    for row in device.records():
        assert row.peer in output
    assert [e.text for e in device.journal() if e.kind == "key"].count("space") >= 1


def test_command_unsupported(faults: Any) -> None:
    device = faults.device("f-command-unsupported")
    connection = netmiko_session(device)
    try:
        output = connection.send_command("display ike offline-info")
        clock = connection.send_command("display clock")
    finally:
        connection.disconnect()
    assert output.strip().endswith("Error: Unrecognized command found at '^' position.")
    caret = output.strip("\n").splitlines()[0]
    assert caret.index("^") == len("<f-command-unsupported>") + len("display ike ")
    assert "Time Zone(" in clock


def test_truncated_table(faults: Any) -> None:
    device = faults.device("f-truncated-table")
    output = display_offline_info(device)
    rows = [line for line in output.splitlines() if re.match(r"\s+\d+\.\d+\.\d+\.\d+\s", line)]
    assert "Current info Num :40 " in output
    assert 0 < len(rows) < 40


def test_garbage_output(faults: Any) -> None:
    device = faults.device("f-garbage-output")
    output = display_offline_info(device)
    assert len(output.strip()) > 100
    assert "Current info Num" not in output


def test_password_change_prompt_answered_no_by_netmiko(faults: Any) -> None:
    device = faults.device("f-password-change-prompt")
    output = display_offline_info(device)
    assert "Current info Num :40" in output
    answers = [e.text for e in device.journal() if e.kind == "answer"]
    assert answers == ["N"]


def test_password_change_prompt_yes_starts_the_dialogue(faults: Any) -> None:
    device = faults.device("f-password-change-prompt")
    with ShellClient(device.host, device.port, device.username, device.password) as client:
        assert client.read_until(r"\[Y/N\]:$").endswith(PASSWORD_CHANGE_PROMPT)
        assert client.command("Y", prompt=r"old password: $").startswith("Y\r\n")
        client.command("old-secret", prompt=r"new password: $")
        client.command("new-secret", prompt=r"confirm new password: $")
        done = client.command("new-secret")
    assert "old-secret" not in done and "new-secret" not in done  # not echoed
    assert "Info: Your password has been changed." in done
    journal = [(e.kind, e.text) for e in device.journal()]
    assert ("answer", "Y") in journal
    assert ("password-change", "password changed") in journal
    assert not any("secret" in text for _, text in journal)


def test_save_prompt_stock_netmiko_answers_yes(faults: Any) -> None:
    # netmiko's Huawei driver saves the configuration here: the fault makes that visible.
    device = faults.device("f-save-prompt")
    output = display_offline_info(device)
    assert "Current info Num :40" in output
    journal = [(e.kind, e.text) for e in device.journal()]
    assert journal[1:4] == [
        ("answer", "Y"),
        ("answer", "Y"),
        ("config-saved", "configuration saved"),
    ]


def test_save_prompt_answered_no_continues(faults: Any) -> None:
    device = faults.device("f-save-prompt")
    with ShellClient(device.host, device.port, device.username, device.password) as client:
        assert client.read_until(r"\[Y/N\]:$").endswith(SAVE_PROMPT)
        assert client.command("N") == "N\r\n<f-save-prompt>"
    journal = [(e.kind, e.text) for e in device.journal()]
    assert ("answer", "N") in journal
    assert not any(kind == "config-saved" for kind, _ in journal)
