"""``--transport asyncssh``: every device of a process in one asyncio event loop.

The threads of the netmiko transport spend most of a session's client CPU in paramiko
and share one GIL; asyncssh does the same SSH work in a fraction of the CPU, and one event
loop keeps hundreds of sessions in flight without a thread each. What is said to the
device is :class:`~collector.ssh.vrp_dialogue.VrpDialogue`'s, as for netmiko (login, ``N`` to
every ``[Y/N]``, paging, the allow-list, short reads), and the flow around it is
:mod:`collector.ssh.transport`'s (``begin_attempt``, ``login_for``, ``device_plan``,
``failed_attempt``, ``result_from_outputs``), so both transports report the same error
kinds and messages. The guarantees, one by one:

* **host keys**: :class:`~collector.ssh.hostkeys.KnownHosts` decides. asyncssh gets the keys on
  record for the host (so it prefers their type in the negotiation, as OpenSSH and
  paramiko do); any other key goes to ``validate_host_public_key``: a host with keys on
  record and a different one offered is refused (``changed``), an unknown one is trusted
  on first use (or refused with ``--strict-host-keys``), revoked keys are refused.
* **authentication**: the password, ``--key-file`` (and its passphrase), the agent's keys
  with ``--ssh-agent``, else the ssh_config's ``IdentityFile`` s that exist; never
  ``~/.ssh/id_*`` or ``~/.ssh/config`` behind the operator's back (asyncssh's defaults).
  Both are handed to asyncssh only when it asks for them (the client's
  ``public_key_auth_requested`` and ``kbdint_auth_requested``, a callable ``password``):
  there, before the first request that carries a key or the password, the attempt takes the
  auth breaker's :class:`~collector.ssh.breaker.LoginGate` (once, after the banner, the key
  exchange and the host-key check), and ``ConnectTimeout`` stops counting.
* **ssh_config**: resolved per device by :mod:`collector.ssh.ssh_config` (``User``, ``Port``,
  ``HostName``, ``IdentityFile``, ``ConnectTimeout``, ``ServerAliveInterval``); a
  ``ProxyJump``/``ProxyCommand`` runs as the same :class:`~collector.ssh.proxy.ProxyProcess`
  (OpenSSH's ``ssh -W`` through every hop) whose socket asyncssh speaks over, so a failing
  bastion is the same ``jump-host`` error with what it said.
* **key exchange**: asyncssh's defaults minus every SHA-1 exchange; ``--legacy-ssh`` adds
  ``diffie-hellman-group14-sha1`` and ``group1-sha1`` last.
* **deadline**: ``asyncio.timeout`` on the whole attempt (connect, login, commands); the
  socket is ours (TCP connect with ``ConnectTimeout``, ``TCP_NODELAY``).
* **fan-out**: :meth:`AsyncsshTransport.iter_indexed` runs ``workers`` sessions at once
  in one event loop (a background thread; results come back in completion order), with
  the runner's retries and backoff; :func:`collector.fleet.run.iter_fleet` uses it in each
  process, so ``--processes`` still splits a large fleet over forked children. A session
  whose device sent no SSH banner within :data:`BANNER_PATIENCE` waits aside
  (:class:`_Seats`): hung devices do not hold back the others.
* **logs**: ``-vv`` logs every chunk sent and received with the secrets masked, under
  ``collector.ssh.transport`` as the netmiko transport does.

Size: over 500 lines because the asyncssh session, its host-key check and its own event-loop
fan-out (retries, the breaker, stuck attempts) are one unit sharing the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import os
import queue
import resource
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncssh
import paramiko

from collector.core import commands
from collector.core.options import DEFAULT_ASYNC_WORKERS
from collector.core.protocols import STRAGGLERS, Progress, Straggler, devices_left
from collector.core.records import Device, DeviceResult, ErrorKind
from collector.core.retry import abandoned, internal_error, retry_delay
from collector.ssh.base import Request, SshTransport
from collector.ssh.breaker import LoginGate
from collector.ssh.credentials import Credentials, SecretMasker
from collector.ssh.errors import (
    AEAD_CIPHERS,
    LEGACY_KEX,
    ConnectionDropped,
    DeadlinePassed,
    SessionError,
    one_line,
    target_answered,
)
from collector.ssh.hostkeys import HostKeyError, KnownHosts, host_entry_name
from collector.ssh.protocol import RunOptions
from collector.ssh.proxy import ProxyProcess, ProxyStartError
from collector.ssh.transport import (
    Attempt,
    Stage,
    _Login,
    begin_attempt,
    device_plan,
    failed_attempt,
    login_for,
    result_from_outputs,
)
from collector.ssh.vrp_dialogue import NUDGE_AFTER, Output, VrpDialogue

__all__ = ["DEFAULT_ASYNC_WORKERS", "AsyncsshTransport"]

log = logging.getLogger("collector.ssh.transport")

_TERM_SIZE = (511, 1000)
_EXTRAS_USED = frozenset({"key_file", "use_keys", "allow_agent", "ssh_config_file"})
"""The inventory's netmiko extras this transport honours (``ssh_config_file`` is resolved
by :mod:`collector.ssh.ssh_config`); the others (paramiko's ``disabled_algorithms``, ...) are
logged at ``-vv`` and ignored."""
_CLOSE_WAIT = 1.0
"""Seconds to wait for a connection to finish closing after ``quit``."""


def kex_algorithms(allow_sha1: bool) -> list[str]:
    """asyncssh's default key exchanges without SHA-1 (and without GSS, never used), plus
    the two SHA-1 exchanges of older VRP releases last with ``allow_sha1``."""
    names = [name.decode("ascii") for name in asyncssh.kex.get_default_kex_algs()]
    chosen = [name for name in names if "sha1" not in name and not name.startswith("gss-")]
    if allow_sha1:
        chosen += list(LEGACY_KEX)
    return chosen


def encryption_algorithms() -> list[str]:
    """asyncssh's default ciphers with the AES-GCM ones first (as the netmiko transport
    orders them, :data:`collector.ssh.errors.AEAD_CIPHERS`): asyncssh's first choice,
    ChaCha20-Poly1305, builds several cipher contexts in Python for every packet (measured
    on the mock fleet: ~1.3 of 3.3 ms client CPU a device); AES-GCM is one call."""
    names = [name.decode("ascii") for name in asyncssh.encryption.get_default_encryption_algs()]
    first = [name for name in AEAD_CIPHERS if name in names]
    return first + [name for name in names if name not in first]


def _paramiko_key(key: asyncssh.SSHKey) -> paramiko.PKey:
    """asyncssh's public key as paramiko's (what :class:`KnownHosts` stores)."""
    return paramiko.PKey.from_type_string(key.get_algorithm(), key.public_data)


def _asyncssh_key(key: paramiko.PKey) -> asyncssh.SSHKey:
    return asyncssh.import_public_key(f"{key.get_name()} {key.get_base64()}")


class _Client(asyncssh.SSHClient):
    """Host key decisions by :class:`KnownHosts` (see the module doc); ``at_login`` awaited
    before the first authentication request that sends something: the keys (given only
    then), keyboard-interactive with the password (the password itself is a callable that
    awaits it too, for the ``password`` method)."""

    def __init__(
        self,
        known_hosts: KnownHosts,
        device: str,
        host: str,
        port: int,
        keys: list[Any] | None = None,
        at_login: Callable[[], Awaitable[None]] | None = None,
        password: bool = False,
    ) -> None:
        self.known_hosts = known_hosts
        self.device = device
        self.host = host
        self.port = port
        self.name = host_entry_name(host, port)
        self.error: HostKeyError | None = None
        self._keys = keys
        self._at_login = at_login
        self._password = password

    async def public_key_auth_requested(self) -> list[Any] | None:
        """The keys, the first time (asyncssh asks again once it tried them all: None)."""
        keys, self._keys = self._keys, None
        if keys and self._at_login is not None:
            await self._at_login()
        return keys

    async def kbdint_auth_requested(self) -> Any:
        """asyncssh's own keyboard-interactive (it answers the password prompt with the
        password), after ``at_login`` when there is a password."""
        if self._password and self._at_login is not None:
            await self._at_login()
        return NotImplemented

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        offered = _paramiko_key(key)
        try:
            if self.known_hosts.lookup(self.name):
                raise self.known_hosts.changed_error(self.device, self.host, self.port, offered)
            self.known_hosts.verify_new(self.device, self.name, offered)
        except HostKeyError as exc:
            self.error = exc
            return False
        return True


class _Shell(asyncssh.SSHClientSession[bytes]):
    """The interactive shell: feeds the dialogue, sends what it answers."""

    def __init__(self, dialogue: VrpDialogue, name: str, masker: SecretMasker) -> None:
        self.dialogue = dialogue
        self.name = name
        self.masker = masker
        self.channel: asyncssh.SSHClientChannel[bytes] | None = None
        self.error: BaseException | None = None
        self.ended = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.channel = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s < %r", self.name, self.masker.mask(data.decode("utf-8", "replace")))
        if self.error is None:
            try:
                self.dialogue.receive(data)
            except Exception as exc:
                self.error = exc
            else:
                self.flush()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def flush(self) -> None:
        data = self.dialogue.outgoing()
        if data and self.channel is not None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s > %r", self.name, self.masker.mask(data.decode("utf-8")))
            self.channel.write(data)

    async def until(self, done: Callable[[], bool], *, nudge: bool = False) -> None:
        """Wait until ``done()``; the dialogue's errors, or the end of the connection."""
        while True:
            if self.error is not None:
                raise self.error
            if done():
                return
            if self.ended:
                self.dialogue.closed()  # raises the right SessionError, or ConnectionDropped
                raise ConnectionDropped
            self._waiter = asyncio.get_running_loop().create_future()
            if nudge and not self.dialogue.nudged:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._waiter), NUDGE_AFTER)
                if not self._waiter.done():
                    self.dialogue.idle()
                    self.flush()
            else:
                await self._waiter

    async def run(self, command: str) -> str:
        self.dialogue.command(command)
        self.flush()
        await self.until(lambda: self.dialogue.ready)
        for event in self.dialogue.events():
            if isinstance(event, Output) and event.command == command:
                return event.text
        raise SessionError(ErrorKind.PROTOCOL, f"no output for '{command}'")  # pragma: no cover


