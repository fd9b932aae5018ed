"""The netmiko session class for VRP devices: :class:`ReadOnlyHuaweiSSH`.

:class:`ReadOnlyHuaweiSSH` is netmiko's ``HuaweiSSH`` with these changes (it serves both
``huawei`` and ``huawei_vrpv8``: the VRPv8 class only adds configuration/commit methods):

* **read-only**: every write to the channel goes through :mod:`collector.core.commands`; a
  ``[Y/N]`` question after login (password change, "security risks in the configuration
  file ... save now?") is answered ``N`` (by the dialogue). Stock
  ``HuaweiSSH.special_login_handler`` answers ``Y`` twice to the save question and saves
  the configuration.
* **host keys** are checked against :class:`~collector.ssh.hostkeys.KnownHosts`
  (``_build_ssh_client`` is replaced; netmiko would install ``AutoAddPolicy``).
* **auth breaker**: the SSH client (:class:`_GatedClient`) takes the attempt's
  :class:`~collector.ssh.breaker.LoginGate` right before it authenticates (after the banner,
  the key exchange and the host-key check), so a device that never answers holds no slot.
* **one dialogue**: what is said and understood (prompt, ``[Y/N]`` answers, paging when
  ``screen-length 0 temporary`` is refused, echo and pager remnants removed, short reads)
  is :class:`~collector.ssh.vrp_dialogue.VrpDialogue`'s, the same sans-I/O dialogue the
  asyncssh transport drives; this class only moves its bytes over netmiko's channel.
* **fast**: no fixed sleeps, no prompt lookup per command (the prompt is learnt from the
  login banner once), output is read with blocking ``recv`` until the prompt (no 10 ms
  polling), the session is closed with ``quit`` and a channel close (stock Huawei cleanup
  waits ~2 s for silence), and ``TCP_NODELAY`` is set on the socket paramiko would create
  with Nagle on.
* **bounded**: each command's answer is counted as it arrives
  (:class:`~collector.core.limits.OutputGuard`, in the dialogue: bytes, declared rows, lines);
  past a cap the read stops, the text is dropped and the device fails with
  ``oversized-output``.
* **deadline**: a per-device :class:`~collector.ssh.deadline.Deadline`; a watchdog thread
  shuts the socket and the paramiko transport when it passes (and ends a jump-host
  proxy), so a hung banner or a silent device ends in ``timeout`` at the deadline
  whatever netmiko or paramiko are waiting for.
* **jump hosts**: the ssh_config is resolved by :mod:`collector.ssh.ssh_config`, not by
  netmiko (whose ``ProxyJump`` handling builds commands OpenSSH refuses and hides their
  errors); a proxy runs as a :class:`~collector.ssh.proxy.ProxyProcess`, and when it exits
  before the session is up, its stderr and exit status become a ``jump-host`` error.

It also holds what only the session uses: the paramiko ``Transport`` factories
(:func:`client_transport`, :func:`legacy_transport`) and the filter that demotes
paramiko's per-connection tracebacks to DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

import paramiko
from netmiko.huawei.huawei import HuaweiSSH

from collector.core import commands
from collector.core.commands import check_keystrokes
from collector.core.limits import OutputLimits
from collector.core.records import ErrorKind
from collector.ssh.breaker import LoginGate
from collector.ssh.credentials import SecretMasker
from collector.ssh.deadline import Deadline
from collector.ssh.errors import (
    AEAD_CIPHERS,
    LEGACY_KEX,
    ConnectionDropped,
    DeadlinePassed,
    SessionError,
    banner_timed_out,
    legacy_kex_available,
    target_answered,
)
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import Stage
from collector.ssh.proxy import ProxyProcess, ProxyStartError
from collector.ssh.ssh_config import Proxy
from collector.ssh.vrp_dialogue import NUDGE_AFTER, Output, VrpDialogue, clean_output

__all__ = [
    "ReadOnlyHuaweiSSH",
    "clean_output",
    "client_transport",
    "legacy_transport",
]

# Not __name__: -vv output names the logger (collector.output.logs), and the session's lines
# (every line sent and received) have always been ``collector.ssh.transport``'s.
log = logging.getLogger("collector.ssh.transport")

_LIBRARY_SLACK = 1.0
"""Library timeouts run this much past the deadline, so our watchdog always fires first."""
THREAD_EXIT = 5.0
"""Seconds :meth:`ReadOnlyHuaweiSSH.close` waits for paramiko's transport thread to end."""


