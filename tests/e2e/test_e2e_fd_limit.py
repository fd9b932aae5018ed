"""Sessions in flight and the open-files limit, end to end: ``collect`` in a real process
whose soft ``ulimit -n`` is far below what ``--workers`` sessions need. The asyncssh
transport raises the soft limit towards the hard one; when the hard limit is too low it
keeps fewer sessions in flight and says so, and every device is still read
(none fails on "too many open files")."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import run_collect

PASSWORD = "fd-limit-Pw-4"
DEVICES = 100
"""All in flight at once (``--workers 200``): 100 sockets, more than the soft limit allows,
so without the limit handled some devices would fail on "too many open files"."""
LIMIT = 100


def limited(soft: int, hard: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


@pytest.mark.parametrize(
    ("soft", "hard", "warned"),
    [(LIMIT, LIMIT, True), (LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1], False)],
)
def test_every_device_is_read_under_a_low_open_files_limit(
    mock_fleet: Any, tmp_path: Path, soft: int, hard: int, warned: bool
) -> None:
    if hard != resource.RLIM_INFINITY and hard < 700 and not warned:
        pytest.skip(f"the hard open-files limit ({hard}) is too low to raise the soft one")
    devices = [{"name": f"ar-{index:02d}"} for index in range(DEVICES)]
    spec = {"defaults": {"records": {"generate": {"count": 3, "seed": 5}}}, "devices": devices}
    fleet = mock_fleet(spec, password=PASSWORD)
    completed = run_collect(
        [str(Path(sys.executable).with_name("collect-ike-offline"))],
        fleet,
        tmp_path,
        PASSWORD,
        "--processes",
        "1",
        "--workers",
        "200",
        "-v",
        preexec_fn=limited(soft, hard),
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)["devices"]
    assert [device["error"] for device in report] == [None] * DEVICES
    assert all(len(device["records"]) == 3 for device in report)
    warning = (
        f"the open-files limit ({LIMIT}, ulimit -n) allows 12 sessions in flight,"
        f" not {DEVICES}: raise it"
    )
    if warned:
        assert warning in completed.stderr
    else:
        assert warning not in completed.stderr
        raised = f"open-files limit raised from {LIMIT} to 364 for {DEVICES} sessions"
        assert raised in completed.stderr