def _negotiation_error(exc: asyncssh.Error | str) -> SessionError:
    # asyncssh lists every algorithm it sent: the message keeps the first words only.
    reason = exc if isinstance(exc, str) else exc.reason
    detail = one_line(reason.split(", sent ")[0], limit=80)
    return SessionError(
        ErrorKind.PROTOCOL,
        f"SSH negotiation failed ({detail}); older VRP releases offer only SHA-1 key"
        " exchange (diffie-hellman-group14-sha1): allow it with --legacy-ssh"
        " (allow_sha1_kex), or enable a SHA-2 key exchange on the device",
    )


_PROBE_LIMIT = 64 * 1024
_PROBE_VERSION = b"SSH-2.0-collect_ike_offline_probe\r\n"


async def server_kex_algorithms(host: str, port: int) -> list[str] | None:
    """The key exchanges an SSH server offers: its version line and first KEXINIT, read
    without sending a KEXINIT of our own (so the server has nothing to refuse), or None if
    it does not say (bounded by :data:`_PROBE_LIMIT` bytes; the caller bounds the time).

    Used when a server closed the connection during the negotiation: some servers reset it
    the moment they find no common key exchange, and the reset can take their KEXINIT with
    it before asyncssh read it; this second look tells what they offered.
    """
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return None
    try:
        writer.write(_PROBE_VERSION)
        data = b""
        while b"\n" not in data or not data.lstrip().startswith(b"SSH-"):
            if b"\n" in data:  # a line before the version line (allowed by RFC 4253)
                data = data.split(b"\n", 1)[1]
                continue
            chunk = await reader.read(4096)
            if not chunk or len(data) > _PROBE_LIMIT:
                return None
            data += chunk
        packet = data.split(b"\n", 1)[1]
        while len(packet) < 4 or len(packet) < 4 + int.from_bytes(packet[:4], "big"):
            if len(packet) > _PROBE_LIMIT:
                return None
            chunk = await reader.read(4096)
            if not chunk:
                return None
            packet += chunk
        # uint32 length, byte padding, byte SSH_MSG_KEXINIT (20), 16-byte cookie, namelist
        if packet[5] != 20 or len(packet) < 26:
            return None
        size = int.from_bytes(packet[22:26], "big")
        names = packet[26 : 26 + size].decode("ascii", "replace")
        return [name for name in names.split(",") if name]
    except (OSError, IndexError, asyncssh.Error):
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _translated(exc: BaseException, client: _Client | None) -> BaseException:
    """An asyncssh error as the exception :func:`collector.ssh.errors.classify_error`
    knows from the netmiko transport (so both report the same kind and message)."""
    if client is not None and client.error is not None:
        return client.error
    if isinstance(exc, asyncssh.PermissionDenied):
        return cast(BaseException, paramiko.AuthenticationException(exc.reason))
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        return _negotiation_error(exc)
    if isinstance(exc, asyncssh.ProtocolError) and "version" in exc.reason.lower():
        return cast(BaseException, paramiko.SSHException("Error reading SSH protocol banner"))
    if isinstance(
        exc,
        asyncssh.ConnectionLost
        | BrokenPipeError
        | ConnectionResetError
        | asyncssh.ChannelOpenError,
    ):
        return ConnectionDropped(str(exc))
    if isinstance(exc, asyncssh.DisconnectError):
        if "no matching" in exc.reason.lower():
            return _negotiation_error(exc)
        return cast(BaseException, paramiko.SSHException(exc.reason))
    return exc


