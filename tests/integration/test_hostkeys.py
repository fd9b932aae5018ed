"""Host key checks: trust on first use, changed keys refused, strict mode, OpenSSH file format.

The end-to-end cases log in to mock devices over real SSH; each mock device has a stable
ed25519 host key derived from a seed, and changing the seed simulates a replaced device.
"""

from __future__ import annotations

import base64
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from collector.core.records import Device, ErrorKind
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.hostkeys import (
    HostKeyError,
    HostKeyProblem,
    KnownHosts,
    fingerprint,
    host_entry_name,
)
from collector.ssh.transport import NetmikoTransport
from mock_devices.device import DeviceState, host_key_for
from mock_devices.fleet import FleetThread

PASSWORD = "hostkey-canary-Pw"
CREDENTIALS = Credentials("admin", Secret(PASSWORD))
SCENARIO = {
    "defaults": {"records": {"generate": {"count": 3, "seed": 5}}},
    "devices": [{"name": "edge-1"}, {"name": "edge-2", "layout": "firewall"}],
}

FleetFactory = Callable[..., FleetThread]


def as_device(state: DeviceState) -> Device:
    return Device(state.name, state.host, state.port, platform=state.spec.platform)


def paramiko_key(seed: str, name: str) -> paramiko.PKey:
    """The mock's host key for (seed, name) as a paramiko public key."""
    public = host_key_for(seed, name).export_public_key("openssh").decode().split()
    return paramiko.PKey.from_type_string(public[0], base64.b64decode(public[1]))


def mock_fingerprint(state: DeviceState) -> str:
    return str(state.host_key.get_fingerprint("sha256"))


def entry(state: DeviceState) -> str:
    return host_entry_name(state.host, state.port)


@pytest.fixture
def fleet(mock_fleet: FleetFactory) -> FleetThread:
    return mock_fleet(SCENARIO, password=PASSWORD)


def logins(state: DeviceState) -> int:
    return sum(1 for e in state.journal() if e.kind in ("login", "auth-failed"))


# --- end to end -----------------------------------------------------------------------


def test_trust_on_first_use_records_the_key(fleet: FleetThread, tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "known_hosts"
    transport = NetmikoTransport(KnownHosts(path))
    for state in fleet.devices:
        assert transport.collect(as_device(state), CREDENTIALS, timeout=15).ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert sorted(device for device, _, _ in transport.known_hosts.trusted) == ["edge-1", "edge-2"]
    for state in fleet.devices:
        public = state.host_key.export_public_key("openssh").decode().split()[:2]
        assert f"[127.0.0.1]:{state.port} {public[0]} {public[1]}" in lines

    # A second run (a fresh KnownHosts reads the file) accepts them and adds nothing.
    again = NetmikoTransport(KnownHosts(path, strict=True))
    for state in fleet.devices:
        assert again.collect(as_device(state), CREDENTIALS, timeout=15).ok
    assert path.read_text().splitlines() == lines


def test_fingerprint_matches_openssh_format(fleet: FleetThread) -> None:
    state = fleet.device("edge-1")
    key = paramiko_key(state.spec.host_key_seed, state.name)
    assert fingerprint(key) == mock_fingerprint(state)
    assert fingerprint(key).startswith("SHA256:") and not fingerprint(key).endswith("=")


def test_changed_key_is_refused_naming_the_device_and_both_fingerprints(
    fleet: FleetThread, tmp_path: Path
) -> None:
    path = tmp_path / "known_hosts"
    state = fleet.device("edge-1")
    assert NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS).ok
    old = mock_fingerprint(state)
    fleet.update_device("edge-1", host_key_seed="replaced-chassis")
    new = mock_fingerprint(state)
    assert old != new
    before = logins(state)

    result = NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS, timeout=15)

    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED
    message = result.error.message
    assert "edge-1" in message and "CHANGED" in message
    assert old in message and new in message
    assert str(path) in message and "\n" not in message
    assert logins(state) == before  # refused before the password was ever sent
    assert len(path.read_text().splitlines()) == 1  # the old key stays on record


