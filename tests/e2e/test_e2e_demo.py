"""``make demo``'s program as a subprocess: a real fleet process, a real collect process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_prints_the_fleet_report_and_exits_0(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_devices.demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Fleet report generated" in result.stdout
    assert "Devices that could not be read" in result.stdout
    for name in ("ar-gz-02", "fw-sh-02", "ar-sh-03"):  # the demo's faulty devices
        assert name in result.stdout
    assert "collect exited 1 (some devices could not be read" in result.stderr
    assert "fleet stopped" in result.stderr
    assert "ar-gz-01: device clock is" in result.stderr  # 95 s ahead in the scenario
    assert "Traceback" not in result.stderr
    # The scripted outage: routine deletions apart, the hub incident, the initiated pair.
    out = result.stdout
    assert "disruptive deletions" in out
    assert "\nRoutine: " in out
    incidents = out.split("Incidents (")[1].split("\n\n")[0]
    assert "all toward fw-bj-01 (192.0.2.1): the hub or its uplink" in incidents
    assert "ar-bj-02 (config modify or manual offline) asked fw-bj-01 to delete" in out
    # ar-bj-01's rekey-only tunnel to 192.0.2.77 is not flapping.
    flapping = out.split("Flapping peers")[1].split("\n\n")[0]
    assert "192.0.2.77" not in flapping
    assert "sa_replace" not in flapping and "sa replace" not in flapping
    assert (tmp_path / "history.sqlite3").exists()
    assert (tmp_path / "ike_offline.prom").exists()
