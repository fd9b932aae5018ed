"""SSH sessions to VRP devices: a read-only, fast netmiko login, and the NAPALM variant.

One call, :meth:`Transport.collect`, logs in to one device, runs ``display ike
offline-info`` (optionally ``display clock`` first), checks what came back with
:func:`collector.parse.parse` and returns a :class:`~collector.records.DeviceResult`. Every
failure becomes an :class:`~collector.records.ErrorKind` and one line of text; nothing is
raised for a device problem.

:class:`ReadOnlyHuaweiSSH` is netmiko's ``HuaweiSSH`` with these changes (it serves both
``huawei`` and ``huawei_vrpv8``: the VRPv8 class only adds configuration/commit methods):

* **read-only**: every write to the channel goes through :mod:`collector.commands`; a
  ``[Y/N]`` question after login (password change, "security risks in the configuration
  file ... save now?") is answered ``N``. Stock ``HuaweiSSH.special_login_handler`` answers
  ``Y`` twice to the save question and saves the configuration.
* **host keys** are checked against :class:`~collector.hostkeys.KnownHosts`
  (``_build_ssh_client`` is replaced; netmiko would install ``AutoAddPolicy``).
* **paging**: if ``screen-length 0 temporary`` is refused, ``---- More ----`` pages are
  turned with a space and the pager remnants removed (stock netmiko times out there).
* **fast**: no fixed sleeps, no prompt lookup per command (the prompt is learnt from the
  login banner once), output is read with blocking ``recv`` until the prompt (no 10 ms
  polling), the session is closed with ``quit`` and a channel close (stock Huawei cleanup
  waits ~2 s for silence), and ``TCP_NODELAY`` is set on the socket paramiko would create
  with Nagle on.
* **deadline**: a per-device :class:`Deadline`; a watchdog thread shuts the socket and the
  paramiko transport when it passes, so a hung banner or a silent device ends in
  ``timeout`` at the deadline whatever netmiko or paramiko are waiting for.

:class:`NapalmTransport` runs the same command through napalm-huawei-vrp's ``VRPDriver``
(``open()``, ``cli([...])``, ``close()``). That driver logs in with netmiko's ``huawei``
class through ``NetworkDriver._netmiko_open``; our subclass of the driver overrides
``_netmiko_open`` to build :class:`ReadOnlyHuaweiSSH` instead, so the same read-only
login, host key checks and deadline apply, and ``cli()`` ends up in our
``send_command`` (allowed commands only).

Output checks: a refused command (``Error: ...``) is ``command-rejected`` with the
device's line; output that is not this command's at all (garbage, another prompt) is
``protocol``; a table whose ``Current info Num`` does not match its rows, or a session
closed by the device while the table was printing, is ``incomplete-output``.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import heapq
import itertools
import logging
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import paramiko
from netmiko.exceptions import NetmikoAuthenticationException
from netmiko.huawei.huawei import HuaweiSSH

from collector import commands
from collector.clock import ClockParseError, parse_display_clock
from collector.commands import CommandNotAllowed, check_command, check_keystrokes
from collector.credentials import Credentials, CredentialsError, SecretMasker
from collector.hostkeys import HostKeyError, KnownHosts
from collector.parse import CommandRejected, ParseError, ParseResult, ProblemKind, parse
from collector.records import Device, DeviceResult, DeviceStatus, ErrorKind

__all__ = [
    "SUPPORTED_PLATFORMS",
    "TRANSPORTS",
    "Deadline",
    "NapalmTransport",
    "NetmikoTransport",
    "ReadOnlyHuaweiSSH",
    "SessionError",
    "Stage",
    "Transport",
    "TransportUnavailable",
    "classify_error",
    "client_transport",
    "legacy_kex_available",
    "legacy_transport",
    "make_transport",
    "result_from_output",
]

log = logging.getLogger("collector.transport")

SUPPORTED_PLATFORMS = frozenset({"huawei", "huawei_vrpv8"})
LEGACY_KEX = ("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1")
"""SHA-1 key exchanges older VRP releases offer alone; paramiko 5 removed them."""
_LIBRARY_SLACK = 1.0
"""Library timeouts run this much past the deadline, so our watchdog always fires first."""
_NUDGE_AFTER = 2.0
"""Seconds of silence after the shell opens before pressing Enter once."""
_MAX_LOGIN_TEXT = 256 * 1024
_MESSAGE_LIMIT = 300

# netmiko extras from a Nornir inventory that may pass through. Host-key settings
# (ssh_strict, system_host_keys, alt_host_keys), session logs (they write the whole
# conversation to a file) and secrets in the inventory are not among them.
PASSTHROUGH_EXTRAS = frozenset(
    {
        "use_keys",
        "key_file",
        "allow_agent",
        "ssh_config_file",
        "disabled_algorithms",
        "disable_sha2_fix",
        "encoding",
    }
)


class _DemoteParamikoErrors(logging.Filter):
    """paramiko's transport thread logs ERROR (with a traceback) for every dropped or
    aborted connection. Each one is already reported as that device's error kind and
    message, so they are demoted to DEBUG here: shown only when ``collector.transport``
    logs at DEBUG (-vv)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return log.isEnabledFor(logging.DEBUG)
        return True