BANNER_PATIENCE = 2.0
"""Seconds a session waits for the device's SSH banner in one of the ``--workers`` seats;
then it waits aside (:class:`_Seats`), and the next device starts. A device sends its
banner as soon as it accepts the TCP connection: one that has not after this long is
hung, or its SSH server is."""


class _Seats:
    """``--workers`` sessions in flight, and up to ``spare`` more that only wait for an SSH
    banner.

    A device takes a seat to start. A session whose device has sent nothing
    :data:`BANNER_PATIENCE` seconds after the TCP connect gives its seat to the next device
    and waits in a spare place, if one is free, and takes a seat again once the banner
    comes. A silent device (TCP accepted, no banner: a hung SSH server) then holds no seat
    for its whole connect timeout, so it does not hold back the devices after it, while the
    sessions that do real work (key exchange, login, commands) stay at ``--workers``. One
    event loop uses it; nothing here is thread-safe.
    """

    def __init__(self, width: int, spare: int) -> None:
        self._seats = asyncio.Semaphore(width)
        self.spare = spare

    async def take(self) -> _Seat:
        await self._seats.acquire()
        return _Seat(self)

    def give(self) -> None:
        self._seats.release()

    async def retake(self) -> None:
        await self._seats.acquire()


class _Seat:
    """One device's place in :class:`_Seats`: seated (counts), aside (a spare), or left."""

    def __init__(self, seats: _Seats) -> None:
        self.seats = seats
        self.state = "seated"

    def step_aside(self) -> bool:
        """Give the seat to the next device and wait in a spare place; False: none free
        (the session keeps its seat), or it is aside already."""
        if self.state != "seated" or self.seats.spare < 1:
            return self.state == "aside"
        self.seats.spare -= 1
        self.seats.give()
        self.state = "aside"
        return True

    async def step_back(self) -> None:
        """Take a seat again (the banner came): wait for one if every seat is taken."""
        if self.state == "aside":
            await self.seats.retake()
            self.seats.spare += 1
            self.state = "seated"

    def leave(self) -> None:
        """The device is done: its seat or its spare place is free again."""
        if self.state == "seated":
            self.seats.give()
        elif self.state == "aside":
            self.seats.spare += 1
        self.state = "left"


