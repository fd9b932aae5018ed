"""Read-only proof: over a mixed mock fleet, the devices' journals hold only allowed lines.

The fleet mixes routers, firewalls, an HA firewall, a device that refuses
``screen-length 0 temporary`` (so the collector pages with the space key), and devices
that ask ``[Y/N]`` after login (password change, "save the configuration now?"). The real
CLI collects from it with every transport (netmiko, napalm, asyncssh), with ``--clock-from-device``
and with ``--peer``; then every journal entry of every device is checked against the closed
list in :mod:`collector.core.commands`: commands are on the list, answers are ``N``, keys are the
pager's space, and nothing was ever saved or changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest

from collector.core import commands
from collector.ssh.factory import TRANSPORTS
from mock_devices.device import DeviceState, JournalEntry
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "readonly-Pw-5521"
SCENARIO = {
    "defaults": {
        "username": "admin",
        "layout": "router",
        "timezone": "Asia/Shanghai",
        "records": {"generate": {"count": 60, "seed": 9}},
    },
    "devices": [
        {"name": "ar-01"},
        {"name": "ar-02", "site": "paris"},
        {"name": "fw-01", "layout": "firewall"},
        {"name": "fw-ha", "layout": "firewall", "hrp": "master"},
        {"name": "ar-paging", "faults": ["reject_screen_length"], "page_lines": 8},
        {
            "name": "fw-paging",
            "layout": "firewall",
            "faults": ["reject_screen_length"],
            "page_lines": 8,
        },
        {"name": "ar-save", "faults": ["save_prompt"]},
        {"name": "fw-save", "layout": "firewall", "faults": ["save_prompt"]},
        {"name": "ar-pwchange", "faults": ["password_change_prompt"]},
        {
            "name": "fw-both",
            "layout": "firewall",
            "faults": ["password_change_prompt", "save_prompt", "reject_screen_length"],
            "page_lines": 8,
        },
    ],
}
FORBIDDEN_PREFIXES = ("y", "save", "system-view", "reset", "undo", "reboot", "return", "sys")
PAGER_KEYS = {"space"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    directory = tmp_path_factory.mktemp("readonly")
    running = start_fleet(SCENARIO, password=PASSWORD, inventory=directory / "inventory")
    yield running
    running.stop()


def collect(fleet: FleetThread, tmp: Path, *args: str) -> int:
    return helpers.collect(fleet.inventory_path, tmp, *args, password=PASSWORD, timeout=15).code


def assert_allowed(state: DeviceState, entry: JournalEntry) -> None:
    where = (state.name, entry)
    if entry.kind == "command":
        commands.check_command(entry.text)  # raises CommandNotAllowed
        assert entry.text == "" or any(
            entry.text == allowed or entry.text.startswith(commands.OFFLINE_INFO + " peer ")
            for allowed in commands.ALLOWED_COMMANDS
        ), where
    elif entry.kind == "answer":
        assert entry.text == commands.ANSWER_NO, where
    elif entry.kind == "key":
        assert entry.text in PAGER_KEYS, where
    else:
        assert entry.kind in ("login", "disconnect"), where
    lowered = entry.text.strip().lower()
    if entry.kind in ("command", "answer", "key"):
        assert not any(
            lowered == word or lowered.startswith(word + " ") for word in FORBIDDEN_PREFIXES
        ), where


def assert_fleet_read_only(fleet: FleetThread) -> set[str]:
    """Check every journal; returns the set of command lines sent (for non-vacuity)."""
    sent: set[str] = set()
    for state in fleet.devices:
        journal = state.journal()
        assert journal, f"{state.name}: nothing in the journal (not collected?)"
        for entry in journal:
            assert_allowed(state, entry)
            if entry.kind == "command":
                sent.add(entry.text)
    return sent


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_journal_line_is_on_the_closed_list(
    fleet: FleetThread, tmp_path: Path, transport: str
) -> None:
    for state in fleet.devices:
        state.clear_journal()
    code = collect(fleet, tmp_path, "--transport", transport, "--clock-from-device")
    assert code == 0
    sent = assert_fleet_read_only(fleet)
    assert {commands.OFFLINE_INFO, commands.CLOCK} <= sent
    # The dialogues really happened, and were answered N.
    for name in ("ar-save", "fw-save", "ar-pwchange", "fw-both"):
        answers = [e.text for e in fleet.device(name).journal() if e.kind == "answer"]
        assert answers and set(answers) == {commands.ANSWER_NO}, name
    # The paging devices were paged with the space key, never anything else.
    for name in ("ar-paging", "fw-paging", "fw-both"):
        keys = [e.text for e in fleet.device(name).journal() if e.kind == "key"]
        assert keys and set(keys) == {"space"}, name


def test_peer_form_is_the_only_variable_command(fleet: FleetThread, tmp_path: Path) -> None:
    for state in fleet.devices:
        state.clear_journal()
    peer = fleet.device("ar-01").records()[0].peer
    assert collect(fleet, tmp_path, "--peer", peer) == 0
    sent = assert_fleet_read_only(fleet)
    assert f"{commands.OFFLINE_INFO} peer {peer}" in sent
    assert commands.OFFLINE_INFO not in sent
