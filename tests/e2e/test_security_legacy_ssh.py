"""Legacy SSH: a device that offers only SHA-1 key exchange gets a clear, actionable error.

Older VRP releases offer only ``diffie-hellman-group14-sha1``, which paramiko 5 removed. The
mock fleet is started with that single key exchange (its server's algorithm list is the
mock's configuration, not the collector's), and the real CLI must fail that device with
``protocol`` and one line that says what to do: enable a SHA-2 key exchange on the device,
or install paramiko<5 (``netmiko[par4]``) and run with ``--legacy-ssh``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest

import mock_devices.server
from collector.ssh.errors import legacy_kex_available
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "legacy-ssh-Pw-6120"
SCENARIO = {
    "defaults": {"username": "admin", "records": {"generate": {"count": 3, "seed": 2}}},
    "devices": [{"name": "old-vrp"}],
}


@pytest.fixture
def sha1_only_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetThread]:
    monkeypatch.setattr(mock_devices.server, "KEX_ALGS", ("diffie-hellman-group14-sha1",))
    fleet = start_fleet(SCENARIO, password=PASSWORD, inventory=tmp_path / "inventory")
    yield fleet
    fleet.stop()


def read(fleet: FleetThread, tmp: Path, *args: str) -> tuple[int, dict[str, object], str]:
    """``collect`` through the CLI: exit code, the device's JSON entry, stderr."""
    run = helpers.collect(
        fleet.inventory_path,
        tmp,
        *("--no-store", "--format", "json", *args),
        password=PASSWORD,
        env={"NO_COLOR": "1"},
    )
    (device,) = run.json()["devices"]
    return run.code, device, run.stderr


def collect(fleet: FleetThread, tmp: Path, *args: str) -> tuple[int, dict[str, object], str]:
    """A run expected to fail the device: exit code, its error, stderr."""
    code, device, stderr = read(fleet, tmp, *args)
    error = device["error"]
    assert isinstance(error, dict)
    return code, error, stderr


@pytest.mark.skipif(legacy_kex_available(), reason="this paramiko still has SHA-1 kex")
def test_sha1_only_device_fails_with_what_to_do(
    sha1_only_fleet: FleetThread, tmp_path: Path
) -> None:
    code, error, stderr = collect(sha1_only_fleet, tmp_path, "--transport", "netmiko")
    assert code == 3
    assert error["kind"] == "protocol"
    message = str(error["message"])
    assert message.startswith("SSH negotiation failed")
    for advice in ("SHA-1", "diffie-hellman-group14-sha1", "netmiko[par4]", "--legacy-ssh"):
        assert advice in message, advice
    assert f"old-vrp: protocol: {message}" in stderr
    assert not any(e.kind == "login" for e in sha1_only_fleet.device("old-vrp").journal())


@pytest.mark.skipif(legacy_kex_available(), reason="this paramiko still has SHA-1 kex")
def test_legacy_ssh_without_paramiko_4_says_so(
    sha1_only_fleet: FleetThread, tmp_path: Path
) -> None:
    code, error, stderr = collect(
        sha1_only_fleet, tmp_path, "--legacy-ssh", "--transport", "netmiko"
    )
    assert code == 3
    assert "--legacy-ssh: the installed paramiko has no SHA-1 key exchange left" in stderr
    assert "netmiko[par4]" in stderr
    assert error["kind"] == "protocol"


# With paramiko<5 (``make test-legacy-ssh`` runs these in a venv that has it):


@pytest.mark.skipif(not legacy_kex_available(), reason="paramiko 5 has no SHA-1 kex")
def test_sha1_stays_off_without_legacy_ssh_even_when_paramiko_has_it(
    sha1_only_fleet: FleetThread, tmp_path: Path
) -> None:
    code, device, _ = read(sha1_only_fleet, tmp_path, "--transport", "netmiko")
    assert code == 3
    error = device["error"]
    assert isinstance(error, dict) and error["kind"] == "protocol"
    assert "--legacy-ssh" in str(error["message"])
    assert not any(e.kind == "login" for e in sha1_only_fleet.device("old-vrp").journal())


@pytest.mark.skipif(not legacy_kex_available(), reason="paramiko 5 has no SHA-1 kex")
def test_legacy_ssh_reads_a_sha1_only_device(sha1_only_fleet: FleetThread, tmp_path: Path) -> None:
    code, device, stderr = read(sha1_only_fleet, tmp_path, "--legacy-ssh", "--transport", "netmiko")
    assert code == 0, stderr
    assert device["error"] is None and device["status"] == "ok"
    assert len(device["records"]) == 3  # type: ignore[arg-type]


# asyncssh still has SHA-1 key exchange whatever paramiko is installed: off by default,
# offered with --legacy-ssh.


def test_asyncssh_keeps_sha1_off_without_legacy_ssh(
    sha1_only_fleet: FleetThread, tmp_path: Path
) -> None:
    code, error, stderr = collect(sha1_only_fleet, tmp_path, "--transport", "asyncssh")
    assert code == 3
    assert error["kind"] == "protocol"
    message = str(error["message"])
    assert message.startswith("SSH negotiation failed")
    for advice in ("SHA-1", "diffie-hellman-group14-sha1", "--legacy-ssh"):
        assert advice in message, advice
    assert f"old-vrp: protocol: {message}" in stderr
    assert not any(e.kind == "login" for e in sha1_only_fleet.device("old-vrp").journal())


def test_asyncssh_legacy_ssh_reads_a_sha1_only_device(
    sha1_only_fleet: FleetThread, tmp_path: Path
) -> None:
    code, device, stderr = read(
        sha1_only_fleet, tmp_path, "--legacy-ssh", "--transport", "asyncssh"
    )
    assert code == 0, stderr
    assert "installed paramiko" not in stderr  # the paramiko warning is not about asyncssh
    assert device["error"] is None and device["status"] == "ok"
    assert len(device["records"]) == 3  # type: ignore[arg-type]