_SEAT: contextvars.ContextVar[_Seat | None] = contextvars.ContextVar("seat", default=None)
"""The seat of the device whose session runs in this task (the fan-out sets it; a lone
:meth:`AsyncsshTransport.collect` has none)."""


async def _until_banner(sock: socket.socket) -> None:
    """Return once the device has sent something on ``sock`` (its SSH banner) or closed it;
    after :data:`BANNER_PATIENCE` seconds of silence the session steps aside
    (:meth:`_Seat.step_aside`) until then. asyncssh reads the banner itself afterwards."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        seat = _SEAT.get()
        if seat is not None:
            done, _ = await asyncio.wait({ready}, timeout=BANNER_PATIENCE)
            if not done and seat.step_aside():
                await ready
                await seat.step_back()
        await ready
    finally:
        loop.remove_reader(fd)


class _Session:
    """One device's connection: socket (or jump-host proxy), SSH, shell."""

    def __init__(self, transport: AsyncsshTransport, login: _Login) -> None:
        self.transport = transport
        self.login = login
        self.client: _Client | None = None
        self.proxy: ProxyProcess | None = None
        self.conn: asyncssh.SSHClientConnection | None = None
        self.shell: _Shell | None = None
        self.sock: socket.socket | None = None
        self._handshake: asyncio.Timeout | None = None
        """``ConnectTimeout`` over the banner and the key exchange (as in OpenSSH)."""

    @property
    def phase(self) -> str:
        return self.login.stage.phase

    @phase.setter
    def phase(self, value: str) -> None:
        self.login.stage.phase = value

    async def _socket(self) -> socket.socket:
        target = self.login.target
        if target.proxy is not None:
            self.phase = f"starting {target.proxy.description}"
            credentials = self.login.credentials
            secrets = credentials.secrets()
            try:
                self.proxy = ProxyProcess(target.proxy, secrets=secrets)
            except ProxyStartError as exc:
                raise SessionError(ErrorKind.JUMP_HOST, str(exc)) from None
            self.proxy.sock.setblocking(False)
            return self.proxy.sock
        self.phase = "TCP connect"
        loop = asyncio.get_running_loop()
        timeout = target.connect_timeout
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(
                target.hostname, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            error: OSError | None = None
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, address)
                except OSError as exc:
                    sock.close()
                    error = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
        raise error or OSError(f"cannot resolve {target.hostname!r}")

    async def _client_keys(self) -> list[Any] | None:
        credentials, target = self.login.credentials, self.login.target
        device = self.login.device
        extras = device.netmiko_extras
        for key in extras:
            if key not in _EXTRAS_USED:
                log.debug(
                    "%s: netmiko extra %r not used by the asyncssh transport", device.name, key
                )
        keys: list[Any] = []
        passphrase = credentials.passphrase.reveal() if credentials.passphrase else None
        files = [str(credentials.key_file)] if credentials.key_file is not None else []
        if not files and extras.get("key_file"):  # as netmiko: a key_file extra means use_keys
            files = [str(extras["key_file"])]
        if not files:
            files = [path for path in target.identity_files if os.path.isfile(path)]
        for path in files:
            try:
                keys.append(asyncssh.read_private_key(path, passphrase))
            except (OSError, asyncssh.KeyImportError) as exc:
                raise SessionError(ErrorKind.AUTH, f"cannot use key {path}: {exc}") from None
        use_agent = credentials.use_agent or bool(extras.get("allow_agent"))
        if use_agent and os.environ.get("SSH_AUTH_SOCK"):
            with contextlib.suppress(OSError, asyncssh.Error):
                async with asyncssh.connect_agent() as agent:
                    keys.extend(await agent.get_keys())
        return keys or None

    async def open(self) -> _Shell:
        login, target = self.login, self.login.target
        device = login.device
        self.sock = sock = await self._socket()
        name = host_entry_name(target.hostname, target.port)
        known_hosts = self.transport.known_hosts
        recorded = [_asyncssh_key(key) for key in known_hosts.lookup(name).values()]
        password = login.credentials.password.reveal() if login.credentials.password else None
        client_keys = await self._client_keys()
        if password is None and client_keys is None:
            raise paramiko.SSHException("No authentication methods available")
        self.client = client = _Client(
            known_hosts,
            device.name,
            target.hostname,
            target.port,
            client_keys,
            self.at_login,
            password=password is not None,
        )

        async def gated_password() -> str | None:
            await self.at_login()
            return password

        via = f" via {target.proxy.description}" if target.proxy is not None else ""
        self.phase = f"SSH negotiation and login{via}"
        keepalive = target.server_alive_interval or 0
        try:
            async with asyncio.timeout(target.connect_timeout) as connect_timeout:
                self._handshake = connect_timeout
                await _until_banner(sock)
                self.conn = await asyncssh.connect(
                    target.hostname,
                    target.port,
                    sock=sock,
                    username=login.username,
                    # Given when asked for, through at_login (client_keys: the client's).
                    password=cast(Any, gated_password) if password is not None else None,
                    client_keys=None,
                    agent_path=None,
                    known_hosts=lambda host, addr, port: (recorded, [], []),
                    client_factory=lambda: client,
                    kex_algs=kex_algorithms(self.transport.allow_sha1_kex),
                    encryption_algs=encryption_algorithms(),
                    config=None,
                    gss_host=None,
                    keepalive_interval=keepalive,
                    connect_timeout=None,
                    preferred_auth="publickey,keyboard-interactive,password",
                )
                connect_timeout.reschedule(None)  # at_login did, unless nothing was asked
        except TimeoutError:
            if connect_timeout.expired():
                raise SessionError(
                    ErrorKind.TIMEOUT,
                    f"no SSH banner from {target.hostname}:{target.port} within ConnectTimeout"
                    f" {target.connect_timeout:g} s (ssh_config)",
                ) from None
            raise
        self.phase = "login"
        dialogue = VrpDialogue(device.name, line_end="\n")
        masker = login.credentials.masker()
        self.shell = shell = _Shell(dialogue, device.name, masker)
        await self.conn.create_session(
            lambda: shell,
            term_type="vt100",
            term_size=_TERM_SIZE,
            encoding=None,
        )
        await shell.until(lambda: dialogue.logged_in, nudge=True)
        self.phase = f"'{commands.DISABLE_PAGING}'"
        await shell.run(commands.DISABLE_PAGING)
        return shell

    async def at_login(self) -> None:
        """Right before the first authentication request (the banner, the key exchange and
        the host-key check are done): ``ConnectTimeout`` stops (it covers the banner and the
        negotiation, as in OpenSSH), and the attempt takes the auth breaker's gate."""
        if self._handshake is not None:
            self._handshake.reschedule(None)
        gate = self.login.gate
        if gate is not None:
            await gate.enter_async(self.login.stage)

    async def kex_mismatch(self) -> SessionError | None:
        """After the connection closed during the negotiation: the negotiation error if the
        device offers none of our key exchanges (a second look, :func:`server_kex_algorithms`;
        direct connections only), else None."""
        target = self.login.target
        if target.proxy is not None or not self.phase.startswith("SSH negotiation"):
            return None
        offered = await server_kex_algorithms(target.hostname, target.port)
        ours = kex_algorithms(self.transport.allow_sha1_kex)
        if not offered or set(offered) & set(ours):
            return None
        kex = [name for name in offered if not name.startswith(("ext-info", "kex-strict"))]
        return _negotiation_error(f"no matching key exchange; the device offers {','.join(kex)}")

    async def jump_host_failure(self, exc: BaseException) -> str | None:
        proxy = self.proxy
        if proxy is None or target_answered(exc) or isinstance(exc, SessionError):
            return None
        target = self.login.target
        return await asyncio.to_thread(
            proxy.jump_host_failure,
            self.login.deadline.remaining(),
            target.hostname,
            target.port,
        )

    async def close(self) -> None:
        shell, conn = self.shell, self.conn
        if shell is not None and shell.channel is not None and not shell.ended:
            shell.dialogue.quit()
            with contextlib.suppress(Exception):
                shell.flush()
                shell.channel.close()
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_WAIT):
                    await conn.wait_closed()
        elif self.sock is not None:
            self.sock.close()
        if self.proxy is not None:
            await asyncio.to_thread(self.proxy.close)


