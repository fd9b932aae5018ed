"""Hostile input through the real CLI: refused before anything connects.

``--peer`` values and inventory fields that would reach a device's command line or the SSH
client carry newlines, ``;``, extra commands, ranges, IPv6 or option-looking text; each is a
usage error (exit 2) with one line on stderr, and the mock devices' journals stay empty: not
one device (not even the valid ones) was connected to. Broken inventories (not YAML/CSV,
unknown keys, duplicate names) get one line naming the file and line; a world-readable
inventory holding passwords gets a warning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import helpers
import pytest
from helpers import Run

from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "hostile-input-Pw-7710"
SCENARIO = {
    "defaults": {"username": "admin", "records": {"generate": {"count": 3, "seed": 1}}},
    "devices": [{"name": "target"}],
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    directory = tmp_path_factory.mktemp("hostile")
    running = start_fleet(SCENARIO, password=PASSWORD, inventory=directory / "inventory")
    yield running
    running.stop()


@pytest.fixture
def target(fleet: FleetThread) -> Iterator[FleetThread]:
    """The fleet with an empty journal; after the test, the journal must still be empty."""
    state = fleet.device("target")
    state.clear_journal()
    yield fleet
    assert state.journal() == [], "a device was contacted despite the refused input"


def collect(inventory: Path | str | None, tmp: Path, *args: str) -> Run:
    return helpers.collect(inventory, tmp, *args, password=PASSWORD, env={"NO_COLOR": "1"})


def one_error_line(run: Run) -> str:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1, run.stderr
    return errors[0]


# --- --peer ------------------------------------------------------------------------------

HOSTILE_PEERS = [
    "10.1.1.2 save",
    "10.1.1.2\nsave",
    "10.1.1.2\r\nsystem-view",
    "10.1.1.2;reset saved-configuration",
    "10.1.1.2 | include 10",
    "10.1.1.2\tY",
    "10.1.1.1-10.1.1.9",
    "10.1.1.0/24",
    "10.1.1.*",
    "10.1.1.2 peer 10.1.1.3",
    "$(reboot)",
    "`reboot`",
    "2001:db8::1",
    "fe80::1%eth0",
    "::ffff:10.1.1.2",
    "010.001.001.002",
    "10.1.1.256",
    "10.1.1.2\x00",
    "-v",
    "",
]


@pytest.mark.parametrize("peer", HOSTILE_PEERS)
def test_hostile_peer_is_a_usage_error_before_connecting(
    target: FleetThread, tmp_path: Path, peer: str
) -> None:
    assert target.inventory_path is not None
    run = collect(target.inventory_path, tmp_path, "--peer", peer)
    assert run.code == 2, run.stderr
    assert "--peer" in run.stderr
    assert run.stdout == ""
    assert not (tmp_path / "history.sqlite3").exists()


# --- inventory fields that reach the device or the SSH client ------------------------------


def hosts_yaml(tmp: Path, fleet: FleetThread, bad: str) -> Path:
    """An inventory with the valid mock device first and one hostile host after it."""
    state = fleet.device("target")
    path = tmp / "hosts.yaml"
    path.write_text(
        f"target:\n  hostname: {state.host}\n  port: {state.port}\n  username: admin\nevil:\n{bad}",
        encoding="utf-8",
    )
    return path


HOSTILE_FIELDS = {
    "hostname-newline": '  hostname: "127.0.0.1\\nsave"\n',
    "hostname-extra-command": '  hostname: "127.0.0.1; reboot"\n',
    "hostname-ssh-option": '  hostname: "-oProxyCommand=touch /tmp/pwned"\n',
    "hostname-space": '  hostname: "127.0.0.1 system-view"\n',
    "username-newline": '  hostname: 127.0.0.1\n  username: "admin\\nsystem-view"\n',
    "username-extra-command": '  hostname: 127.0.0.1\n  username: "admin; reset"\n',
    "username-option": '  hostname: 127.0.0.1\n  username: "-oProxyCommand=id"\n',
    "username-shell": '  hostname: 127.0.0.1\n  username: "$(id)"\n',
    "name-control": '  hostname: 127.0.0.1\n  data: {site: x}\n"bad\\x1b[2Jname":\n'
    "  hostname: 127.0.0.1\n",
    "platform-unknown": "  hostname: 127.0.0.1\n  platform: linux\n",
    "port-text": '  hostname: 127.0.0.1\n  port: "22; reboot"\n',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FIELDS))
def test_hostile_inventory_field_is_refused_before_connecting(
    target: FleetThread, tmp_path: Path, case: str
) -> None:
    inventory = hosts_yaml(tmp_path, target, HOSTILE_FIELDS[case])
    run = collect(inventory, tmp_path)
    assert run.code == 2, run.stderr
    line = one_error_line(run)
    assert re.search(re.escape(str(inventory)) + r":\d+: ", line), line
    assert run.stdout == ""


def test_hostile_csv_fields_are_refused_before_connecting(
    target: FleetThread, tmp_path: Path
) -> None:
    state = target.device("target")
    path = tmp_path / "fleet.csv"
    path.write_text(
        "name,hostname,port,username\n"
        f"target,{state.host},{state.port},admin\n"
        f'evil,{state.host},{state.port},"admin\nsystem-view"\n',
        encoding="utf-8",
    )
    run = collect(path, tmp_path)
    assert run.code == 2
    assert re.search(re.escape(str(path)) + r":3: ", one_error_line(run))


def test_netmiko_extras_cannot_turn_off_host_keys_or_log_the_session(
    target: FleetThread, tmp_path: Path
) -> None:
    """Extras that would weaken the collector are ignored (or refused), never applied."""
    state = target.device("target")
    session_log = tmp_path / "session.log"
    path = tmp_path / "hosts.yaml"
    path.write_text(
        f"target:\n  hostname: {state.host}\n  port: {state.port}\n  username: admin\n"
        "  connection_options:\n    netmiko:\n      extras:\n"
        f"        session_log: {session_log}\n        ssh_strict: false\n"
        "        system_host_keys: false\n",
        encoding="utf-8",
    )
    # Strict host keys with an empty known_hosts: had ssh_strict/AutoAddPolicy applied,
    # the device would be logged in to.
    run = collect(path, tmp_path, "--strict-host-keys")
    assert run.code == 3, run.stderr
    assert "host-key" in run.stderr and "strict" in run.stderr
    assert not session_log.exists()


# --- broken inventories: one line naming the file (and line) --------------------------------


@dataclass(frozen=True)
class Broken:
    name: str
    text: str
    line: int | None
    phrase: str


BROKEN = [
    Broken("hosts.json", '{"r1": {"hostname": "127.0.0.1"}}', None, "not a YAML"),
    Broken("hosts.txt", "r1 127.0.0.1\n", None, "not a YAML"),
    Broken("hosts.yaml", "r1: [unclosed\n", 2, "not valid YAML"),
    Broken("hosts.yaml", "\x00\x01\x02binary", 1, "binary data"),
    Broken("hosts.yaml", "name,hostname\nr1,127.0.0.1\n", 1, "expected a mapping"),
    Broken("hosts.yaml", "r1:\n  hostname: 127.0.0.1\n  hostnme: x\n", 3, "unknown key"),
    Broken(
        "hosts.yaml", "r1:\n  hostname: a\nr2:\n  hostname: b\nr1:\n  hostname: c\n", 5, "duplicate"
    ),
    Broken("fleet.csv", "name,hostname\nr1,127.0.0.1\nr1,127.0.0.2\n", 3, "duplicate"),
    Broken("fleet.csv", "name,hostname\nr1,127.0.0.1,extra\n", 2, "fields"),
]


@pytest.mark.parametrize("broken", BROKEN, ids=lambda broken: f"{broken.name}-{broken.phrase}")
def test_broken_inventory_gets_one_line_naming_file_and_line(
    target: FleetThread, tmp_path: Path, broken: Broken
) -> None:
    path = tmp_path / broken.name
    path.write_bytes(broken.text.encode("utf-8"))
    run = collect(path, tmp_path)
    assert run.code == 2, run.stderr
    line = one_error_line(run)
    assert str(path) in line
    if broken.line is not None:
        assert f"{path}:{broken.line}:" in line, line
    assert broken.phrase in line, line


def test_duplicate_yaml_names_point_at_both_lines(target: FleetThread, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text("r1:\n  hostname: a\nr2:\n  hostname: b\nr1:\n  hostname: c\n")
    line = one_error_line(collect(path, tmp_path))
    assert f"{path}:5:" in line and "duplicate" in line and "line 1" in line


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_world_readable_inventory_with_password_is_warned(
    target: FleetThread, tmp_path: Path, mode: int
) -> None:
    state = target.device("target")
    path = tmp_path / "hosts.yaml"
    path.write_text(
        f"target:\n  hostname: {state.host}\n  port: {state.port}\n  username: admin\n"
        "  password: in-the-inventory\n",
        encoding="utf-8",
    )
    os.chmod(path, mode)
    run = collect(path, tmp_path, "--host", "nothing-matches")
    assert run.code == 2  # no device selected: nothing connects
    assert "a password is set in the inventory" in run.stderr
    readable = "readable by every user" in run.stderr
    assert readable is (mode == 0o644)
    if readable:
        assert f"chmod o-r {path}" in run.stderr
    assert "in-the-inventory" not in run.stderr