class _DemoteParamikoErrors(logging.Filter):
    """paramiko's transport thread logs ERROR (with a traceback) for every dropped or
    aborted connection. Each one is already reported as that device's error kind and
    message, so they are demoted to DEBUG here: shown only when ``collector.ssh.transport``
    logs at DEBUG (-vv)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return log.isEnabledFor(logging.DEBUG)
        return True


_PARAMIKO_FILTER = _DemoteParamikoErrors()
logging.getLogger("paramiko.transport").addFilter(_PARAMIKO_FILTER)


def client_transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    """The paramiko ``Transport`` for a device session (``SSHClient.connect``'s
    ``transport_factory``): AEAD ciphers first."""
    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    ciphers = tuple(options.ciphers)
    first = tuple(name for name in AEAD_CIPHERS if name in ciphers)
    if first:
        options.ciphers = first + tuple(name for name in ciphers if name not in first)
    return transport


def legacy_transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    """:func:`client_transport` that also offers the SHA-1 key exchanges paramiko still has.

    Used with ``allow_sha1_kex`` (``--legacy-ssh``): whether a paramiko < 5 lists them by
    default or only knows them, they end up offered (last, so a device with a SHA-2
    exchange still gets that one).
    """
    transport = client_transport(sock, **kwargs)
    options = transport.get_security_options()
    known: Mapping[str, object] = getattr(transport, "_kex_info", {})
    missing = [name for name in LEGACY_KEX if name in known and name not in options.kex]
    if missing:
        options.kex = (*options.kex, *missing)
    return transport


# --- the netmiko connection -----------------------------------------------------------


class _GatedClient(paramiko.SSHClient):
    """paramiko's client that calls ``before_auth()`` right before it authenticates.

    ``SSHClient.connect`` checks the host key, then calls ``_auth`` (paramiko's private
    method, there from 2.x to 5.x; ``tests/unit/ssh/test_transport_checks.py`` fails if
    it goes): whatever ``before_auth`` raises ends ``connect`` before any credential is
    sent.
    """

    def __init__(self, before_auth: Callable[[], None]) -> None:
        super().__init__()
        self._before_auth = before_auth

    def _auth(self, *args: Any, **kwargs: Any) -> None:
        self._before_auth()
        super()._auth(*args, **kwargs)


class ReadOnlyHuaweiSSH(HuaweiSSH):
    """netmiko's Huawei SSH class, made read-only, deadline-bound and fast (see module doc).

    Build it with ``auto_connect=False`` (the default here), then :meth:`connect`,
    :meth:`run_command` and :meth:`close`. :meth:`abort` may be called from any thread.
    """

    def __init__(
        self,
        *args: Any,
        deadline: Deadline,
        known_hosts: KnownHosts,
        device_name: str,
        masker: SecretMasker | None = None,
        allow_sha1_kex: bool = False,
        stage: Stage | None = None,
        proxy: Proxy | None = None,
        identity_files: tuple[str, ...] = (),
        connect_timeout: float | None = None,
        limits: OutputLimits | None = None,
        connect_deadline: Deadline | None = None,
        login_gate: LoginGate | None = None,
        **kwargs: Any,
    ) -> None:
        self.stage = stage if stage is not None else Stage()
        self.login_gate = login_gate
        self.limits = limits if limits is not None else OutputLimits()
        self.deadline = deadline
        self.connect_deadline = connect_deadline
        self._connecting = False
        self.known_hosts = known_hosts
        self.device_name = device_name
        self.masker = masker or SecretMasker()
        self.allow_sha1_kex = allow_sha1_kex
        self.proxy = proxy
        self.identity_files = identity_files
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._proxy: ProxyProcess | None = None
        self._aborted = threading.Event()
        self._abort_lock = threading.Lock()
        self.dialogue = VrpDialogue(device_name, limits=self.limits)
        self._target = ("", 22)
        kwargs.setdefault("auto_connect", False)
        kwargs.setdefault("fast_cli", True)
        super().__init__(*args, **kwargs)
        self.dialogue.line_end = self.RETURN

    @property
    def phase(self) -> str:
        """What the session is doing now (``TCP connect``, ``login``, a command)."""
        return self.stage.phase

    @phase.setter
    def phase(self, value: str) -> None:
        self.stage.phase = value

    # -- connecting ----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the SSH session, answer the login questions and turn paging off.

        Until the prompt is seen, waits end at the earlier of the deadline and the
        connect deadline (``--connect-timeout``).

        Raises:
            SessionError: ``jump-host`` when the proxy ended before the session was up.
        """
        self._connecting = True
        try:
            self._open()
        except Exception as exc:
            failure = self._jump_host_failure(exc)
            if failure is not None:
                raise SessionError(ErrorKind.JUMP_HOST, failure) from exc
            if self._banner_timed_out(exc):
                host, port = self._target
                raise SessionError(
                    ErrorKind.TIMEOUT,
                    f"no SSH banner from {host}:{port} within ConnectTimeout"
                    f" {self.connect_timeout:g} s (ssh_config)",
                ) from exc
            raise
        finally:
            self._connecting = False

    def _remaining(self) -> float:
        """Seconds left to wait now: the deadline, or the connect deadline while connecting."""
        remaining = self.deadline.remaining()
        if self._connecting and self.connect_deadline is not None:
            remaining = min(remaining, self.connect_deadline.remaining())
        return remaining

    def _banner_timed_out(self, exc: BaseException) -> bool:
        """Whether paramiko gave up on the banner before the deadline: the ssh_config's
        ConnectTimeout did it (OpenSSH: "Connection timed out during banner exchange")."""
        if not self.connect_timeout or self._aborted.is_set() or self.deadline.expired:
            return False
        return banner_timed_out(exc)

    def _jump_host_failure(self, exc: BaseException) -> str | None:
        """The proxy's own account of a failed connect, or None (no proxy, aborted, the
        device itself answered, or the proxy is still fine)."""
        proxy = self._proxy
        if proxy is None or self._aborted.is_set() or target_answered(exc):
            return None
        if isinstance(exc, SessionError):  # already explained (the device's login answers)
            return None
        host, port = self._target
        return proxy.jump_host_failure(self.deadline.remaining(), host, port)

    def _connect_params_dict(self) -> dict[str, Any]:
        params: dict[str, Any] = super()._connect_params_dict()
        slack = max(0.1, self._remaining()) + _LIBRARY_SLACK
        params["timeout"] = slack
        # ssh_config ConnectTimeout bounds the TCP connect and the wait for the banner,
        # as in OpenSSH.
        params["banner_timeout"] = min(slack, self.connect_timeout or slack)
        params["auth_timeout"] = slack
        params["transport_factory"] = client_transport
        if legacy_kex_available():
            if self.allow_sha1_kex:
                params["transport_factory"] = legacy_transport
            else:  # paramiko < 5 offers them by default: not without --legacy-ssh
                disabled = dict(params.get("disabled_algorithms") or {})
                disabled["kex"] = sorted(set(disabled.get("kex", [])) | set(LEGACY_KEX))
                params["disabled_algorithms"] = disabled
        # ssh_config IdentityFile: the ones that exist, as OpenSSH skips missing ones
        # (paramiko would raise FileNotFoundError on the first).
        identities = [path for path in self.identity_files if os.path.isfile(path)]
        if identities and not params.get("key_filename"):
            params["key_filename"] = identities
        self._target = (str(params["hostname"]), int(params["port"]))
        if self.proxy is not None:
            params["sock"] = self._start_proxy(self.proxy)
            self.phase = f"SSH negotiation and login via {self.proxy.description}"
        else:
            params["sock"] = self._open_socket(*self._target)
            self.phase = "SSH negotiation and login"
        return params

    def _start_proxy(self, proxy: Proxy) -> socket.socket:
        """Start the jump-host proxy; its socket is shut by the watchdog like a TCP one."""
        self.phase = f"starting {proxy.description}"
        if self.deadline.remaining() <= 0 or self._aborted.is_set():
            raise DeadlinePassed
        secrets = [secret for secret in (self.password, self.passphrase) if secret]
        try:
            process = ProxyProcess(proxy, secrets=secrets)
        except ProxyStartError as exc:
            raise SessionError(ErrorKind.JUMP_HOST, str(exc)) from None
        with self._abort_lock:
            self._proxy = process
            self._sock = process.sock
            aborted = self._aborted.is_set()
        if aborted:
            process.terminate()
            raise DeadlinePassed
        return process.sock

    def _open_socket(self, host: str, port: int) -> socket.socket:
        """TCP connect ourselves, so Nagle is off and the watchdog can shut the socket."""
        self.phase = "TCP connect"
        remaining = self._remaining()
        if remaining <= 0 or self._aborted.is_set():
            raise DeadlinePassed
        timeout = min(remaining, self.connect_timeout or remaining)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._abort_lock:
            self._sock = sock
            aborted = self._aborted.is_set()
        if aborted:
            self._shutdown_socket()
            raise DeadlinePassed
        return sock

    def _build_ssh_client(self) -> paramiko.SSHClient:
        # Replaces netmiko's: no AutoAddPolicy, no system/alt host key files; the keys on
        # record for this host and our verifying policy instead.
        client = _GatedClient(self._before_auth)
        host, port = self._target
        self.known_hosts.prepare(client, host, port, self.device_name)
        return client

    def _before_auth(self) -> None:
        """Take the auth breaker's gate (waits while the user's logins are gated; the
        deadline's watchdog ends the wait). Raises ``skipped-auth`` when the breaker is
        open."""
        if self.login_gate is not None:
            self.login_gate.enter(self.stage, self._aborted)

    def special_login_handler(self, delay_factor: float = 1.0) -> None:
        """Read the login banner up to the prompt (the dialogue answers ``N`` to any
        [Y/N] question); press Enter once if the device stays silent."""
        self.phase = "login"
        self._pump(lambda: self.dialogue.logged_in, nudge=True)
        self.base_prompt = self.dialogue.prompt_name

    def set_base_prompt(self, *args: Any, **kwargs: Any) -> str:
        # Learnt from the login banner: no find_prompt() round trip.
        if self.base_prompt:
            return str(self.base_prompt)
        return str(super().set_base_prompt(*args, **kwargs))

    def _try_session_preparation(self, force_data: bool = True) -> None:
        # netmiko writes an Enter and sleeps 0.1 s first; the banner already gave us data.
        try:
            self.session_preparation()
        except BaseException:
            self.close()
            raise

    def session_preparation(self) -> None:
        """Turn paging off for this session; the dialogue remembers if the device refused."""
        self.ansi_escape_codes = False  # the dialogue strips pager codes itself
        self.run_command(commands.DISABLE_PAGING)

    @property
    def paging(self) -> bool:
        """Whether the device refused ``screen-length 0 temporary`` (pages are turned)."""
        return self.dialogue.paging

    # -- reading and writing -------------------------------------------------------------

    def write_channel(self, out_data: str) -> None:
        """Write to the device: only allowed lines, the pager key, or Enter."""
        check_keystrokes(out_data, self.RETURN)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s > %r", self.device_name, self.masker.mask(out_data))
        super().write_channel(out_data)

    def _recv(self, idle: float | None = None) -> bytes:
        """One chunk from the channel; blocks until data, EOF or the deadline.

        With ``idle``, returns b"" if nothing arrives for that many seconds.
        """
        channel = self.remote_conn
        if not isinstance(channel, paramiko.Channel):
            raise ConnectionDropped
        waited = 0.0
        while True:
            remaining = self._remaining()
            if remaining <= 0 or self._aborted.is_set():
                raise DeadlinePassed
            wait = min(remaining, 5.0)
            if idle is not None:
                wait = min(wait, max(0.01, idle - waited))
            channel.settimeout(wait)
            try:
                data = channel.recv(65536)
            except TimeoutError:
                waited += wait
                if idle is not None and waited >= idle:
                    return b""
                continue
            except (OSError, EOFError) as exc:
                raise ConnectionDropped from exc
            if not data:
                raise ConnectionDropped
            if log.isEnabledFor(logging.DEBUG):
                text = data.decode("utf-8", "replace")
                log.debug("%s < %r", self.device_name, self.masker.mask(text))
            return bytes(data)

    def _pump(self, done: Callable[[], bool], *, nudge: bool = False) -> None:
        """Feed the dialogue what the device sends, send what it answers, until ``done``."""
        dialogue = self.dialogue
        while not done():
            idle = NUDGE_AFTER if nudge and not dialogue.nudged else None
            try:
                data = self._recv(idle=idle)
            except ConnectionDropped:
                dialogue.closed()  # raises the right SessionError, or ConnectionDropped
                raise
            if data:
                dialogue.receive(data)
            else:
                dialogue.idle()
            self._flush()

    def _flush(self) -> None:
        data = self.dialogue.outgoing()
        if data:
            self.write_channel(data.decode("utf-8"))

    def run_command(self, command: str) -> str:
        """Send one allowed command and return its output (echo, prompt and pager removed).

        Raises:
            CommandNotAllowed: ``command`` is not on the allowed list.
            SessionError: the device closed the session while answering
                (``incomplete-output``) or before (``protocol``).
        """
        dialogue = self.dialogue
        dialogue.command(command)
        self.phase = f"'{command}'"
        self._flush()
        self._pump(lambda: dialogue.ready)
        for event in dialogue.events():
            if isinstance(event, Output) and event.command == command:
                return event.text
        raise SessionError(ErrorKind.PROTOCOL, f"no output for '{command}'")  # pragma: no cover

    def send_command(self, command_string: str, *args: Any, **kwargs: Any) -> str:
        """netmiko's API (NAPALM's ``cli()`` calls it): allowed commands only, our reader."""
        return self.run_command(command_string.strip())

    # -- closing -------------------------------------------------------------------------

    def cleanup(self, command: str = commands.QUIT) -> None:
        # Stock Huawei cleanup checks for config mode (a round trip with waits) before
        # 'quit'; we are never in config mode, so just say quit without waiting for it.
        if isinstance(self.remote_conn, paramiko.Channel) and not self._aborted.is_set():
            self.dialogue.quit()
            self._flush()

    def paramiko_cleanup(self) -> None:
        """netmiko's close of channel and client (``disconnect()`` calls it, NAPALM's close
        too); returns once paramiko's transport thread has ended (at most
        :data:`THREAD_EXIT` s): one still inside OpenSSL when a later run forks its
        ``--processes`` children would leave them a lock held forever."""
        client = self.remote_conn_pre
        thread = client.get_transport() if isinstance(client, paramiko.SSHClient) else None
        super().paramiko_cleanup()
        if thread is not None and thread is not threading.current_thread():
            thread.join(THREAD_EXIT)

    def close(self) -> None:
        """Leave the device now: ``quit``, close channel and transport, release netmiko state."""
        try:
            self.disconnect()
        finally:
            self._shutdown_socket()
            if self._proxy is not None:
                self._proxy.close()

    def abort(self) -> None:
        """Tear the connection down from another thread (the deadline passed)."""
        with self._abort_lock:
            self._aborted.set()
        # Shut down, not close: paramiko's thread may be inside recv() on this socket;
        # shutdown wakes it with EOF, close() would pull the descriptor from under it.
        self._shutdown_socket(close=False)
        client = getattr(self, "remote_conn_pre", None)
        transport = client.get_transport() if isinstance(client, paramiko.SSHClient) else None
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()
        if self._proxy is not None:
            with contextlib.suppress(Exception):
                self._proxy.terminate()

    def _shutdown_socket(self, close: bool = True) -> None:
        with self._abort_lock:
            sock = self._sock
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        if close:
            with contextlib.suppress(OSError):
                sock.close()