_FDS_PER_SESSION = 3
"""Open files one session may hold: its socket, and a jump host's pipes or the agent's
socket."""
_FD_RESERVE = 64
"""Open files kept for everything else (the known_hosts file, logs, the parent's pipe)."""


def _sessions_within_fd_limit(width: int, spare: int = 0) -> tuple[int, int]:
    """How many of ``width`` sessions in flight, and of ``spare`` more waiting for a banner
    (:class:`_Seats`), this process can open: the soft open-files limit is raised towards
    the hard one if the sessions need it (a distribution's 1,024 holds ~300 sessions). When
    the hard limit is too low the spare places go first, then the width is cut to what it
    allows, with a warning, rather than failing devices on "too many open files"."""
    needed = (width + spare) * _FDS_PER_SESSION + _FD_RESERVE
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return width, spare
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return width, spare
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError):
            wanted = soft
        else:
            log.info(
                "open-files limit raised from %d to %d for %d sessions", soft, wanted, width + spare
            )
    allowed = max(1, (wanted - _FD_RESERVE) // _FDS_PER_SESSION)
    if allowed >= width:
        return width, min(spare, allowed - width)
    log.warning(
        "the open-files limit (%d, ulimit -n) allows %d sessions in flight, not %d:"
        " raise it (e.g. LimitNOFILE= in the systemd unit) or lower --workers",
        wanted,
        allowed,
        width,
    )
    return allowed, 0


class AsyncsshTransport(SshTransport):
    """``--transport asyncssh`` (see the module doc); takes
    :class:`~collector.ssh.base.SshTransport`'s arguments (``allow_sha1_kex``: offer the
    SHA-1 key exchanges of older VRP releases, ``--legacy-ssh``)."""

    name = "asyncssh"
    default_workers = DEFAULT_ASYNC_WORKERS

    # -- one device ----------------------------------------------------------------------

    def read(
        self, device: Device, credentials: Credentials, request: Request, stage: Stage
    ) -> DeviceResult:
        """Read one device in an event loop of its own (see :meth:`collect_async`)."""
        return asyncio.run(self.collect_async(device, credentials, request, stage))

    async def collect_async(
        self,
        device: Device,
        credentials: Credentials,
        request: Request,
        stage: Stage | None = None,
    ) -> DeviceResult:
        """Log in, run the device's commands, check the output; never raises for a device
        problem (the netmiko transport's flow, awaited). ``stage`` is updated with what the
        session waits for (the progress line names it)."""
        attempt = begin_attempt(
            device,
            credentials,
            request.peer,
            request.timeout,
            self.connect_timeout,
            stage,
            request.login_gate,
        )
        try:
            login = login_for(attempt)
            device_clock, outputs = await self._session(attempt, login, request.peer, request.clock)
        except Exception as exc:
            return failed_attempt(attempt, exc, self.known_hosts)
        return result_from_outputs(
            device,
            outputs,
            started=attempt.started,
            keep_raw=request.keep_raw,
            device_clock=device_clock,
        )

    async def _session(
        self, attempt: Attempt, login: _Login, peer: str | None, clock: bool
    ) -> tuple[Any, list[Any]]:
        session = _Session(self, login)
        hard = asyncio.timeout(max(0.0, attempt.deadline.remaining()))
        try:
            async with hard:
                try:
                    connect = asyncio.timeout(max(0.0, attempt.connect_deadline.remaining()))
                    try:
                        async with connect:
                            shell = await session.open()
                    except TimeoutError:
                        if connect.expired() and not hard.expired():
                            attempt.connect_deadline.fire()  # --connect-timeout
                            raise DeadlinePassed from None
                        raise
                    plan = device_plan(attempt.device, peer, clock)
                    try:
                        command = next(plan)
                        while True:
                            login.stage.phase = f"'{command}'"
                            command = plan.send(await shell.run(command))
                    except StopIteration as done:
                        result: tuple[Any, list[Any]] = done.value
                        return result
                except (asyncssh.Error, OSError) as exc:
                    translated = _translated(exc, session.client)
                    if isinstance(translated, ConnectionDropped):
                        mismatch = await session.kex_mismatch()
                        if mismatch is not None:
                            raise mismatch from exc
                    failure = await session.jump_host_failure(translated)
                    if failure is not None:
                        raise SessionError(ErrorKind.JUMP_HOST, failure) from exc
                    if translated is exc:
                        raise
                    raise translated from exc
                except SessionError:
                    raise
                except ConnectionDropped as exc:
                    failure = await session.jump_host_failure(exc)
                    if failure is not None:
                        raise SessionError(ErrorKind.JUMP_HOST, failure) from exc
                    raise
                finally:
                    await session.close()
        except TimeoutError:
            if not hard.expired():
                raise  # ConnectTimeout of the TCP connect: "no answer from host:port"
            attempt.deadline.fire()
            raise DeadlinePassed from None

    # -- many devices --------------------------------------------------------------------

    def iter_indexed(
        self,
        devices: Sequence[Device],
        credentials: Credentials,
        options: RunOptions,
        on_progress: Callable[[Any], None] | None,
    ) -> Generator[tuple[int, DeviceResult], None, None]:
        """``(position, result)`` in completion order, ``workers`` sessions at once in one
        event loop (in a background thread), with retries and the run's
        :class:`~collector.ssh.breaker.AuthBreaker`; closing the generator cancels the sessions
        still in flight."""
        workers, timeout, retries = options.workers, options.timeout, options.retries
        backoff = options.backoff
        request = Request(options.peer, timeout, options.clock, options.keep_raw)
        retry_on, grace, breaker = options.retry_on, options.grace, options.breaker
        total = len(devices)
        if total == 0:
            return
        results: queue.SimpleQueue[tuple[int, DeviceResult] | BaseException] = queue.SimpleQueue()
        started = threading.Event()
        state: dict[str, Any] = {}
        in_flight: dict[int, tuple[float, Stage | None]] = {}
        """Position -> (monotonic start of the attempt, its stage; None: waiting to retry)."""

        async def one(index: int) -> DeviceResult:
            device = devices[index]
            attempt = 0
            timed_out_in: set[str] = set()
            while True:
                if breaker is not None and breaker.is_open(device):
                    return breaker.skipped(device)  # as the thread runner: skipped-auth
                attempt += 1
                began_at = datetime.now(UTC)
                stage = Stage()
                in_flight[index] = (time.monotonic(), stage)
                # The session takes the gate before authenticating (not before connecting).
                gate = None if breaker is None else LoginGate(breaker, device)
                gated = dataclasses.replace(request, login_gate=gate)
                try:
                    # The deadline ends the session; this only catches a bug that would
                    # outlive it (the thread runner's "stuck; abandoned").
                    async with asyncio.timeout(timeout + grace):
                        result = await self.collect_async(device, credentials, gated, stage)
                except TimeoutError:
                    result = abandoned(device, timeout, grace, attempt)
                except Exception as exc:  # a bug in one device's path must not end the run
                    result = internal_error(device, exc, began_at)
                if gate is not None:
                    gate.release(result)
                delay = retry_delay(
                    result,
                    attempt,
                    retries=retries,
                    backoff=backoff,
                    retry_on=retry_on,
                    timed_out_in=timed_out_in,
                )
                if delay is None:
                    break
                in_flight[index] = (time.monotonic(), None)
                await asyncio.sleep(delay)
            in_flight.pop(index, None)
            return dataclasses.replace(result, attempts=attempt)

        done: set[int] = set()

        def stragglers() -> tuple[Straggler, ...]:
            """The devices left (as the thread runner's :class:`Progress` names them)."""
            if total - len(done) > STRAGGLERS:
                return ()
            flights = {
                index: (since, "waiting to retry" if stage is None else stage.phase)
                for index, (since, stage) in in_flight.items()
            }
            return devices_left([d.name for d in devices], done, flights, time.monotonic())

        async def fleet() -> None:
            async def run(index: int, seat: _Seat) -> None:
                _SEAT.set(seat)  # this task's: its session may step aside (_until_banner)
                try:
                    result = await one(index)
                finally:
                    seat.leave()
                results.put((index, result))

            state["loop"] = asyncio.get_running_loop()
            state["task"] = asyncio.current_task()
            started.set()
            width = max(1, min(workers, total))
            seats = _Seats(*_sessions_within_fd_limit(width, spare=min(width, total - width)))
            async with asyncio.TaskGroup() as group:  # cancelled: every session with it
                for index in range(total):
                    group.create_task(run(index, await seats.take()))

        def main() -> None:
            try:
                asyncio.run(fleet())
            except asyncio.CancelledError:
                pass
            except BaseExceptionGroup as group:  # the TaskGroup's: a bug in one()
                results.put(group.exceptions[0])
            except BaseException as exc:
                results.put(exc)
            finally:
                started.set()

        thread = threading.Thread(target=main, name="collector-asyncssh", daemon=True)
        began = time.monotonic()
        thread.start()
        emitted = failed = 0
        try:
            while emitted < total:
                try:
                    item = results.get(timeout=1.0)
                except queue.Empty:
                    if thread.is_alive():
                        if on_progress is not None and total - emitted <= STRAGGLERS:
                            # Waiting for stragglers: a fresh look at them, every second.
                            elapsed = time.monotonic() - began
                            on_progress(Progress(total, emitted, failed, elapsed, stragglers()))
                        continue
                    try:
                        item = results.get_nowait()
                    except queue.Empty:
                        raise RuntimeError(
                            f"the asyncssh event loop ended with {total - emitted} devices not read"
                        ) from None
                if isinstance(item, BaseException):
                    raise item
                emitted += 1
                done.add(item[0])
                if not item[1].ok:
                    failed += 1
                yield item
                if on_progress is not None:
                    elapsed = time.monotonic() - began
                    on_progress(Progress(total, emitted, failed, elapsed, stragglers()))
        finally:
            started.wait()
            loop, task = state.get("loop"), state.get("task")
            if loop is not None and task is not None and thread.is_alive():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)
            thread.join(timeout=grace)
