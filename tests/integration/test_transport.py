"""The SSH transports against mock VRP devices over real SSH (netmiko + paramiko, asyncssh,
napalm). Their pure parts are unit tests: ``tests/unit/core/test_commands.py`` (the allowed
command list) and ``tests/unit/ssh/test_transport_checks.py`` (output checks, error mapping)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Self

import asyncssh
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import assert_read_only

from collector.core.commands import (
    InvalidPeer,
)
from collector.core.records import Device, DeviceResult, ErrorKind, OfflineRecord, normalize_reason
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.errors import LEGACY_KEX, legacy_kex_available
from collector.ssh.factory import make_transport
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import Transport
from collector.ssh.transport import NapalmTransport, NetmikoTransport
from collector.ssh.vrp_session import client_transport, legacy_transport
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread, start_fleet
from mock_devices.tables import Row, render_table

PASSWORD = "canary-Pw-7f3a9"


# --- helpers --------------------------------------------------------------------------


def as_device(state: DeviceState) -> Device:
    return Device(
        name=state.name, hostname=state.host, port=state.port, platform=state.spec.platform
    )


def ed25519_key(path: Path) -> tuple[Path, str]:
    """A new private key written to ``path`` (0600, OpenSSH format) and its public line."""
    private = Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return path, public


def record_key(record: OfflineRecord) -> tuple[object, ...]:
    return (
        record.peer,
        normalize_reason(record.reason),
        record.ike_version,
        record.offline_time,
    )


def row_key(row: Row) -> tuple[object, ...]:
    return (row.peer, normalize_reason(row.reason), row.version, row.time)


def assert_records_match(result: DeviceResult, state: DeviceState) -> None:
    assert result.ok, result.error
    rows = state.records()
    assert [record_key(r) for r in result.records] == [row_key(r) for r in rows]
    if state.layout == "firewall":
        assert [r.port for r in result.records] == [row.port for row in rows]


@pytest.fixture(scope="module")
def faults_fleet() -> Iterator[FleetThread]:
    fleet = start_fleet("faults", password=PASSWORD)
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def known_hosts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ssh") / "known_hosts"


@pytest.fixture(scope="module", params=["netmiko", "asyncssh"])
def transport(known_hosts_file: Path, request: pytest.FixtureRequest) -> Transport:
    """The transports with a session of their own (napalm rides on netmiko's, below)."""
    return make_transport(request.param, known_hosts=KnownHosts(known_hosts_file))


@pytest.fixture
def credentials() -> Credentials:
    return Credentials("admin", Secret(PASSWORD))


# --- healthy devices ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ok-router", "ok-firewall"])
def test_healthy_device_records_match_the_mock(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials, name: str
) -> None:
    state = faults_fleet.device(name)
    result = transport.collect(as_device(state), credentials, timeout=15, clock=True)
    assert_records_match(result, state)
    assert len(result.records) == 40
    assert result.error is None
    assert result.started is not None and result.finished is not None
    assert result.started <= result.finished
    assert result.device_clock is not None
    assert abs((result.device_clock.local - state.now()).total_seconds()) < 60
    assert result.raw is None
    assert_read_only(state)


def test_keep_raw_holds_the_clean_output(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("ok-router")
    result = transport.collect(as_device(state), credentials, timeout=15, keep_raw=True)
    assert result.ok and result.raw is not None
    assert "Current info Num :40" in result.raw.replace(" : ", " :")
    assert "\r" not in result.raw and "\x1b" not in result.raw
    assert f"<{state.name}>" not in result.raw


def test_peer_filter_sends_the_peer_command(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("ok-firewall")
    peer = state.records()[0].peer
    result = transport.collect(as_device(state), credentials, peer=peer, timeout=15)
    assert result.ok, result.error
    expected = [row_key(row) for row in state.records() if row.peer == peer]
    assert [record_key(r) for r in result.records] == expected
    assert any(
        e.kind == "command" and e.text == f"display ike offline-info peer {peer}"
        for e in state.journal()
    )


def test_invalid_peer_is_refused_before_connecting(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("ok-router")
    before = len(state.journal())
    with pytest.raises(InvalidPeer):
        transport.collect(as_device(state), credentials, peer="1.1.1.1\nsave", timeout=5)
    assert len(state.journal()) == before


def test_huawei_vrpv8_platform_works_too(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("ok-router")
    device = Device(state.name, state.host, state.port, platform="huawei_vrpv8")
    assert transport.collect(device, credentials, timeout=15).ok


def test_unsupported_platform_is_a_clear_failure(
    transport: Transport, credentials: Credentials
) -> None:
    device = Device("x", "127.0.0.1", 1, platform="cisco_ios")
    result = transport.collect(device, credentials, timeout=5)
    assert result.error is not None and result.error.kind is ErrorKind.PROTOCOL
    assert "cisco_ios" in result.error.message


# --- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("f-wrong-credentials", ErrorKind.AUTH, "authentication failed for user 'admin'"),
        ("f-port-closed", ErrorKind.UNREACHABLE, "connection refused"),
        ("f-drop-mid-output", ErrorKind.INCOMPLETE_OUTPUT, "connection closed by the device"),
        ("f-command-unsupported", ErrorKind.COMMAND_REJECTED, "Error: Unrecognized command"),
        ("f-truncated-table", ErrorKind.INCOMPLETE_OUTPUT, "Current info Num' says 40"),
        ("f-garbage-output", ErrorKind.PROTOCOL, "not display ike offline-info output"),
    ],
)
def test_fault_gives_the_right_error_kind(
    faults_fleet: FleetThread,
    transport: Transport,
    credentials: Credentials,
    name: str,
    kind: ErrorKind,
    words: str,
) -> None:
    state = faults_fleet.device(name)
    result = transport.collect(as_device(state), credentials, timeout=15)
    assert not result.ok
    assert result.error is not None
    assert result.error.kind is kind, result.error
    assert words in result.error.message
    assert "\n" not in result.error.message
    assert PASSWORD not in result.error.message
    assert result.records == ()
    assert_read_only(state)


@pytest.mark.slow
def test_slow_device_is_read_within_its_deadline(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("f-slow")
    result = transport.collect(as_device(state), credentials, timeout=20)
    assert_records_match(result, state)


@pytest.mark.slow
@pytest.mark.timeout(3 + 10)
@pytest.mark.parametrize(
    ("name", "phase"),
    [("f-hang-no-banner", "SSH"), ("f-very-slow", "display ike offline-info")],
)
def test_deadline_ends_a_hung_device_in_timeout(
    faults_fleet: FleetThread,
    transport: Transport,
    credentials: Credentials,
    name: str,
    phase: str,
) -> None:
    state = faults_fleet.device(name)
    result = transport.collect(as_device(state), credentials, timeout=3)
    assert result.error is not None
    assert result.error.kind is ErrorKind.TIMEOUT, result.error
    assert "within 3 s" in result.error.message
    assert phase in result.error.message


def test_pages_through_more_when_screen_length_is_refused(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    state = faults_fleet.device("f-reject-screen-length")
    result = transport.collect(as_device(state), credentials, timeout=15, keep_raw=True)
    assert_records_match(result, state)
    assert result.raw is not None and "More" not in result.raw and "\x1b" not in result.raw
    keys = [e for e in state.journal() if e.kind == "key"]
    assert keys and all(e.text == "space" for e in keys)
    assert_read_only(state)


@pytest.mark.parametrize("name", ["f-password-change-prompt", "f-save-prompt"])
def test_login_questions_are_answered_no(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials, name: str
) -> None:
    state = faults_fleet.device(name)
    result = transport.collect(as_device(state), credentials, timeout=15)
    assert_records_match(result, state)
    answers = [e.text for e in state.journal() if e.kind == "answer"]
    assert answers and set(answers) == {"N"}
    assert_read_only(state)


@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_public_key_login(tmp_path: Path, mock_fleet: object, name: str) -> None:
    key_file, public = ed25519_key(tmp_path / "id_ed25519")
    fleet = mock_fleet(  # type: ignore[operator]
        {
            "defaults": {"records": {"generate": {"count": 5, "seed": 3}}},
            "devices": [{"name": "keyed", "authorized_keys": [public]}],
        },
        password="not-used-by-the-client",
    )
    state = fleet.device("keyed")
    transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
    result = transport.collect(
        as_device(state), Credentials("admin", key_file=key_file), timeout=15
    )
    assert_records_match(result, state)


@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_agent_key_login(
    tmp_path: Path, mock_fleet: object, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--ssh-agent: the key is only in a real ssh-agent (no key file, no password)."""
    key_file, public = ed25519_key(tmp_path / "agent_key")
    fleet = mock_fleet(  # type: ignore[operator]
        {
            "defaults": {"records": {"generate": {"count": 4, "seed": 6}}},
            "devices": [{"name": "agent-keyed", "authorized_keys": [public]}],
        },
        password="not-used-by-the-client",
    )
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(key_file)], env=env, check=True, capture_output=True)
        key_file.unlink()  # the agent alone has it now
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        state = fleet.device("agent-keyed")
        transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
        result = transport.collect(
            as_device(state), Credentials("admin", use_agent=True), timeout=15
        )
        assert_records_match(result, state)
        without = transport.collect(as_device(state), Credentials("admin"), timeout=15)
        assert without.error is not None and without.error.kind is ErrorKind.AUTH
    finally:
        agent.terminate()
        agent.wait(timeout=5)


def test_no_password_key_or_agent_is_an_auth_failure(
    faults_fleet: FleetThread, transport: Transport
) -> None:
    state = faults_fleet.device("ok-router")
    result = transport.collect(as_device(state), Credentials("admin"), timeout=10)
    assert result.error is not None and result.error.kind is ErrorKind.AUTH


def test_missing_username_is_an_auth_failure(
    faults_fleet: FleetThread, transport: Transport
) -> None:
    state = faults_fleet.device("ok-router")
    result = transport.collect(as_device(state), Credentials(None, Secret(PASSWORD)), timeout=10)
    assert result.error is not None and result.error.kind is ErrorKind.AUTH
    assert "username" in result.error.message


def test_device_username_wins_over_the_default(
    faults_fleet: FleetThread, transport: Transport
) -> None:
    state = faults_fleet.device("ok-router")
    device = Device(state.name, state.host, state.port, username="admin", platform="huawei")
    result = transport.collect(device, Credentials("nobody", Secret(PASSWORD)), timeout=10)
    assert result.ok, result.error


def test_conversation_is_logged_at_debug_without_the_password(
    faults_fleet: FleetThread,
    transport: Transport,
    credentials: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("ok-router", "f-wrong-credentials", "f-save-prompt"):
        result = transport.collect(as_device(faults_fleet.device(name)), credentials, timeout=15)
        assert PASSWORD not in repr(result)
    assert "display ike offline-info" in caplog.text
    assert "Current info Num" in caplog.text
    assert PASSWORD not in caplog.text
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


def test_read_only_over_the_whole_fault_fleet(
    faults_fleet: FleetThread, transport: Transport, credentials: Credentials
) -> None:
    for state in faults_fleet.devices:
        if state.spec.faults & {"hang_no_banner", "very_slow", "slow"}:
            continue
        transport.collect(as_device(state), credentials, timeout=15, clock=True)
    for state in faults_fleet.devices:
        assert_read_only(state)


# --- napalm ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def napalm_transport(known_hosts_file: Path) -> NapalmTransport:
    return NapalmTransport(KnownHosts(known_hosts_file))


@pytest.mark.parametrize("name", ["ok-router", "ok-firewall", "f-save-prompt"])
def test_napalm_transport_collects_read_only(
    faults_fleet: FleetThread,
    napalm_transport: NapalmTransport,
    credentials: Credentials,
    name: str,
) -> None:
    state = faults_fleet.device(name)
    result = napalm_transport.collect(as_device(state), credentials, timeout=15, clock=True)
    assert_records_match(result, state)
    assert result.device_clock is not None
    assert abs((result.device_clock.local - state.now()).total_seconds()) < 60
    assert_read_only(state)


def test_napalm_transport_pages_and_maps_errors(
    faults_fleet: FleetThread, napalm_transport: NapalmTransport, credentials: Credentials
) -> None:
    state = faults_fleet.device("f-reject-screen-length")
    assert_records_match(napalm_transport.collect(as_device(state), credentials, timeout=15), state)
    for name, kind in [
        ("f-wrong-credentials", ErrorKind.AUTH),
        ("f-port-closed", ErrorKind.UNREACHABLE),
        ("f-command-unsupported", ErrorKind.COMMAND_REJECTED),
    ]:
        result = napalm_transport.collect(
            as_device(faults_fleet.device(name)), credentials, timeout=15
        )
        assert result.error is not None and result.error.kind is kind, (name, result.error)


# --- legacy SSH: a server that offers only SHA-1 key exchange --------------------------


class _Sha1OnlyServer:
    """An asyncssh server offering only diffie-hellman-group14-sha1 (old VRP), in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop: asyncio.Event | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            0,
            server_host_keys=[key],
            kex_algs=["diffie-hellman-group14-sha1"],
        )
        self.port = server.get_port()
        self._ready.set()
        await self._stop.wait()
        server.close()

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *args: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_sha1_only_device_gets_a_protocol_error_that_says_what_to_do(
    tmp_path: Path, name: str
) -> None:
    transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
    with _Sha1OnlyServer() as server:
        device = Device("old-vrp", "127.0.0.1", server.port)
        result = transport.collect(device, Credentials("admin", Secret(PASSWORD)), timeout=10)
    assert result.error is not None
    assert result.error.kind is ErrorKind.PROTOCOL, result.error
    assert "SSH negotiation failed" in result.error.message
    assert "SHA-1" in result.error.message
    assert "\n" not in result.error.message


class _ShellServer(_Sha1OnlyServer):
    """Any password accepted, modern key exchange, and :meth:`shell` as the session.

    Records every line the client sent in ``received``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: list[str] = []

    async def shell(self, process: asyncssh.SSHServerProcess[str]) -> None:
        raise NotImplementedError

    async def _main(self) -> None:
        self._stop = asyncio.Event()

        class Server(asyncssh.SSHServer):
            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return True

        server = await asyncssh.create_server(
            Server,
            "127.0.0.1",
            0,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            process_factory=self.shell,
            line_editor=False,
        )
        self.port = server.get_port()
        self._ready.set()
        await self._stop.wait()
        server.close()


class _ExpiredPasswordServer(_ShellServer):
    """Asks the password-change question and hangs up when it is declined (some VRP
    releases refuse a session with an expired password)."""

    async def shell(self, process: asyncssh.SSHServerProcess[str]) -> None:
        process.stdout.write(
            "\r\nWarning: The password has expired.\r\n"
            "The password needs to be changed. Change now? [Y/N]:"
        )
        line = await process.stdin.readline()
        self.received.append(line.strip())
        process.stdout.write("\r\nInfo: Password not changed. Goodbye.\r\n")
        process.exit(0)


class _SilentUntilEnterServer(_ShellServer):
    """A VRP-like shell that prints nothing until a key is pressed, then the prompt, and
    answers the two commands (a device variant netmiko sends an Enter for)."""

    rows = [
        Row("10.0.0.1", "dpd timeout", 2, datetime(2026, 1, 2, 3, 4, 5)),
        Row("10.0.0.2", "peer request", 1, datetime(2026, 1, 2, 3, 0, 0)),
    ]

    async def shell(self, process: asyncssh.SSHServerProcess[str]) -> None:
        while True:
            line = (await process.stdin.readline()).strip()
            if not line and process.stdin.at_eof():
                break
            self.received.append(line)
            if line == "display ike offline-info":
                process.stdout.write("\r\n".join(render_table(self.rows, "router")) + "\r\n")
            elif line == "screen-length 0 temporary":
                process.stdout.write("Info: The configuration takes effect.\r\n")
            elif line == "quit":
                break
            process.stdout.write("<quiet-ar>")
        process.exit(0)


@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_device_silent_until_enter_gets_one_enter(tmp_path: Path, name: str) -> None:
    transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
    with _SilentUntilEnterServer() as server:
        device = Device("quiet-ar", "127.0.0.1", server.port)
        result = transport.collect(device, Credentials("admin", Secret(PASSWORD)), timeout=15)
    assert result.ok, result.error
    assert [r.peer for r in result.records] == ["10.0.0.1", "10.0.0.2"]
    assert server.received[:3] == ["", "screen-length 0 temporary", "display ike offline-info"]


@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_declined_password_change_then_hangup_is_an_auth_failure(tmp_path: Path, name: str) -> None:
    transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
    with _ExpiredPasswordServer() as server:
        device = Device("expired", "127.0.0.1", server.port)
        result = transport.collect(device, Credentials("admin", Secret(PASSWORD)), timeout=10)
    assert server.received == ["N"]
    assert result.error is not None and result.error.kind is ErrorKind.AUTH, result.error
    assert "password change" in result.error.message


def test_legacy_transport_offers_only_what_paramiko_has() -> None:
    left, right = socket.socketpair()
    try:
        transport = legacy_transport(left)
        offered = transport.get_security_options().kex
        assert set(offered) >= set(paramiko.Transport._preferred_kex)
        for name in LEGACY_KEX:
            assert (name in offered) == legacy_kex_available()
    finally:
        left.close()
        right.close()


def test_client_transport_prefers_aead_ciphers() -> None:
    left, right = socket.socketpair()
    try:
        ciphers = client_transport(left).get_security_options().ciphers
        assert ciphers[0] == "aes128-gcm@openssh.com"
        assert set(ciphers) == set(paramiko.Transport._preferred_ciphers)
    finally:
        left.close()
        right.close()


def test_make_transport() -> None:
    assert isinstance(make_transport("netmiko"), NetmikoTransport)
    assert isinstance(make_transport("napalm"), NapalmTransport)
    assert make_transport("asyncssh").name == "asyncssh"
    with pytest.raises(ValueError, match="netmiko, napalm, asyncssh"):
        make_transport("scrapli")