_PARAMIKO_FILTER = _DemoteParamikoErrors()
logging.getLogger("paramiko.transport").addFilter(_PARAMIKO_FILTER)


def legacy_kex_available() -> bool:
    """Whether the installed paramiko still has the SHA-1 key exchanges (paramiko < 5)."""
    kex_info: Mapping[str, object] = getattr(paramiko.Transport, "_kex_info", {})
    return any(name in kex_info for name in LEGACY_KEX)


AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""Preferred first: with an AEAD cipher paramiko skips its pure-Python MAC comparison
(``util.constant_time_bytes_eq``, a loop per received packet); measured on the mock
fleet, about 0.4 of 9 ms client CPU per device. Devices without GCM still negotiate the
CTR ciphers paramiko offers next."""


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


# --- deadlines ------------------------------------------------------------------------


class Deadline:
    """A point in time (monotonic) by which one device must be done."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._fired = threading.Event()

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        """True once the deadline passed (or the watchdog fired)."""
        return self._fired.is_set() or self.remaining() <= 0

    def fire(self) -> None:
        """Mark the deadline as passed (the watchdog calls this before aborting)."""
        self._fired.set()


class _Watchdog:
    """One daemon thread that runs callbacks at deadlines (cheaper than a Timer each)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._pending: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` at monotonic time ``when`` unless cancelled first."""
        with self._cond:
            ident = next(self._ids)
            heapq.heappush(self._heap, (when, ident, callback))
            self._pending.add(ident)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="collector-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return ident

    def cancel(self, ident: int) -> None:
        with self._cond:
            self._pending.discard(ident)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][1] not in self._pending:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        _, ident, callback = heapq.heappop(self._heap)
                        self._pending.discard(ident)
                        break
                    self._cond.wait(delay)
            try:
                callback()
            except Exception:  # one broken abort must not stop the other deadlines
                log.exception("watchdog callback failed")


WATCHDOG = _Watchdog()


@contextlib.contextmanager
def watched(deadline: Deadline, abort: Callable[[], None]) -> Iterator[None]:
    """Call ``abort`` (after marking ``deadline`` fired) if the block outlives the deadline."""

    def fire() -> None:
        deadline.fire()
        abort()

    ident = WATCHDOG.schedule(deadline.end, fire)
    try:
        yield
    finally:
        WATCHDOG.cancel(ident)


# --- errors ---------------------------------------------------------------------------


class SessionError(Exception):
    """A device problem found by the session code, already classified."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _ConnectionDropped(Exception):
    """The channel reached EOF (the device or the network closed the session)."""


class _DeadlinePassed(Exception):
    """The device's deadline passed while waiting for it."""


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Device text (an ``Error:`` line, garbage) must not drive the operator's terminal."""


