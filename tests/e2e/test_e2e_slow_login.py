"""A device slow to show its first prompt (a busy device CPU, AAA over a WAN) is read in full.

The collector presses Enter once after :data:`collector.ssh.vrp_dialogue.NUDGE_AFTER` s of
silence at login. A device that was only slow answers that Enter with a second prompt, and
it can arrive after ``screen-length 0 temporary`` was sent: it must not be taken as that
command's answer (nor ``screen-length``'s answer as the table). The mock's
``login_delay_ms`` holds the banner and first prompt back longer than the nudge delay and
its ``enter_latency_ms`` answers the Enter only after that, over real SSH, through the real CLI,
on every transport. (Without the dialogue's check the asyncssh run fails here every time;
the netmiko reader happens to receive that prompt together with the next echo.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_matches_mock, assert_read_only, collect

from collector.ssh.factory import TRANSPORTS
from collector.ssh.vrp_dialogue import NUDGE_AFTER
from mock_devices.fleet import start_fleet

PASSWORD = "slow-login-Pw-3"
DELAY_MS = int((NUDGE_AFTER + 1.0) * 1000)
LATENCY_MS = 500
"""Before the prompt that answers an Enter: it comes after the collector, seeing the first
prompt, has sent ``screen-length`` (the race a loaded WAN device makes); every command is
answered as late."""
SLOW = {"login_delay_ms": DELAY_MS, "enter_latency_ms": LATENCY_MS, "latency_ms": LATENCY_MS}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_device_slower_than_the_nudge_is_read_in_full(tmp_path: Path, transport: str) -> None:
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 30, "seed": 5}}},
        "devices": [
            {"name": "slow-ar", **SLOW},
            {"name": "slow-fw", "layout": "firewall", **SLOW},
            {"name": "quick-ar"},
        ],
    }
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        result = collect(
            fleet.inventory_path,
            tmp_path,
            *("--format", "json", "--transport", transport, "--retries", "0"),
            password=PASSWORD,
            timeout=30,
            env={"NO_COLOR": "1"},
        )
        assert result.code == 0, result.stderr
        devices = result.devices()
        for name in ("slow-ar", "slow-fw", "quick-ar"):
            assert_matches_mock(devices[name], fleet.device(name))
            assert_read_only(fleet.device(name))
