"""The mock-huawei-fleet console script: READY line, inventory, password file, clean stop."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from netmiko import ConnectHandler

from mock_devices.fleet import main


def read_display(host: dict[str, Any], password: str) -> str:
    connection = ConnectHandler(
        device_type=host["platform"],
        host=host["hostname"],
        port=host["port"],
        username=host["username"],
        password=password,
        conn_timeout=10,
    )
    try:
        return str(connection.send_command("display ike offline-info", read_timeout=20))
    finally:
        connection.disconnect()


def free_base_address() -> str:
    # A random 127.0.x.1 so parallel test runs rarely meet; the fleet falls back if taken.
    return f"127.0.{random.randint(100, 250)}.1"


def test_count_50_ready_inventory_and_sigterm(mock_fleet_process: Any, tmp_path: Path) -> None:
    password_file = tmp_path / "secrets" / "collector.env"
    fleet = mock_fleet_process(
        [
            "--count",
            "50",
            "--base-address",
            free_base_address(),
            "--password-file",
            str(password_file),
        ],
        password="from-the-env",
    )
    assert fleet.ready_line == "READY 50 devices"
    hosts = yaml.safe_load(fleet.inventory_path.read_text())
    assert len(hosts) == 50
    assert "from-the-env" not in fleet.inventory_path.read_text()
    assert {h["platform"] for h in hosts.values()} == {"huawei", "huawei_vrpv8"}
    assert yaml.safe_load(fleet.inventory_path.with_name("groups.yaml").read_text())
    assert password_file.read_text() == "IKE_COLLECTOR_PASSWORD=from-the-env\n"
    assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
    for name in ("edge-0001", "edge-0025", "edge-0050"):
        assert "Current info Num :200" in read_display(hosts[name], "from-the-env")
    assert fleet.stop(signal.SIGTERM) == 0
    assert any("stopped" in line for line in fleet.stderr_lines)


def test_sigint_stops_cleanly_and_journals_are_written(
    mock_fleet_process: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    fleet = mock_fleet_process(
        ["--scenario", "demo", "--single-address", "--journal-dir", str(journal)],
        password="pw",
    )
    hosts = yaml.safe_load(fleet.inventory_path.read_text())
    assert len({h["hostname"] for h in hosts.values()}) == 1  # one address, many ports
    read_display(hosts["ar-bj-02"], "pw")
    assert fleet.stop(signal.SIGINT) == 0
    lines = (journal / "ar-bj-02.jsonl").read_text().splitlines()
    assert any('"display ike offline-info"' in line for line in lines)


def test_variants_scenario_serves_every_variant(mock_fleet_process: Any) -> None:
    fleet = mock_fleet_process(["--scenario", "variants", "--single-address"], password="pw")
    hosts = yaml.safe_load(fleet.inventory_path.read_text())
    assert fleet.ready_line == f"READY {len(hosts)} devices"
    assert {"ne40e-slots", "fw-spu", "fw-stamp-time-first", "ar-clock-dst"} <= set(hosts)
    ne40e = hosts["ne40e-slots"]
    connection = ConnectHandler(
        device_type=ne40e["platform"],
        host=ne40e["hostname"],
        port=ne40e["port"],
        username=ne40e["username"],
        password="pw",
        conn_timeout=10,
    )
    try:
        output = str(connection.send_command("display ike offline history", read_timeout=20))
    finally:
        connection.disconnect()
    assert "IKE Offline Information for Slot : 3" in output
    assert "Unrecognized command" in read_display(ne40e, "pw")
    assert fleet.stop(signal.SIGTERM) == 0


def test_missing_password_is_one_clear_error(capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("MOCK_PASSWORD", raising=False)
    assert main(["--count", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "set $MOCK_PASSWORD" in err


def test_bad_scenario_is_one_clear_error(capsys: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - {name: a, faults: [explode]}\n")
    assert main(["--scenario", str(bad), "--password", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown fault 'explode'" in err and str(bad) in err


@pytest.mark.slow
def test_count_1000_in_one_process(mock_fleet_process: Any) -> None:
    fleet = mock_fleet_process(["--count", "1000", "--base-address", free_base_address()])
    assert fleet.ready_line == "READY 1000 devices"
    hosts = list(yaml.safe_load(fleet.inventory_path.read_text()).values())
    assert len(hosts) == 1000
    for host in (hosts[0], hosts[499], hosts[999]):
        assert "Current info Num :200" in read_display(host, fleet.password)
    assert fleet.stop(signal.SIGTERM) == 0


def test_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_devices.fleet", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "READY <n> devices" in result.stdout