def _one_line(text: str, masker: SecretMasker | None = None, limit: int = _MESSAGE_LIMIT) -> str:
    line = _CONTROL_CHARACTERS.sub("?", " ".join(str(text).split()))
    if masker is not None:
        line = masker.mask(line)
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes/contexts (netmiko rewraps paramiko's errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _negotiation_message(detail: str) -> str:
    if legacy_kex_available():
        advice = (
            "the installed paramiko still has SHA-1 key exchange: allow it with"
            " --legacy-ssh (allow_sha1_kex), or enable a SHA-2 key exchange on the device"
        )
    else:
        advice = (
            "older VRP releases offer only SHA-1 key exchange (diffie-hellman-group14-sha1),"
            " which paramiko 5 removed: enable a SHA-2 key exchange on the device"
            " (ssh server key-exchange ...), or install paramiko<5"
            " (pip install 'netmiko[par4]') and run with --legacy-ssh"
        )
    return f"SSH negotiation failed ({detail}); {advice}"


def classify_error(
    exc: BaseException,
    *,
    deadline: Deadline | None = None,
    phase: str = "",
    username: str | None = None,
    host: str = "",
    port: int = 22,
    known_hosts: KnownHosts | None = None,
    device_name: str = "",
    masker: SecretMasker | None = None,
) -> tuple[ErrorKind, str]:
    """Map an exception from a session to an error kind and a one-line message.

    The whole cause chain is inspected: netmiko turns paramiko's errors into
    ``NetmikoTimeoutException`` whatever they were.
    """
    chain = list(_chain(exc))
    where = f"{host}:{port}"
    for item in chain:
        # Host key messages are ours (no device text) and end with the remedy
        # (ssh-keygen -R ...): a long known_hosts path must not cut it off.
        if isinstance(item, HostKeyError):
            return ErrorKind.HOST_KEY, _one_line(str(item), masker, limit=1000)
        if isinstance(item, paramiko.BadHostKeyException):
            if known_hosts is not None:
                error = known_hosts.changed_error(device_name, host, port, item.key)
                return ErrorKind.HOST_KEY, _one_line(str(error), masker, limit=1000)
            return ErrorKind.HOST_KEY, _one_line(f"host key of {where} changed", masker)
    for item in chain:
        if isinstance(item, paramiko.BadAuthenticationType):
            allowed = ", ".join(item.allowed_types) or "none"
            return ErrorKind.AUTH, (
                f"authentication failed for user {username!r}: the device accepts only {allowed}"
            )
        if isinstance(item, paramiko.AuthenticationException | NetmikoAuthenticationException):
            return ErrorKind.AUTH, (
                f"authentication failed for user {username!r} (password or key refused)"
            )
        if isinstance(item, CredentialsError):
            return ErrorKind.AUTH, _one_line(str(item), masker)
        if isinstance(item, paramiko.SSHException) and "No authentication methods" in str(item):
            return ErrorKind.AUTH, "no password, key or agent to log in with"
    stage = f" (during {phase})" if phase else ""
    if deadline is not None and deadline.expired:
        return ErrorKind.TIMEOUT, f"no complete answer within {deadline.seconds:g} s{stage}"
    for item in chain:
        if isinstance(item, SessionError):
            return item.kind, _one_line(item.message, masker)
        if isinstance(item, _DeadlinePassed):
            seconds = deadline.seconds if deadline is not None else 0
            return ErrorKind.TIMEOUT, f"no complete answer within {seconds:g} s{stage}"
        if isinstance(item, socket.gaierror):
            return ErrorKind.UNREACHABLE, _one_line(
                f"cannot resolve {host!r}: {item.strerror or item}", masker
            )
        if isinstance(item, paramiko.ssh_exception.NoValidConnectionsError):
            return ErrorKind.UNREACHABLE, f"connection refused by {where}"
        if isinstance(item, ConnectionRefusedError):
            return ErrorKind.UNREACHABLE, f"connection refused by {where}"
        if isinstance(item, TimeoutError):
            return ErrorKind.TIMEOUT, f"no answer from {where}{stage}"
        if isinstance(item, OSError) and item.errno in (
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
            errno.EHOSTDOWN,
            errno.ENETDOWN,
        ):
            return ErrorKind.UNREACHABLE, _one_line(
                f"{where}: {item.strerror or 'unreachable'}", masker
            )
        if isinstance(item, CommandNotAllowed):
            return ErrorKind.PROTOCOL, _one_line(f"internal safety check: {item}", masker)
        if isinstance(item, paramiko.IncompatiblePeer) or (
            isinstance(item, paramiko.SSHException)
            and re.search(r"Incompatible|no acceptable|no matching", str(item), re.IGNORECASE)
        ):
            # The advice comes last and is the point: cut the library's detail, not it.
            detail = _one_line(str(item), masker, limit=160)
            return ErrorKind.PROTOCOL, _one_line(_negotiation_message(detail), limit=1000)
        if isinstance(item, paramiko.SSHException) and "banner" in str(item).lower():
            return ErrorKind.PROTOCOL, f"no SSH banner from {where} (is it an SSH server?)"
        if isinstance(item, _ConnectionDropped | EOFError | ConnectionResetError):
            return ErrorKind.PROTOCOL, f"connection closed by {where}{stage}"
    for item in chain:
        if isinstance(item, paramiko.SSHException):
            return ErrorKind.PROTOCOL, _one_line(f"SSH error with {where}: {item}", masker)
    return ErrorKind.PROTOCOL, _one_line(
        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
        masker,
    )


# --- output checks --------------------------------------------------------------------

_PAGER = re.compile(r"[ \t]*-{2,}[ \t]*More[ \t]*-{2,}(?:[ \t]*\x1b\[[0-9]*D[ ]*\x1b\[[0-9]*D)?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ERROR_LINE = re.compile(r"^\s*Error(?:\[[0-9]+\])?\s*:", re.MULTILINE)


def clean_output(text: str) -> str:
    """Remove pager prompts, their erase sequences and other ANSI codes; LF line ends.

    Examples:
        >>> clean_output("a\\r\\n  ---- More ----\\x1b[16D                \\x1b[16Db\\r\\n")
        'a\\nb\\n'
    """
    # The substitutions cost more than the whole parse on a 200-row table: skip them
    # unless there is something to remove.
    if "More" in text:
        text = _PAGER.sub("", text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "")


def _truncation_reason(result: ParseResult) -> str:
    for problem in result.problems:
        if problem.kind.truncation:
            return problem.message
    for problem in result.problems:
        if problem.kind is ProblemKind.UNPARSED_ROW:
            line = f" (line {problem.line})" if problem.line else ""
            return f"{problem.message}{line}"
    return f"'Current info Num' says {result.declared_count} but {len(result.records)} rows parsed"


def result_from_output(
    device: Device,
    command: str,
    text: str,
    *,
    started: datetime,
    keep_raw: bool = False,
    device_clock: datetime | None = None,
) -> DeviceResult:
    """Check one device's command output and turn it into a result.

    ``CommandRejected`` -> ``command-rejected`` with the device's line; other parse errors
    (not this command's output) -> ``protocol``; an incomplete table -> ``incomplete-output``
    with the reason. Lines the parser did not recognise in an otherwise complete table are
    logged as warnings.
    """
    raw = text if keep_raw else None
    finished = datetime.now(UTC)
    common: dict[str, Any] = {
        "started": started,
        "finished": finished,
        "raw": raw,
        "device_clock": device_clock,
    }
    try:
        result = parse(text)
    except CommandRejected as exc:
        return DeviceResult.failure(
            device,
            ErrorKind.COMMAND_REJECTED,
            _one_line(f"'{command}' refused: {exc.message}"),
            **common,
        )
    except ParseError as exc:
        return DeviceResult.failure(
            device,
            ErrorKind.PROTOCOL,
            _one_line(f"unexpected answer to '{command}': {exc.message}"),
            **common,
        )
    if not result.complete:
        return DeviceResult.failure(
            device,
            ErrorKind.INCOMPLETE_OUTPUT,
            _one_line(f"'{command}': {_truncation_reason(result)}"),
            **common,
        )
    for problem in result.problems:
        log.warning("%s: %s: %s", device.name, problem.message, _one_line(problem.text or ""))
    return DeviceResult(device, DeviceStatus.OK, records=result.records, **common)


# --- the netmiko connection -----------------------------------------------------------

_QUESTION = re.compile(r"\[\s*Y\s*/\s*N\s*\]\s*:?\s*$|\(\s*y\s*/\s*n\s*\)\s*:?\s*$", re.I)
_LOGIN_PROMPT = re.compile(
    r"(?:^|[\r\n])[ \t]*(?P<prompt>(?:HRP_[MS])?"
    r"(?:<(?P<angle>[^<>\r\n]{1,80})>|\[~?\*?(?P<square>[^\[\]\r\n]{1,80})\]))[ \t]*$"
)
_PROMPT_AT_END = re.compile(
    r"(?:^|[\r\n])[ \t]*(?:HRP_[MS])?[<\[]~?\*?(?P<name>[^<>\[\]\r\n]{1,80})[>\]][ \t]*$"
)
_MORE_AT_END = re.compile(r"-{2,}[ \t]*More[ \t]*-{2,}[ \t]*$")


@dataclass(slots=True)
class Stage:
    """Where a session is (for timeout messages); shared by the connection and the caller."""

    phase: str = "setup"


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
        **kwargs: Any,
    ) -> None:
        self.stage = stage if stage is not None else Stage()
        self.deadline = deadline
        self.known_hosts = known_hosts
        self.device_name = device_name
        self.masker = masker or SecretMasker()
        self.allow_sha1_kex = allow_sha1_kex
        self.paging = True
        self._sock: socket.socket | None = None
        self._proxy: Any = None
        self._aborted = threading.Event()
        self._abort_lock = threading.Lock()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._target = ("", 22)
        kwargs.setdefault("auto_connect", False)
        kwargs.setdefault("fast_cli", True)
        super().__init__(*args, **kwargs)

    @property
    def phase(self) -> str:
        """What the session is doing now (``TCP connect``, ``login``, a command)."""
        return self.stage.phase

    @phase.setter
    def phase(self, value: str) -> None:
        self.stage.phase = value

    # -- connecting ----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the SSH session, answer the login questions and turn paging off."""
        self._open()

    def _connect_params_dict(self) -> dict[str, Any]:
        params: dict[str, Any] = super()._connect_params_dict()
        slack = max(0.1, self.deadline.remaining()) + _LIBRARY_SLACK
        params["timeout"] = slack
        params["banner_timeout"] = slack
        params["auth_timeout"] = slack
        params["transport_factory"] = client_transport
        if legacy_kex_available():
            if self.allow_sha1_kex:
                params["transport_factory"] = legacy_transport
            else:  # paramiko < 5 offers them by default: not without --legacy-ssh
                disabled = dict(params.get("disabled_algorithms") or {})
                disabled["kex"] = sorted(set(disabled.get("kex", [])) | set(LEGACY_KEX))
                params["disabled_algorithms"] = disabled
        self._target = (str(params["hostname"]), int(params["port"]))
        if params.get("sock") is None:
            params["sock"] = self._open_socket(*self._target)
        else:
            self._proxy = params["sock"]  # ssh_config ProxyCommand: closed on abort
        self.phase = "SSH negotiation and login"
        return params

    def _open_socket(self, host: str, port: int) -> socket.socket:
        """TCP connect ourselves, so Nagle is off and the watchdog can shut the socket."""
        self.phase = "TCP connect"
        remaining = self.deadline.remaining()
        if remaining <= 0 or self._aborted.is_set():
            raise _DeadlinePassed
        sock = socket.create_connection((host, port), timeout=remaining)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._abort_lock:
            self._sock = sock
            aborted = self._aborted.is_set()
        if aborted:
            self._shutdown_socket()
            raise _DeadlinePassed
        return sock

    def _build_ssh_client(self) -> paramiko.SSHClient:
        # Replaces netmiko's: no AutoAddPolicy, no system/alt host key files; the keys on
        # record for this host and our verifying policy instead.
        client = paramiko.SSHClient()
        host, port = self._target
        self.known_hosts.prepare(client, host, port, self.device_name)
        return client

    def special_login_handler(self, delay_factor: float = 1.0) -> None:
        """Read the login banner up to the prompt, answering ``N`` to any [Y/N] question."""
        self.phase = "login"
        text = ""
        nudged = False
        declined: list[str] = []
        while True:
            try:
                chunk = self._recv(idle=None if nudged else _NUDGE_AFTER)
            except _ConnectionDropped:
                if any("password" in question.lower() for question in declined):
                    # Some releases end the session when an expired password is not changed.
                    raise SessionError(
                        ErrorKind.AUTH,
                        "the device closed the session after the collector declined its"
                        f" password change question ({declined[-1]!r}): change the password"
                        " interactively; the collector never changes anything",
                    ) from None
                raise
            if not chunk:
                nudged = True  # some devices print the prompt only after a key press
                self.write_channel(self.RETURN)
                continue
            text += chunk
            tail = text[-512:].rstrip("\r\n")
            if _QUESTION.search(tail):
                lines = [line.strip() for line in tail.splitlines() if line.strip()]
                question = " ".join(lines[-2:])
                declined.append(question)
                log.info("%s: answering N to %r", self.device_name, question)
                self.write_channel(commands.ANSWER_NO + self.RETURN)
                text = ""
                continue
            match = _LOGIN_PROMPT.search(text[-512:])
            if match is not None:
                self._learn_prompt(match)
                return
            if len(text) > _MAX_LOGIN_TEXT:
                raise SessionError(ErrorKind.PROTOCOL, "no VRP prompt after login")

    def _learn_prompt(self, match: re.Match[str]) -> None:
        self.base_prompt = (match.group("angle") or match.group("square") or "").strip()
        log.debug("%s: prompt %r", self.device_name, match.group("prompt"))

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
        """Turn paging off for this session; remember if the device refused."""
        self.ansi_escape_codes = False  # we strip pager codes ourselves
        output = self.run_command(commands.DISABLE_PAGING)
        self.paging = bool(_ERROR_LINE.search(output))
        if self.paging:
            log.info(
                "%s: '%s' refused; turning pages with space",
                self.device_name,
                commands.DISABLE_PAGING,
            )

    # -- reading and writing -------------------------------------------------------------

    def write_channel(self, out_data: str) -> None:
        """Write to the device: only allowed lines, the pager key, or Enter."""
        check_keystrokes(out_data, self.RETURN)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s > %r", self.device_name, self.masker.mask(out_data))
        super().write_channel(out_data)

    def _recv(self, idle: float | None = None) -> str:
        """One chunk from the channel; blocks until data, EOF or the deadline.

        With ``idle``, returns "" if nothing arrives for that many seconds.
        """
        channel = self.remote_conn
        if not isinstance(channel, paramiko.Channel):
            raise _ConnectionDropped
        waited = 0.0
        while True:
            remaining = self.deadline.remaining()
            if remaining <= 0 or self._aborted.is_set():
                raise _DeadlinePassed
            wait = min(remaining, 5.0)
            if idle is not None:
                wait = min(wait, max(0.01, idle - waited))
            channel.settimeout(wait)
            try:
                data = channel.recv(65536)
            except TimeoutError:
                waited += wait
                if idle is not None and waited >= idle:
                    return ""
                continue
            except (OSError, EOFError) as exc:
                raise _ConnectionDropped from exc
            if not data:
                raise _ConnectionDropped
            text = self._decoder.decode(data)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s < %r", self.device_name, self.masker.mask(text))
            return text

    def run_command(self, command: str) -> str:
        """Send one allowed command and return its output (echo, prompt and pager removed).

        Raises:
            CommandNotAllowed: ``command`` is not on the allowed list.
            SessionError: the device closed the session while answering
                (``incomplete-output``) or before (``protocol``).
        """
        check_command(command)
        if not self.base_prompt:
            raise SessionError(ErrorKind.PROTOCOL, "no prompt seen before the first command")
        self.phase = f"'{command}'"
        self.write_channel(command + self.RETURN)
        text = ""
        answered_at = -1
        try:
            while True:
                text += self._recv()
                tail = text[-512:]
                if self._at_prompt(tail):
                    break
                if _MORE_AT_END.search(tail) and len(text) != answered_at:
                    self.write_channel(commands.PAGER_KEY)
                    answered_at = len(text)
        except _ConnectionDropped:
            lines = clean_output(text).count("\n")
            kind = ErrorKind.INCOMPLETE_OUTPUT if lines > 1 else ErrorKind.PROTOCOL
            raise SessionError(
                kind,
                f"connection closed by the device during '{command}'"
                f" after {lines} line(s) of output",
            ) from None
        return self._strip_echo_and_prompt(clean_output(text), command)

    def _at_prompt(self, text: str) -> bool:
        """Whether ``text`` ends with this device's prompt.

        Any HRP_M/HRP_S prefix is accepted (it may flip during an HA switchover).
        """
        match = _PROMPT_AT_END.search(text)
        return match is not None and match.group("name").strip() == self.base_prompt

    def _strip_echo_and_prompt(self, text: str, command: str) -> str:
        lines = text.split("\n")
        if lines and command in lines[0]:
            lines = lines[1:]
        if lines and self._at_prompt(lines[-1]):
            lines = lines[:-1]
        return "\n".join(lines)

    def send_command(self, command_string: str, *args: Any, **kwargs: Any) -> str:
        """netmiko's API (NAPALM's ``cli()`` calls it): allowed commands only, our reader."""
        return self.run_command(command_string.strip())

    # -- closing -------------------------------------------------------------------------

    def cleanup(self, command: str = commands.QUIT) -> None:
        # Stock Huawei cleanup checks for config mode (a round trip with waits) before
        # 'quit'; we are never in config mode, so just say quit without waiting for it.
        if isinstance(self.remote_conn, paramiko.Channel) and not self._aborted.is_set():
            self.write_channel(commands.QUIT + self.RETURN)

    def close(self) -> None:
        """Leave the device now: ``quit``, close channel and transport, release netmiko state."""
        try:
            self.disconnect()
        finally:
            self._shutdown_socket()

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
                self._proxy.close()

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


# --- transports -----------------------------------------------------------------------


class Transport(Protocol):
    """How the runner reads one device."""

    name: str

    def collect(
        self,
        device: Device,
        credentials: Credentials,
        *,
        peer: str | None = None,
        timeout: float = 30.0,
        clock: bool = False,
        keep_raw: bool = False,
    ) -> DeviceResult:
        """Log in, run the command, check the output; never raises for a device problem."""
        ...


@dataclass(frozen=True, slots=True)
class _Login:
    """Everything needed to build one connection (no secret in repr: Credentials masks)."""

    device: Device
    credentials: Credentials
    username: str
    deadline: Deadline
    stage: Stage


class NetmikoTransport:
    """The default transport: :class:`ReadOnlyHuaweiSSH` over paramiko.

    Args:
        known_hosts: Host key store; ``~/.ssh/known_hosts`` with trust on first use if None.
        allow_sha1_kex: Allow the SHA-1 key exchanges of older VRP releases, if the
            installed paramiko has them (paramiko < 5, ``netmiko[par4]``). Off by default:
            they are disabled even where paramiko still offers them.
    """

    name = "netmiko"

    def __init__(
        self, known_hosts: KnownHosts | None = None, *, allow_sha1_kex: bool = False
    ) -> None:
        self.known_hosts = known_hosts if known_hosts is not None else KnownHosts()
        self.allow_sha1_kex = allow_sha1_kex

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.known_hosts!r})"

    def connection(self, login: _Login) -> ReadOnlyHuaweiSSH:
        """An unconnected :class:`ReadOnlyHuaweiSSH` for one device."""
        device, credentials = login.device, login.credentials
        kwargs: dict[str, Any] = {}
        for key, value in device.netmiko_extras.items():
            if key in PASSTHROUGH_EXTRAS:
                kwargs[key] = value
            else:
                log.debug("%s: netmiko extra %r ignored", device.name, key)
        if credentials.key_file is not None:
            kwargs["use_keys"] = True
            kwargs["key_file"] = str(credentials.key_file)
        if credentials.use_agent:
            kwargs["allow_agent"] = True
        if credentials.ssh_config_file is not None:
            kwargs["ssh_config_file"] = str(credentials.ssh_config_file)
        if credentials.passphrase is not None:
            kwargs["passphrase"] = credentials.passphrase.reveal()
        if kwargs.get("key_file") and "use_keys" not in kwargs:
            kwargs["use_keys"] = True
        seconds = max(0.1, login.deadline.remaining())
        return ReadOnlyHuaweiSSH(
            host=device.hostname,
            port=device.port,
            username=login.username,
            password=credentials.password.reveal() if credentials.password else None,
            device_type=device.platform,
            conn_timeout=seconds,
            auth_timeout=seconds,
            banner_timeout=seconds,
            blocking_timeout=seconds,
            deadline=login.deadline,
            known_hosts=self.known_hosts,
            device_name=device.name,
            masker=credentials.masker(),
            allow_sha1_kex=self.allow_sha1_kex,
            stage=login.stage,
            **kwargs,
        )

    @contextlib.contextmanager
    def session(self, login: _Login) -> Iterator[Callable[[str], str]]:
        """A logged-in session: yields ``run(command) -> output``; closes on exit."""
        connection = self.connection(login)
        with watched(login.deadline, connection.abort):
            try:
                connection.connect()
                yield connection.run_command
            finally:
                connection.close()

    def collect(
        self,
        device: Device,
        credentials: Credentials,
        *,
        peer: str | None = None,
        timeout: float = 30.0,
        clock: bool = False,
        keep_raw: bool = False,
    ) -> DeviceResult:
        """Read one device (see :class:`Transport`)."""
        return _collect(self, device, credentials, peer, timeout, clock, keep_raw)


