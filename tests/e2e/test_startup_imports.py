"""What a collection imports: the asyncssh transport (the default) never loads netmiko.

netmiko (with textfsm, ttp, pyserial and scp) costs ~40-50 ms of CPU at every start, which
is a twentieth of a 100-device run (docs/BENCHMARKS.md); only the netmiko and napalm
transports use it. A real collection over SSH from a mock device through the CLI, in a
fresh interpreter, reports what was loaded when it exits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import run_collect

PASSWORD = "startup-imports-pw"
HEAVY = ("netmiko", "napalm", "textfsm", "ttp", "serial", "scp")
REPORTER = f"""
import atexit, sys
def loaded():
    names = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
    print("LOADED " + ",".join(names), file=sys.__stderr__)
atexit.register(loaded)
from collector.cli.main import main
sys.argv = ["collect-ike-offline", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(("transport", "netmiko"), [("asyncssh", False), ("netmiko", True)])
def test_a_collection_loads_only_its_transport(
    mock_fleet: Any, tmp_path: Path, transport: str, netmiko: bool
) -> None:
    fleet = mock_fleet({"devices": [{"name": "ar-1"}]}, password=PASSWORD)
    device = fleet.device("ar-1")
    completed = run_collect(
        [sys.executable, "-c", REPORTER], fleet, tmp_path, PASSWORD, "--transport", transport
    )
    assert completed.returncode == 0, completed.stderr
    (report,) = json.loads(completed.stdout)["devices"]
    assert report["error"] is None
    assert len(report["records"]) == len(device.records()) > 0
    (line,) = [line for line in completed.stderr.splitlines() if line.startswith("LOADED ")]
    loaded = set(filter(None, line.removeprefix("LOADED ").split(",")))
    if netmiko:  # the check can fail: the netmiko transport does load it
        assert {"netmiko", "textfsm"} <= loaded
    else:
        assert loaded == set()