def test_changed_key_is_refused_within_the_same_run(fleet: FleetThread, tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    transport = NetmikoTransport(known)
    state = fleet.device("edge-2")
    assert transport.collect(as_device(state), CREDENTIALS).ok
    fleet.update_device("edge-2", host_key_seed="impostor")
    result = transport.collect(as_device(state), CREDENTIALS, timeout=15)
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED


def test_strict_refuses_unknown_hosts_before_login(fleet: FleetThread, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    state = fleet.device("edge-1")
    result = NetmikoTransport(KnownHosts(path, strict=True)).collect(
        as_device(state), CREDENTIALS, timeout=15
    )
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY
    assert "edge-1" in result.error.message
    assert mock_fingerprint(state) in result.error.message
    assert "strict" in result.error.message
    assert logins(state) == 0
    assert not path.exists()


def test_strict_accepts_a_hashed_entry(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-2")
    key = paramiko_key(state.spec.host_key_seed, state.name)
    hashed = paramiko.HostKeys.hash_host(entry(state))
    path = tmp_path / "known_hosts"
    path.write_text(f"# comment\n\n{hashed} {key.get_name()} {key.get_base64()}\n")
    result = NetmikoTransport(KnownHosts(path, strict=True)).collect(
        as_device(state), CREDENTIALS, timeout=15
    )
    assert result.ok, result.error


def test_hashed_entry_with_another_key_is_a_change(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-2")
    other = paramiko_key("someone-else", state.name)
    path = tmp_path / "known_hosts"
    path.write_text(
        f"{paramiko.HostKeys.hash_host(entry(state))} {other.get_name()} {other.get_base64()}\n"
    )
    result = NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS, timeout=15)
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED
    assert fingerprint(other) in result.error.message
    assert mock_fingerprint(state) in result.error.message


def test_known_key_of_another_type_is_a_change(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-1")
    rsa = paramiko.RSAKey.generate(1024)
    path = tmp_path / "known_hosts"
    path.write_text(f"{entry(state)} {rsa.get_name()} {rsa.get_base64()}\n")
    result = NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS, timeout=15)
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED
    assert fingerprint(rsa) in result.error.message


def test_revoked_key_is_refused(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-1")
    key = paramiko_key(state.spec.host_key_seed, state.name)
    path = tmp_path / "known_hosts"
    path.write_text(f"@revoked * {key.get_name()} {key.get_base64()}\n")
    result = NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS, timeout=15)
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY
    assert "revoked" in result.error.message


def test_wildcard_entry_covers_a_device_in_strict_mode(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-1")
    key = paramiko_key(state.spec.host_key_seed, state.name)
    network = ".".join(state.host.split(".")[:3])
    pattern = f"{network}.*" if state.port == 22 else f"[{network}.*]:{state.port}"
    path = tmp_path / "known_hosts"
    path.write_text(f"{pattern} {key.get_name()} {key.get_base64()}\n")
    result = NetmikoTransport(KnownHosts(path, strict=True)).collect(
        as_device(state), CREDENTIALS, timeout=15
    )
    assert result.ok, result.error
    assert path.read_text().count("\n") == 1  # covered: nothing trusted on first use


def test_wildcard_entry_with_another_key_is_a_change(fleet: FleetThread, tmp_path: Path) -> None:
    state = fleet.device("edge-2")
    other = paramiko_key("someone-else", state.name)
    path = tmp_path / "known_hosts"
    pattern = "*" if state.port == 22 else f"[*]:{state.port}"
    path.write_text(f"{pattern} {other.get_name()} {other.get_base64()}\n")
    result = NetmikoTransport(KnownHosts(path)).collect(as_device(state), CREDENTIALS, timeout=15)
    assert result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED
    assert fingerprint(other) in result.error.message
    assert logins(state) == 0  # refused before the password is sent


# --- the store itself -----------------------------------------------------------------


def test_host_patterns_wildcards_negation_ports_and_case(tmp_path: Path) -> None:
    key = paramiko_key("s", "a")
    other = paramiko_key("t", "b")
    path = tmp_path / "known_hosts"
    path.write_text(
        f"10.1.*,!10.1.9.9 {key.get_name()} {key.get_base64()}\n"
        f"[10.2.?.1]:2222 {key.get_name()} {key.get_base64()}\n"
        f"*.VPN.example.net {other.get_name()} {other.get_base64()}\n"
    )
    known = KnownHosts(path)
    assert known.lookup("10.1.4.20") == {key.get_name(): key}
    assert known.lookup("10.1.9.9") == {}  # negated on its line
    assert known.lookup("10.10.4.20") == {}  # '.' is a dot, not any character
    assert known.lookup("[10.2.7.1]:2222") == {key.get_name(): key}
    assert known.lookup("[10.2.17.1]:2222") == {}  # '?' is one character
    assert known.lookup("10.2.7.1") == {}  # the port is part of the name
    assert known.lookup("hub1.vpn.example.net") == {other.get_name(): other}


def test_revoked_pattern_refuses_matching_hosts_only(tmp_path: Path) -> None:
    key = paramiko_key("s", "a")
    path = tmp_path / "known_hosts"
    path.write_text(f"@revoked 192.0.2.* {key.get_name()} {key.get_base64()}\n")
    known = KnownHosts(path)
    assert known.is_revoked("192.0.2.10", key)
    assert not known.is_revoked("198.51.100.10", key)
    assert known.lookup("192.0.2.10") == {}


def test_plain_multi_name_and_port_22_entries(tmp_path: Path) -> None:
    key = paramiko_key("s", "a")
    path = tmp_path / "known_hosts"
    path.write_text(
        f"fw1.example.net,192.0.2.1 {key.get_name()} {key.get_base64()}\n"
        "garbage line\n"
        f"@cert-authority *.example.net {key.get_name()} {key.get_base64()}\n"
    )
    known = KnownHosts(path)
    assert known.lookup("192.0.2.1") == {key.get_name(): key}
    assert known.lookup("fw1.example.net") == {key.get_name(): key}
    assert known.lookup("[192.0.2.1]:2222") == {}
    assert host_entry_name("192.0.2.1", 22) == "192.0.2.1"


def test_concurrent_first_use_appends_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    first = paramiko_key("other", "x")
    path.write_text(f"192.0.2.250 {first.get_name()} {first.get_base64()}")  # no final newline
    known = KnownHosts(path)
    keys = {f"[10.0.0.{n}]:22{n:02d}": paramiko_key("fleet", str(n)) for n in range(1, 41)}
    errors: list[BaseException] = []

    def trust(name: str) -> None:
        try:
            for _ in range(3):  # the same host seen by several sessions at once
                known.verify_new("dev", name, keys[name])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=trust, args=(name,)) for name in keys for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(keys)
    assert lines[0].startswith("192.0.2.250 ")
    reread = KnownHosts(path)
    for name, key in keys.items():
        assert reread.lookup(name) == {key.get_name(): key}


def test_verify_new_refuses_a_different_key_for_a_name_recorded_meanwhile(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.verify_new("dev", "[10.0.0.1]:22", paramiko_key("a", "x"))
    with pytest.raises(HostKeyError) as info:
        known.verify_new("dev", "[10.0.0.1]:22", paramiko_key("b", "x"))
    assert info.value.problem is HostKeyProblem.CHANGED
    assert info.value.known == fingerprint(paramiko_key("a", "x"))
    assert info.value.offered == fingerprint(paramiko_key("b", "x"))


def test_unwritable_file_still_trusts_for_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "known_hosts"
    directory.chmod(0o500)
    try:
        known = KnownHosts(path)
        key = paramiko_key("a", "y")
        known.verify_new("dev", "10.9.9.9", key)
        assert known.lookup("10.9.9.9") == {key.get_name(): key}
    finally:
        directory.chmod(0o700)
    if not path.exists():  # root may write anyway; otherwise a warning says why
        assert "trusted for this run only" in caplog.text


def test_record_false_keeps_keys_in_memory_only(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    known = KnownHosts(path, record=False)
    known.verify_new("dev", "10.1.1.1", paramiko_key("a", "z"))
    assert known.lookup("10.1.1.1")
    assert not path.exists()
