"""Jump hosts end to end: the real CLI, a real OpenSSH ``sshd`` bastion, mock devices behind it.

One test per row of issue 17's table, on netmiko and napalm. Every ssh_config here is
one that plain ``ssh -F`` accepts; each test asserts the records in the JSON report and,
from the bastion's log, that every connection went through it (and where to). The
bastion listens on 127.0.0.2 and 127.0.0.3, the mock devices on 127.0.0.1, so an
``Host 127.0.0.1`` block applies to the devices and never to the hops.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import helpers
import pytest
import yaml
from helpers import Run, assert_matches_mock
from sshd_server import Bastion

from collector.ssh.factory import TRANSPORTS
from mock_devices.fleet import FleetThread, start_fleet
from mock_devices.pytest_plugin import FleetFactory

PASSWORD = "canary-Jump-pw-5177"
TIMEOUT = 20

SCENARIO: dict[str, Any] = {
    "defaults": {"username": "admin", "layout": "router", "timezone": "UTC"},
    "devices": [
        {"name": "dev1", "records": {"generate": {"count": 7, "seed": 11}}},
        {"name": "dev2", "layout": "firewall", "records": {"generate": {"count": 30, "seed": 12}}},
        {"name": "dev3", "records": {"generate": {"count": 0}}},
    ],
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    running = start_fleet(SCENARIO, password=PASSWORD)
    yield running
    running.stop()


def write_inventory(directory: Path, fleet: FleetThread, *, username: bool = True) -> Path:
    hosts: dict[str, Any] = {}
    for device in fleet.devices:
        entry: dict[str, Any] = {
            "hostname": device.host,
            "port": device.port,
            "platform": device.spec.platform,
        }
        if username:
            entry["username"] = device.username
        hosts[device.name] = entry
    path = directory / "hosts.yaml"
    path.write_text(yaml.safe_dump(hosts), encoding="utf-8")
    return path


def hop_block(
    bastion: Bastion, *names: str, key: Path | None = None, known: Path | None = None
) -> str:
    """Settings for the bastion's own ``ssh`` (the jump): its key and its host key."""
    return (
        f"Host {' '.join(names)}\n"
        f"    IdentityFile {key or bastion.key}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {known or bastion.known_hosts}\n"
        "    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n"
    )


def alias(name: str, host: str, bastion: Bastion) -> str:
    """A ``Host`` block naming one of the bastion's addresses."""
    return f"Host {name}\n    HostName {host}\n    Port {bastion.port}\n    User {bastion.user}\n\n"


def usual_jump(bastion: Bastion) -> str:
    """``ProxyJump user@host:port`` for the devices (the form netmiko broke)."""
    return f"Host 127.0.0.1\n    ProxyJump {bastion.user}@{bastion.host}:{bastion.port}\n\n"


def collect(
    tmp_path: Path,
    inventory: Path,
    config: str,
    transport: str,
    *args: str,
    password: str | None = PASSWORD,
) -> Run:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(config, encoding="utf-8")
    output = tmp_path / "report.json"
    run = helpers.collect(
        inventory,
        tmp_path,
        *("--ssh-config", str(ssh_config), "--transport", transport, "--no-store"),
        *("--retries", "0", "--format", "json", "--output", str(output), *args),
        password=password,
        timeout=TIMEOUT,
    )
    assert output.is_file(), run.stderr
    # The report is the file --output wrote: read it as the run's document.
    return replace(run, stdout=output.read_text(encoding="utf-8"))


def assert_all_read_through(run: Run, fleet: FleetThread, bastion: Bastion, since: int) -> None:
    assert run.code == 0, run.stderr
    devices = run.devices()
    for state in fleet.devices:
        assert_matches_mock(devices[state.name], state)
    targets = sorted(bastion.forwards(since))
    assert [t for t in targets if t[0] == "127.0.0.1"] == sorted(
        (state.host, state.port) for state in fleet.devices
    ), bastion.log_text()[since:]


