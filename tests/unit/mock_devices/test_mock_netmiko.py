"""Real netmiko sessions against mock devices: login, prompt, paging off, the table."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import netmiko_session

from mock_devices.device import DeviceState
from mock_devices.tables import render_table


def expected_table(device: DeviceState) -> str:
    return "\n".join(render_table(device.records(), device.spec.layout))


@pytest.mark.parametrize(
    ("name", "device_type"),
    [("ar-bj-02", "huawei"), ("fw-bj-02", "huawei_vrpv8"), ("fw-bj-01", "huawei")],
)
def test_netmiko_reads_the_whole_table(mock_fleet: Any, name: str, device_type: str) -> None:
    fleet = mock_fleet("demo")
    device = fleet.device(name)
    connection = netmiko_session(device, device_type)
    try:
        assert connection.base_prompt == name
        output = connection.send_command("display ike offline-info", read_timeout=20)
    finally:
        connection.disconnect()
    assert output.strip("\n") == expected_table(device).strip("\n")
    commands = [e.text for e in device.journal() if e.kind == "command" and e.text]
    assert commands[:2] == ["screen-length 0 temporary", "display ike offline-info"]
