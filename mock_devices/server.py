"""The SSH side of the mock: asyncssh servers for a whole fleet in one event loop.

``Fleet`` starts one listener per device (an asyncssh server; a bare TCP server that never says
anything for ``hang_no_banner``; a bound but never-listening socket for ``port_closed``, so the
port stays reserved and connecting to it is refused), adds churn, and stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncssh

from mock_devices.device import DeviceState
from mock_devices.scenario import DeviceSpec, Fault, Scenario
from mock_devices.session import VrpSession

SERVER_VERSION = "HUAWEI-1.5"
"""What VRP's SSH server announces (``SSH-2.0-HUAWEI-1.5``)."""

# Cheap algorithms first; all are offered by paramiko (netmiko's transport) and OpenSSH. The client
# picks in its own order, so this only removes the expensive ones (RSA host keys, big DH groups).
KEX_ALGS = (
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group14-sha256",
)
ENCRYPTION_ALGS = (
    "aes128-ctr",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes256-gcm@openssh.com",
)
MAC_ALGS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1")


class DeviceServer(asyncssh.SSHServer):
    """Authentication and session creation for one device."""

    def __init__(self, device: DeviceState, connections: set[asyncssh.SSHServerConnection]):
        self.device = device
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        if self.device.spec.authorized_keys and self._conn is not None:
            keys = asyncssh.import_authorized_keys("\n".join(self.device.spec.authorized_keys))
            self._conn.set_authorized_keys(keys)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        spec = self.device.spec
        ok = (
            not spec.has(Fault.WRONG_CREDENTIALS)
            and username == spec.username
            and bool(spec.password)
            and hmac.compare_digest(password.encode(), spec.password.encode())
        )
        if not ok:
            self.device.record(0, "auth-failed", f"password user={username}")
        return ok

    def public_key_auth_supported(self) -> bool:
        return bool(self.device.spec.authorized_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Only reached for keys set_authorized_keys did not already accept.
        self.device.record(0, "auth-failed", f"publickey user={username}")
        return False

    def auth_completed(self) -> None:
        self.device.record(0, "login", f"user={self.device.spec.username}")

    def session_requested(self) -> VrpSession:
        return VrpSession(self.device)


@dataclass(frozen=True, slots=True)
class BindPlan:
    """Where the devices listen.

    ``loopback``: device *i* on its own address 127.0.x.y (from ``base_address``) and ``port``.
    ``ports``: every device on ``host`` with consecutive ports from ``port`` (0 = the OS picks
    a free port for each, which suits tests running in parallel).
    """

    mode: str = "ports"
    host: str = "127.0.0.1"
    port: int = 0
    base_address: str = "127.0.1.1"
    fallback: bool = True
    """If a loopback address cannot be bound, fall back to ``ports`` on 127.0.0.1."""


def loopback_address(base: str, index: int) -> str:
    """The address of device ``index``: 127.0.1.1 .. 127.0.1.250, 127.0.2.1 .. (skips .0/.251+).

    Examples:
        >>> loopback_address("127.0.1.1", 0), loopback_address("127.0.1.1", 250)
        ('127.0.1.1', '127.0.2.1')
    """
    start = ipaddress.IPv4Address(base)
    third, fourth = int(start.packed[2]), int(start.packed[3]) - 1
    position = third * 250 + fourth + index
    third, fourth = divmod(position, 250)
    if third > 255:
        raise ValueError(f"too many devices for loopback addresses from {base}")
    return f"127.{start.packed[1]}.{third}.{fourth + 1}"


class Listener:
    """Whatever a device listens with, closed the same way."""

    def __init__(
        self,
        acceptor: asyncssh.SSHAcceptor | None = None,
        tcp: asyncio.Server | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.acceptor = acceptor
        self.tcp = tcp
        self.sock = sock

    def port(self) -> int:
        """The bound port."""
        if self.acceptor is not None:
            return self.acceptor.get_port()
        if self.tcp is not None:
            return int(self.tcp.sockets[0].getsockname()[1])
        assert self.sock is not None
        return int(self.sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening."""
        if self.acceptor is not None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
        if self.tcp is not None:
            self.tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.tcp.wait_closed(), 2)
        if self.sock is not None:
            self.sock.close()


class Fleet:
    """All devices of a scenario, served from the running event loop."""

    def __init__(
        self,
        scenario: Scenario,
        bind: BindPlan | None = None,
        journal_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.bind = bind or BindPlan()
        self.journal_dir = journal_dir
        if journal_dir is not None:
            journal_dir.mkdir(parents=True, exist_ok=True)
        self.devices: list[DeviceState] = [
            DeviceState(spec, journal_dir) for spec in scenario.devices
        ]
        self._by_name = {device.spec.name: device for device in self.devices}
        self._listeners: dict[str, Listener] = {}
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._hung: set[asyncio.StreamWriter] = set()
        self._churn_task: asyncio.Task[None] | None = None
        self.fell_back = False
        self.fallback_reason: OSError | None = None

    def device(self, name: str) -> DeviceState:
        """A device by name (``KeyError`` names the unknown device)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no mock device named {name!r}") from None

    async def start(self) -> None:
        """Bind every device; falls back to 127.0.0.1 ports when addresses cannot be bound."""
        bind = self.bind
        if bind.mode == "loopback":
            try:
                for index, device in enumerate(self.devices):
                    host = loopback_address(bind.base_address, index)
                    await self._listen(device, host, bind.port)
            except OSError as exc:
                if not bind.fallback:
                    raise
                await self._close_listeners()
                self.fell_back = True
                self.fallback_reason = exc
                port = bind.port if bind.port >= 1024 else 20022
                await self._listen_ports(bind.host, port, consecutive=True)
        else:
            await self._listen_ports(bind.host, bind.port, consecutive=bind.port != 0)
        if any(device.spec.churn_per_minute > 0 for device in self.devices):
            self._churn_task = asyncio.get_running_loop().create_task(self._churn())

    async def _listen_ports(self, host: str, first: int, consecutive: bool) -> None:
        port = first
        for device in self.devices:
            while True:
                try:
                    await self._listen(device, host, port if consecutive else 0)
                    break
                except OSError as exc:
                    if not consecutive or exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                        raise
                    port += 1
                    if port > 65535:
                        raise
            port = device.port + 1

    async def _listen(self, device: DeviceState, host: str, port: int) -> None:
        spec = device.spec
        listener = await self._open_listener(device, spec, host, port)
        self._listeners[spec.name] = listener
        device.host = host
        device.port = listener.port()

    async def _open_listener(
        self, device: DeviceState, spec: DeviceSpec, host: str, port: int
    ) -> Listener:
        if spec.has(Fault.PORT_CLOSED):
            # Bound but never listening: the port stays ours and connections are refused (RST).
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                raise
            return Listener(sock=sock)
        if spec.has(Fault.HANG_NO_BANNER):
            server = await asyncio.start_server(self._hang, host, port, reuse_address=True)
            return Listener(tcp=server)
        acceptor = await asyncssh.create_server(
            lambda: DeviceServer(device, self._connections),
            host,
            port,
            server_host_keys=[device.host_key],
            server_version=SERVER_VERSION,
            encoding=None,
            line_editor=False,  # VrpSession echoes and edits lines itself
            kex_algs=list(KEX_ALGS),
            encryption_algs=list(ENCRYPTION_ALGS),
            mac_algs=list(MAC_ALGS),
            compression_algs=["none"],
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
            login_timeout=120,
            reuse_address=True,
        )
        return Listener(acceptor=acceptor)

    async def _hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept TCP, never send the SSH banner, read and discard until the client leaves."""
        self._hung.add(writer)
        try:
            while await reader.read(4096):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._hung.discard(writer)
            writer.close()

    async def _churn(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for device in self.devices:
                device.churn_tick(now - last)
            last = now

    async def _close_listeners(self) -> None:
        listeners, self._listeners = self._listeners, {}
        await asyncio.gather(*(listener.close() for listener in listeners.values()))

    async def update_device(self, name: str, **changes: Any) -> DeviceState:
        """Change a device's scenario fields while the fleet runs, on the same address.

        For example ``host_key_seed="replaced"`` (the device now shows another host key, as a
        swapped chassis would) or ``faults=frozenset({Fault.PORT_CLOSED})``. Sessions already
        open keep the old behaviour; the device's records and journal are kept.
        """
        device = self.device(name)
        listener = self._listeners.pop(name, None)
        if listener is not None:
            await listener.close()
        device.replace_spec(replace(device.spec, **changes))
        await self._listen(device, device.host, device.port)
        return device

    async def stop(self) -> None:
        """Stop listening, close every open session and the churn task."""
        if self._churn_task is not None:
            self._churn_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._churn_task
        await self._close_listeners()
        for conn in list(self._connections):
            conn.close()
        for writer in list(self._hung):
            writer.close()
        await asyncio.sleep(0)

    def addresses(self) -> Sequence[tuple[str, str, int]]:
        """``(name, host, port)`` for every device."""
        return [(d.spec.name, d.host, d.port) for d in self.devices]