class _SessionFactory(Protocol):
    known_hosts: KnownHosts

    def session(self, login: _Login) -> contextlib.AbstractContextManager[Callable[[str], str]]:
        """A logged-in session yielding ``run(command) -> output``."""
        ...


def _read_clock(device: Device, run: Callable[[str], str]) -> datetime | None:
    output = run(commands.CLOCK)
    try:
        return parse_display_clock(output).local
    except ClockParseError as exc:
        log.warning("%s: display clock not understood: %s", device.name, exc)
        return None


def _collect(
    factory: _SessionFactory,
    device: Device,
    credentials: Credentials,
    peer: str | None,
    timeout: float,
    clock: bool,
    keep_raw: bool,
) -> DeviceResult:
    """The flow shared by both transports: login, optional clock, the command, the checks."""
    started = datetime.now(UTC)
    command = commands.offline_info_command(peer)  # InvalidPeer: a usage error, raised
    masker = credentials.masker()
    deadline = Deadline(timeout)
    username: str | None = None
    stage = Stage()
    try:
        if device.platform not in SUPPORTED_PLATFORMS:
            raise SessionError(
                ErrorKind.PROTOCOL,
                f"platform {device.platform!r} is not supported"
                f" (use one of: {', '.join(sorted(SUPPORTED_PLATFORMS))})",
            )
        username = credentials.username_for(device.username)
        login = _Login(device, credentials, username, deadline, stage)
        device_clock: datetime | None = None
        stage.phase = "SSH connect"
        with factory.session(login) as run:
            if clock:
                device_clock = _read_clock(device, run)
            text = run(command)
    except Exception as exc:
        kind, message = classify_error(
            exc,
            deadline=deadline,
            phase=stage.phase,
            username=username,
            host=device.hostname,
            port=device.port,
            known_hosts=factory.known_hosts,
            device_name=device.name,
            masker=masker,
        )
        log.info("%s: %s: %s", device.name, kind.value, message)
        if log.isEnabledFor(logging.DEBUG):
            detail = "".join(traceback.format_exception(exc))
            log.debug("%s: exception detail:\n%s", device.name, masker.mask(detail))
        return DeviceResult.failure(
            device, kind, message, started=started, finished=datetime.now(UTC)
        )
    return result_from_output(
        device, command, text, started=started, keep_raw=keep_raw, device_clock=device_clock
    )