def read_through(
    tmp_path: Path,
    fleet: FleetThread,
    bastion: Bastion,
    config: str,
    transport: str,
    *,
    username: bool = True,
    password: str | None = PASSWORD,
) -> None:
    """Collect with ``config``: every device read, each through the bastion."""
    since = bastion.mark()
    inventory = write_inventory(tmp_path, fleet, username=username)
    run = collect(tmp_path, inventory, config, transport, password=password)
    assert_all_read_through(run, fleet, bastion, since)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_command_with_tokens(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str
) -> None:
    config = (
        "Host 127.0.0.1\n"
        f"    ProxyCommand ssh -F /dev/null -i {bastion.key}"
        f" -o UserKnownHostsFile={bastion.known_hosts} -o BatchMode=yes"
        f" -p {bastion.port} -W %h:%p {bastion.user}@{bastion.host}\n"
    )
    read_through(tmp_path, fleet, bastion, config, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("form", ["{user}@{host}:{port}", "ssh://{user}@{host}:{port}"])
def test_proxy_jump_user_host_port(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str, form: str
) -> None:
    """The usual form: netmiko handed ``user@host:port`` to ssh as a host name."""
    jump = form.format(user=bastion.user, host=bastion.host, port=bastion.port)
    config = f"Host 127.0.0.1\n    ProxyJump {jump}\n\n" + hop_block(bastion, bastion.host)
    read_through(tmp_path, fleet, bastion, config, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_jump_alias_with_its_own_host_block(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str
) -> None:
    config = (
        "Host 127.0.0.1\n    ProxyJump bastion\n\n"
        + alias("bastion", bastion.host, bastion)
        + hop_block(bastion, "bastion")
    )
    read_through(tmp_path, fleet, bastion, config, transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proxy_jump_two_hops(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str
) -> None:
    """``ProxyJump j1,j2``: collector -> j1 -> j2 -> device, as OpenSSH chains them."""
    since = bastion.mark()
    config = (
        "Host 127.0.0.1\n    ProxyJump j1,j2\n\n"
        + alias("j1", bastion.host, bastion)
        + alias("j2", bastion.second_host, bastion)
        + hop_block(bastion, "j1", "j2")
    )
    read_through(tmp_path, fleet, bastion, config, transport)
    # j1 forwarded to j2 once per device, and j2 forwarded to each device.
    to_second_hop = [t for t in bastion.forwards(since) if t[0] == bastion.second_host]
    assert to_second_hop == [(bastion.second_host, bastion.port)] * len(fleet.devices)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_user_only_in_ssh_config(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str
) -> None:
    """No username in the inventory, no --username: ``User`` of the ssh_config is used."""
    user = fleet.devices[0].username
    config = (
        f"Host 127.0.0.1\n    User {user}\n\n"
        + usual_jump(bastion)
        + hop_block(bastion, bastion.host)
    )
    read_through(tmp_path, fleet, bastion, config, transport, username=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_identity_file_from_ssh_config(
    tmp_path: Path, mock_fleet: FleetFactory, bastion: Bastion, transport: str
) -> None:
    """No password at all: the devices' key comes from ``IdentityFile`` of the ssh_config
    (a missing IdentityFile listed first is skipped, as OpenSSH does)."""
    public = bastion.key.with_suffix(".pub").read_text(encoding="utf-8").strip()
    keyed = mock_fleet(
        {
            "defaults": {"username": "admin", "authorized_keys": [public]},
            "devices": [{"name": "k1", "records": {"generate": {"count": 3, "seed": 5}}}],
        }
    )
    config = (
        f"Host 127.0.0.1\n    IdentityFile {tmp_path / 'missing_key'}\n"
        f"    IdentityFile {bastion.key}\n\n"
        + usual_jump(bastion)
        + hop_block(bastion, bastion.host)
    )
    read_through(tmp_path, keyed, bastion, config, transport, password=None)


def assert_jump_host_failures(run: Run, fleet: FleetThread, said: str) -> None:
    assert run.code == 3, run.stderr
    devices = run.devices()
    for state in fleet.devices:
        device = devices[state.name]
        error = device["error"]
        assert device["status"] == "failed"
        assert error["kind"] == "jump-host", error
        assert said in error["message"], error
        assert "exit status 255" in error["message"], error
        assert f"127.0.0.1:{state.port}" in error["message"], error  # the real target
        assert device["records"] == []
    # It came from the bastion's answer, not from the deadline.
    assert run.json()["summary"]["run"]["duration_seconds"] < TIMEOUT / 2, run.json()["summary"]
    assert "jump-host" in run.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure", ["refused key", "unknown host key"])
def test_bastion_failure_is_jump_host_with_its_message(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion, transport: str, failure: str
) -> None:
    """The bastion refuses the key, or its host key is unknown: what plain ssh says."""
    since = bastion.mark()
    if failure == "refused key":
        hop = hop_block(bastion, bastion.host, key=bastion.wrong_key)
        said, logged = "Permission denied (publickey)", f"Failed publickey for {bastion.user} "
    else:
        hop = hop_block(bastion, bastion.host, known=bastion.empty_known_hosts)
        said, logged = (
            "Host key verification failed.",
            r"Connection closed by [\d.]+ port \d+ \[preauth\]",
        )
    run = collect(tmp_path, write_inventory(tmp_path, fleet), usual_jump(bastion) + hop, transport)
    assert_jump_host_failures(run, fleet, said)
    log = bastion.log_text()[since:]
    assert len(re.findall(logged, log)) == len(fleet.devices), log  # each one reached it
    assert "Accepted publickey" not in log
    assert bastion.forwards(since) == []


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_device_unreachable_from_the_bastion(
    tmp_path: Path, bastion: Bastion, transport: str
) -> None:
    """The bastion cannot connect to the device: its words, and the device's address."""
    port = _free_loopback_port()
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        yaml.safe_dump({"gone": {"hostname": "127.0.0.1", "port": port, "username": "admin"}}),
        encoding="utf-8",
    )
    since = bastion.mark()
    config = usual_jump(bastion) + hop_block(bastion, bastion.host)
    run = collect(tmp_path, inventory, config, transport)
    error = run.devices()["gone"]["error"]
    assert error["kind"] == "jump-host", error
    assert "connect failed: Connection refused" in error["message"], error
    assert f"to 127.0.0.1:{port}" in error["message"], error
    assert bastion.forwards(since) == [("127.0.0.1", port)]


def _processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hung_proxy_ends_at_the_deadline_and_is_ended(
    tmp_path: Path, fleet: FleetThread, transport: str
) -> None:
    """A proxy that never answers: ``timeout`` at the deadline (the watchdog ends it)."""
    marker = "59.1731"
    config = f"Host 127.0.0.1\n    ProxyCommand sleep {marker}\n"
    run = collect(tmp_path, write_inventory(tmp_path, fleet), config, transport, "--timeout", "2")
    for device in run.devices().values():
        assert device["error"]["kind"] == "timeout", device["error"]
        assert "via ProxyCommand 'sleep 59.1731'" in device["error"]["message"]
    assert _processes_with(f"sleep {marker}") == []


def test_proxy_command_gets_no_password(
    tmp_path: Path, fleet: FleetThread, bastion: Bastion
) -> None:
    """The proxy's environment: the collector's, minus the password variable."""
    seen = tmp_path / "proxy-env.txt"
    config = (
        "Host 127.0.0.1\n"
        f"    ProxyCommand sh -c 'env >>{seen}; exec ssh -F /dev/null -i {bastion.key}"
        f" -o UserKnownHostsFile={bastion.known_hosts} -o BatchMode=yes"
        f" -p {bastion.port} -W %h:%p {bastion.user}@{bastion.host}'\n"
    )
    read_through(tmp_path, fleet, bastion, config, "netmiko")
    text = seen.read_text(encoding="utf-8")
    assert text.count("\nPATH=") + text.startswith("PATH=") == len(fleet.devices)
    assert PASSWORD not in text
    assert "IKE_COLLECTOR_PASSWORD" not in text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connect_timeout_bounds_the_wait_for_the_banner(
    tmp_path: Path, mock_fleet: FleetFactory, transport: str
) -> None:
    """``ConnectTimeout 1``: a device that accepts but never sends its banner fails after
    about a second, not at the 20 s deadline."""
    mute = mock_fleet(
        {
            "defaults": {"username": "admin"},
            "devices": [{"name": "mute", "faults": ["hang_no_banner"]}],
        },
        password=PASSWORD,
    )
    config = "Host 127.0.0.1\n    ConnectTimeout 1\n"
    run = collect(tmp_path, write_inventory(tmp_path, mute), config, transport)
    error = run.devices()["mute"]["error"]
    assert error["kind"] == "timeout", error
    assert error["message"] == (
        f"no SSH banner from 127.0.0.1:{mute.devices[0].port} within ConnectTimeout 1 s"
        " (ssh_config)"
    )
    assert run.json()["summary"]["run"]["duration_seconds"] < TIMEOUT / 2
