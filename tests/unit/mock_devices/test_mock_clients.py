"""Other clients against the mock: NAPALM's huawei_vrp driver, OpenSSH, public keys, host keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest
from netmiko import ConnectHandler

from mock_devices.client import ShellClient
from mock_devices.tables import render_table


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[Path, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "id_ed25519"
    key.write_private_key(str(path))
    os.chmod(path, 0o600)
    return path, key.export_public_key().decode().strip()


def key_scenario(public_key: str) -> dict[str, Any]:
    return {
        "defaults": {"records": {"generate": {"count": 30, "seed": 5}}},
        "devices": [
            {"name": "ar-key", "authorized_keys": [public_key]},
            {
                "name": "fw-key",
                "layout": "firewall",
                "hrp": "master",
                "authorized_keys": [public_key],
            },
        ],
    }


def test_napalm_cli(mock_fleet: Any) -> None:
    napalm = pytest.importorskip("napalm")
    fleet = mock_fleet("demo")
    device = fleet.device("fw-bj-02")
    driver = napalm.get_network_driver("huawei_vrp")(
        device.host,
        device.username,
        device.password,
        timeout=10,
        optional_args={"port": device.port},
    )
    driver.open()
    try:
        output = driver.cli(["display ike offline-info", "dis clock"])
    finally:
        driver.close()
    expected = "\n".join(render_table(device.records(), "firewall")).strip("\n")
    assert output["display ike offline-info"].strip("\n") == expected
    assert "Time Zone(" in output["dis clock"]
    sent = [e.text for e in device.journal() if e.kind == "command" and e.text]
    assert sent[0] == "screen-length 0 temporary"


def test_netmiko_with_a_public_key(mock_fleet: Any, client_key: tuple[Path, str]) -> None:
    path, public = client_key
    fleet = mock_fleet(key_scenario(public), password="not-this-one")
    device = fleet.device("fw-key")
    connection = ConnectHandler(
        device_type="huawei_vrpv8",
        host=device.host,
        port=device.port,
        username="admin",
        use_keys=True,
        key_file=str(path),
        conn_timeout=10,
    )
    try:
        assert connection.base_prompt == "fw-key"
        output = connection.send_command("dis ike off")
    finally:
        connection.disconnect()
    assert "Current info Num :30" in output


def test_wrong_key_is_refused(mock_fleet: Any, tmp_path: Path) -> None:
    authorized = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    other = asyncssh.generate_private_key("ssh-ed25519")
    other.write_private_key(str(tmp_path / "other"))
    fleet = mock_fleet(key_scenario(authorized))
    device = fleet.device("ar-key")
    with pytest.raises(paramiko.AuthenticationException):
        ShellClient(device.host, device.port, "admin", key_filename=str(tmp_path / "other"))


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
def test_a_person_with_openssh(mock_fleet: Any, client_key: tuple[Path, str]) -> None:
    path, public = client_key
    fleet = mock_fleet(key_scenario(public))
    device = fleet.device("fw-key")
    process = subprocess.Popen(
        [
            "ssh",
            "-tt",
            "-i",
            str(path),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-p",
            str(device.port),
            f"admin@{device.host}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    # A person types one key at a time and ends lines with CR (what a terminal sends).
    for key in "dis clock\r":
        process.stdin.write(key.encode())
        process.stdin.flush()
        time.sleep(0.01)
    process.stdin.write(b"screen-length 0 temporary\rdisplay ike offline-info\rquit\r")
    process.stdin.flush()
    stdout, stderr = process.communicate(timeout=30)
    text = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "HRP_M<fw-key>dis clock\r\n" in text
    assert "Time Zone(" in text
    assert "Current info Num :30\r\n" in text
    assert [e.text for e in device.journal() if e.kind == "command"] == [
        "dis clock",
        "screen-length 0 temporary",
        "display ike offline-info",
        "quit",
    ]


def test_host_key_is_stable_and_can_be_replaced(mock_fleet: Any, tmp_path: Path) -> None:
    scenario = {"devices": [{"name": "ar-hk", "records": {"generate": {"count": 1}}}]}
    first = mock_fleet(scenario, password="pw")
    device = first.device("ar-hk")
    with ShellClient(device.host, device.port, "admin", "pw") as client:
        key_before = client.host_key.get_base64()
    first.stop()
    second = mock_fleet(scenario, password="pw")  # a restart: same seed, same key
    device = second.device("ar-hk")
    with ShellClient(device.host, device.port, "admin", "pw") as client:
        assert client.host_key.get_base64() == key_before
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{device.host}]:{device.port} ssh-ed25519 {key_before}\n")

    second.update_device("ar-hk", host_key_seed="replaced-chassis")
    strict = paramiko.SSHClient()
    strict.load_host_keys(str(known_hosts))
    strict.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.BadHostKeyException):
        strict.connect(
            device.host,
            port=device.port,
            username="admin",
            password="pw",
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    strict.close()