# --- NAPALM ---------------------------------------------------------------------------


def _read_only_vrp_driver() -> type[Any]:
    """napalm-huawei-vrp's ``VRPDriver`` with our netmiko class under it (imported lazily:
    napalm is an optional extra)."""
    from napalm_huawei_vrp.huawei_vrp import VRPDriver

    class ReadOnlyVRPDriver(VRPDriver):
        """``VRPDriver`` whose netmiko connection is :class:`ReadOnlyHuaweiSSH`.

        napalm's ``NetworkDriver._netmiko_open`` calls netmiko's ``ConnectHandler`` with
        ``device_type="huawei"`` (stock ``HuaweiSSH``: AutoAddPolicy, answers ``Y`` to
        the save question). Overriding it here is the one seam: ``open()``, ``cli()`` and
        ``close()`` stay napalm's.
        """

        def __init__(
            self, *args: Any, connection_factory: Callable[[], ReadOnlyHuaweiSSH], **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            self._connection_factory = connection_factory

        def _netmiko_open(
            self, device_type: str, netmiko_optional_args: dict[str, Any] | None = None
        ) -> ReadOnlyHuaweiSSH:
            connection = self._connection_factory()
            self._netmiko_device = connection
            connection.connect()
            return connection

    return ReadOnlyVRPDriver


class NapalmTransport:
    """``--transport napalm``: napalm-huawei-vrp's driver, ``open()`` + ``cli()`` + ``close()``.

    Same read-only login, host keys, deadline and error kinds as :class:`NetmikoTransport`
    (the driver's netmiko connection is a :class:`ReadOnlyHuaweiSSH`).

    Raises:
        ImportError: napalm-huawei-vrp is not installed (the ``napalm`` extra).
    """

    name = "napalm"

    def __init__(
        self, known_hosts: KnownHosts | None = None, *, allow_sha1_kex: bool = False
    ) -> None:
        self._netmiko = NetmikoTransport(known_hosts, allow_sha1_kex=allow_sha1_kex)
        self.known_hosts = self._netmiko.known_hosts
        self._driver_class = _read_only_vrp_driver()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.known_hosts!r})"

    @contextlib.contextmanager
    def session(self, login: _Login) -> Iterator[Callable[[str], str]]:
        """A napalm driver session: yields ``run(command)`` through ``driver.cli()``."""
        device = login.device
        holder: list[ReadOnlyHuaweiSSH] = []

        def factory() -> ReadOnlyHuaweiSSH:
            connection = self._netmiko.connection(login)
            holder.append(connection)
            return connection

        def abort() -> None:
            for connection in holder:
                connection.abort()

        driver = self._driver_class(
            device.hostname,
            login.username,
            "",  # the password goes to the connection factory, never into napalm's state
            timeout=max(1, int(login.deadline.seconds)),
            optional_args={"port": device.port},
            connection_factory=factory,
        )

        def run(command: str) -> str:
            output = driver.cli([command])
            return str(output[command])

        with watched(login.deadline, abort):
            try:
                driver.open()
                yield run
            finally:
                if holder:
                    try:
                        # napalm's close(): _netmiko_close() -> our disconnect() (quit, close).
                        driver.close()
                    except Exception as exc:  # closing must not hide the real outcome
                        log.debug("%s: napalm close failed: %s", device.name, exc)
                    finally:
                        holder[0].close()  # idempotent; also shuts our socket

    def collect(
        self,
        device: Device,
        credentials: Credentials,
        *,
        peer: str | None = None,
        timeout: float = 30.0,
        clock: bool = False,
        keep_raw: bool = False,
    ) -> DeviceResult:
        """Read one device through NAPALM (see :class:`Transport`)."""
        return _collect(self, device, credentials, peer, timeout, clock, keep_raw)


TRANSPORTS = ("netmiko", "napalm")
"""The names ``--transport`` accepts."""


class TransportUnavailable(Exception):
    """A transport whose library is not installed; the message says what to install."""


def make_transport(
    name: str = "netmiko",
    *,
    known_hosts: KnownHosts | None = None,
    allow_sha1_kex: bool = False,
) -> Transport:
    """The transport called ``name`` (``netmiko`` or ``napalm``).

    Raises:
        TransportUnavailable: ``napalm`` without napalm-huawei-vrp installed.
        ValueError: an unknown name.
    """
    if name == "netmiko":
        return NetmikoTransport(known_hosts, allow_sha1_kex=allow_sha1_kex)
    if name == "napalm":
        try:
            return NapalmTransport(known_hosts, allow_sha1_kex=allow_sha1_kex)
        except ImportError:
            raise TransportUnavailable(
                "--transport napalm needs napalm-huawei-vrp:"
                " pip install 'collect-ike-offline[napalm]'"
            ) from None
    raise ValueError(f"unknown transport {name!r} (use one of: {', '.join(TRANSPORTS)})")
