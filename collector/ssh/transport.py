"""Device transports: one call reads one device and returns a checked result.

One call, :meth:`Transport.collect`, logs in to one device, runs ``display ike
offline-info`` (optionally ``display clock`` first), checks what came back with
:func:`collector.core.parse.parse` and returns a
:class:`~collector.core.records.DeviceResult`. Every
failure becomes an :class:`~collector.core.records.ErrorKind` and one line of text; nothing is
raised for a device problem.

:class:`NetmikoTransport` (the default) logs in with
:class:`~collector.ssh.vrp_session.ReadOnlyHuaweiSSH` (read-only, host keys checked, fast,
deadline-bound: see :mod:`collector.ssh.vrp_session`).

:class:`NapalmTransport` runs the same command through napalm-huawei-vrp's ``VRPDriver``
(``open()``, ``cli([...])``, ``close()``). That driver logs in with netmiko's ``huawei``
class through ``NetworkDriver._netmiko_open``; our subclass of the driver overrides
``_netmiko_open`` to build ``ReadOnlyHuaweiSSH`` instead, so the same read-only login,
host key checks and deadline apply, and ``cli()`` ends up in our ``send_command``
(allowed commands only).

Output checks: a refused command (``Error: ...``) is ``command-rejected`` with the
device's line; output that is not this command's at all (garbage, another prompt) is
``protocol``; a table whose ``Current info Num`` does not match its rows, or a session
closed by the device while the table was printing, is ``incomplete-output``; an answer over
the byte or row caps of :mod:`collector.core.limits` is ``oversized-output``.

Size: over 500 lines because the netmiko and NAPALM transports share the device flow
(attempt, login, plan, failure) and the output checks every transport uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import traceback
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from collector.core import commands
from collector.core.clock import ClockParseError, DeviceClock, parse_display_clock
from collector.core.limits import OutputGuard, OutputTooLarge
from collector.core.parse import CommandRejected, ParseError, ParseResult, ProblemKind, parse
from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind, OfflineRecord
from collector.ssh.base import Request, SshTransport
from collector.ssh.breaker import LoginGate
from collector.ssh.credentials import Credentials
from collector.ssh.deadline import Deadline, watched
from collector.ssh.errors import SessionError, classify_error, one_line
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import Stage
from collector.ssh.ssh_config import SshConfigError, SshTarget, resolve_device

if TYPE_CHECKING:  # netmiko is loaded only when a netmiko or napalm session starts
    from collector.ssh.vrp_session import ReadOnlyHuaweiSSH

__all__ = [
    "PASSTHROUGH_EXTRAS",
    "SUPPORTED_PLATFORMS",
    "NapalmTransport",
    "NetmikoTransport",
    "result_from_output",
    "result_from_outputs",
]

log = logging.getLogger("collector.ssh.transport")

SUPPORTED_PLATFORMS = frozenset({"huawei", "huawei_vrpv8"})

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


# --- output checks --------------------------------------------------------------------


def _truncation_reason(result: ParseResult) -> str:
    for problem in result.problems:
        if problem.kind.truncation:
            return problem.message
    for problem in result.problems:
        if problem.kind is ProblemKind.UNPARSED_ROW:
            line = f" (line {problem.line})" if problem.line else ""
            return f"{problem.message}{line}"
    return f"'Current info Num' says {result.declared_count} but {len(result.records)} rows parsed"


Output = tuple[str, commands.Spu | None, str]
"""One command's output: the command line, the SPU it read (multi-SPU firewalls), the text."""


def result_from_output(
    device: Device,
    command: str,
    text: str,
    *,
    started: datetime,
    keep_raw: bool = False,
    device_clock: DeviceClock | None = None,
) -> DeviceResult:
    """Check one command output and turn it into a result (:func:`result_from_outputs`)."""
    return result_from_outputs(
        device,
        [(command, None, text)],
        started=started,
        keep_raw=keep_raw,
        device_clock=device_clock,
    )


def result_from_outputs(
    device: Device,
    outputs: Sequence[Output],
    *,
    started: datetime,
    keep_raw: bool = False,
    device_clock: DeviceClock | None = None,
) -> DeviceResult:
    """Check a device's command outputs (one, or one per SPU) and turn them into a result.

    Text over the caps of :mod:`collector.core.limits` -> ``oversized-output`` (our session
    stops reading there already; this covers text read another way).
    ``CommandRejected`` -> ``command-rejected`` with the device's line; other parse errors
    (not this command's output) -> ``protocol``; an incomplete table -> ``incomplete-output``
    with the reason. Any output failing fails the device (naming that command): a device
    is stored whole or not at all. Records of an SPU's output carry its slot and cpu.
    Lines the parser did not recognise in an otherwise complete table are logged as
    warnings.
    """
    raw = "\n".join(text for _, _, text in outputs) if keep_raw else None
    finished = datetime.now(UTC)
    common: dict[str, Any] = {
        "started": started,
        "finished": finished,
        "raw": raw,
        "device_clock": device_clock,
        "command": _base_command(outputs[0][0]) if outputs else None,
    }
    records: list[OfflineRecord] = []
    for command, spu, text in outputs:
        try:
            # Our session stopped reading at the caps already; this covers text read
            # another way (each table's count, the lines, the bytes).
            OutputGuard().feed(text)
            result = parse(text)
        except OutputTooLarge as exc:
            return DeviceResult.failure(
                device, ErrorKind.OVERSIZED_OUTPUT, one_line(f"'{command}': {exc}"), **common
            )
        except CommandRejected as exc:
            return DeviceResult.failure(
                device,
                ErrorKind.COMMAND_REJECTED,
                one_line(f"'{command}' refused: {exc.message}"),
                **common,
            )
        except ParseError as exc:
            return DeviceResult.failure(
                device,
                ErrorKind.PROTOCOL,
                one_line(f"unexpected answer to '{command}': {exc.message}"),
                **common,
            )
        if not result.complete:
            return DeviceResult.failure(
                device,
                ErrorKind.INCOMPLETE_OUTPUT,
                one_line(f"'{command}': {_truncation_reason(result)}"),
                **common,
            )
        for problem in result.problems:
            log.warning("%s: %s: %s", device.name, problem.message, one_line(problem.text or ""))
        if spu is None:
            records.extend(result.records)
        else:
            records.extend(record._replace(slot=spu.slot, cpu=spu.cpu) for record in result.records)
    return DeviceResult(device, DeviceStatus.OK, records=tuple(records), **common)


def _base_command(command: str) -> str:
    """The command without its peer or slot arguments (what the store remembers)."""
    return next((name for name in commands.IKE_COMMANDS if command.startswith(name)), command)


# --- transports -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Login:
    """Everything needed to build one connection (no secret in repr: Credentials masks)."""

    device: Device
    credentials: Credentials
    username: str
    deadline: Deadline
    stage: Stage
    target: SshTarget
    """Where to connect and how (the inventory and its ssh_config, resolved)."""
    connect_deadline: Deadline
    """Until the prompt: the earlier of ``--connect-timeout`` and the deadline."""
    gate: LoginGate | None = None
    """Taken right before the first authentication request (:mod:`collector.ssh.breaker`)."""


class _SessionTransport(SshTransport):
    """What netmiko and NAPALM share: :meth:`read` is one flow over each one's :meth:`session`."""

    def session(self, login: _Login) -> contextlib.AbstractContextManager[Callable[[str], str]]:
        """A logged-in session yielding ``run(command) -> output``; closed on exit."""
        raise NotImplementedError

    def read(
        self, device: Device, credentials: Credentials, request: Request, stage: Stage
    ) -> DeviceResult:
        return _collect(self, device, credentials, request, stage)


class NetmikoTransport(_SessionTransport):
    """The default transport: :class:`ReadOnlyHuaweiSSH` over paramiko.

    Takes :class:`~collector.ssh.base.SshTransport`'s arguments; ``allow_sha1_kex``: the
    SHA-1 key exchanges of older VRP releases, if the installed paramiko has them
    (paramiko < 5, ``netmiko[par4]``); off by default, they are disabled even where
    paramiko still offers them.
    """

    name = "netmiko"

    def connection(self, login: _Login) -> ReadOnlyHuaweiSSH:
        """An unconnected :class:`ReadOnlyHuaweiSSH` for one device."""
        # Here, not at the top: importing netmiko costs ~40-50 ms of CPU at every start,
        # and the asyncssh transport (the default) shares this module's flow, not netmiko.
        from collector.ssh.vrp_session import ReadOnlyHuaweiSSH

        device, credentials = login.device, login.credentials
        kwargs: dict[str, Any] = {}
        target = login.target
        for key, value in device.netmiko_extras.items():
            if key == "ssh_config_file":
                continue  # resolved by collector.ssh.ssh_config (login.target), not by netmiko
            if key in PASSTHROUGH_EXTRAS:
                kwargs[key] = value
            else:
                log.debug("%s: netmiko extra %r ignored", device.name, key)
        if credentials.key_file is not None:
            kwargs["use_keys"] = True
            kwargs["key_file"] = str(credentials.key_file)
        if credentials.use_agent:
            kwargs["allow_agent"] = True
        if credentials.passphrase is not None:
            kwargs["passphrase"] = credentials.passphrase.reveal()
        if kwargs.get("key_file") and "use_keys" not in kwargs:
            kwargs["use_keys"] = True
        seconds = max(0.1, login.deadline.remaining())
        return ReadOnlyHuaweiSSH(
            host=target.hostname,
            port=target.port,
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
            proxy=target.proxy,
            identity_files=target.identity_files,
            connect_timeout=target.connect_timeout,
            keepalive=target.server_alive_interval or 0,  # netmiko's: ServerAliveInterval
            connect_deadline=login.connect_deadline,
            login_gate=login.gate,
            **kwargs,
        )

    @contextlib.contextmanager
    def session(self, login: _Login) -> Iterator[Callable[[str], str]]:
        """A logged-in session: yields ``run(command) -> output``; closes on exit."""
        connection = self.connection(login)
        with watched(login.deadline, connection.abort):
            try:
                with watched(login.connect_deadline, connection.abort):
                    connection.connect()
                yield connection.run_command
            finally:
                connection.close()


def _read_clock(device: Device, output: str) -> DeviceClock | None:
    """``display clock``, whole: the local time and the offset and zone it printed
    (the store and the skew check need the offset; the local time alone is UTC-less)."""
    try:
        return parse_display_clock(output)
    except ClockParseError as exc:
        log.warning("%s: display clock not understood: %s", device.name, exc)
        return None


@dataclass(slots=True)
class Attempt:
    """One attempt at one device, as every transport's flow shares it."""

    device: Device
    credentials: Credentials
    deadline: Deadline
    connect_deadline: Deadline
    """``--connect-timeout``: from the start of the attempt to the prompt."""
    started: datetime
    stage: Stage
    target: SshTarget
    username: str | None = None
    gate: LoginGate | None = None
    """The run's auth breaker, taken right before authenticating (None: no breaker)."""


def begin_attempt(
    device: Device,
    credentials: Credentials,
    peer: str | None,
    timeout: float,
    connect_timeout: float | None = None,
    stage: Stage | None = None,
    gate: LoginGate | None = None,
) -> Attempt:
    """Start the clocks for one attempt (the deadline, the connect deadline).

    Raises:
        InvalidPeer: ``peer`` is not an IPv4 address (a usage error).
    """
    started = datetime.now(UTC)
    if peer is not None:
        commands.validate_peer(peer)  # InvalidPeer: a usage error, raised
    connect_deadline = Deadline(
        timeout if connect_timeout is None else min(timeout, connect_timeout)
    )
    target = SshTarget(device.hostname, device.port, device.username)
    return Attempt(
        device,
        credentials,
        Deadline(timeout),
        connect_deadline,
        started,
        stage if stage is not None else Stage(),
        target,
        gate=gate,
    )


def login_for(attempt: Attempt) -> _Login:
    """Check the platform, resolve the ssh_config and the user name for one attempt.

    Raises:
        SessionError: an unsupported platform or an unusable ssh_config setting.
        CredentialsError: no user name.
    """
    device, credentials = attempt.device, attempt.credentials
    if device.platform not in SUPPORTED_PLATFORMS:
        raise SessionError(
            ErrorKind.PROTOCOL,
            f"platform {device.platform!r} is not supported"
            f" (use one of: {', '.join(sorted(SUPPORTED_PLATFORMS))})",
        )
    try:
        attempt.target = resolve_device(device, credentials.ssh_config_file, credentials.username)
    except SshConfigError as exc:  # the CLI checks this before connecting
        raise SessionError(ErrorKind.PROTOCOL, str(exc)) from None
    attempt.username = credentials.username_for(attempt.target.user)
    attempt.stage.phase = "SSH connect"
    return _Login(
        device,
        credentials,
        attempt.username,
        attempt.deadline,
        attempt.stage,
        attempt.target,
        attempt.connect_deadline,
        attempt.gate,
    )


def failed_attempt(attempt: Attempt, exc: BaseException, known_hosts: KnownHosts) -> DeviceResult:
    """The failure result for an attempt that raised ``exc`` (classified, logged, masked)."""
    device, target, stage = attempt.device, attempt.target, attempt.stage
    deadline, connect_deadline = attempt.deadline, attempt.connect_deadline
    masker = attempt.credentials.masker()
    connecting_too_long = connect_deadline.fired and not deadline.expired
    kind, message = classify_error(
        exc,
        deadline=connect_deadline if connecting_too_long else deadline,
        phase=stage.phase,
        username=attempt.username,
        host=target.hostname,
        port=target.port,
        known_hosts=known_hosts,
        device_name=device.name,
        masker=masker,
    )
    if connecting_too_long and kind is ErrorKind.TIMEOUT:
        message = (
            f"no prompt within {connect_deadline.seconds:g} s of connecting"
            f" (--connect-timeout; during {stage.phase})"
        )
    log.info("%s: %s: %s", device.name, kind.value, message)
    if log.isEnabledFor(logging.DEBUG):
        detail = "".join(traceback.format_exception(exc))
        log.debug("%s: exception detail:\n%s", device.name, masker.mask(detail))
    return DeviceResult.failure(
        device,
        kind,
        message,
        phase=stage.phase,
        started=attempt.started,
        finished=datetime.now(UTC),
    )


Plan = Generator[str, str, tuple[DeviceClock | None, list[Output]]]
"""The commands of one device as a generator: it yields a command, is sent its output,
and returns the clock and the IKE outputs (so sync and async sessions run the same plan)."""


def device_plan(device: Device, peer: str | None, clock: bool) -> Plan:
    """What to run on one device: ``display clock`` if asked, then its IKE table(s)."""
    device_clock: DeviceClock | None = None
    if clock:
        device_clock = _read_clock(device, (yield commands.CLOCK))
    outputs = yield from _offline_tables_plan(device, peer)
    return device_clock, outputs


def run_plan(plan: Plan, run: Callable[[str], str]) -> tuple[DeviceClock | None, list[Output]]:
    """Run a :data:`Plan` over a blocking ``run(command) -> output``."""
    try:
        command = next(plan)
        while True:
            command = plan.send(run(command))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _collect(
    factory: _SessionTransport,
    device: Device,
    credentials: Credentials,
    request: Request,
    stage: Stage,
) -> DeviceResult:
    """The flow shared by both transports: login, optional clock, the command, the checks."""
    peer, timeout, clock, keep_raw = request.peer, request.timeout, request.clock, request.keep_raw
    attempt = begin_attempt(
        device, credentials, peer, timeout, factory.connect_timeout, stage, request.login_gate
    )
    try:
        login = login_for(attempt)
        with factory.session(login) as run:
            device_clock, outputs = run_plan(device_plan(device, peer, clock), run)
    except Exception as exc:
        return failed_attempt(attempt, exc, factory.known_hosts)
    return result_from_outputs(
        device, outputs, started=attempt.started, keep_raw=keep_raw, device_clock=device_clock
    )


def _offline_tables_plan(device: Device, peer: str | None) -> Generator[str, str, list[Output]]:
    """Run the device's command(s) for its deleted tunnels, in the open session.

    The command comes from ``data.ike_command`` (the inventory), else it is found out:
    ``display ike offline-info`` first, and when a device refuses it as unrecognised
    (NE40E / NetEngine 8000), ``display ike offline history`` once; a device the history
    remembers answering offline history (``data[LEARNED_COMMAND]``, set by the run) is
    asked that first. ``data.ike_spus`` runs ``display ike
    offline-info ... slot S cpu C`` once per SPU (each SPU keeps its own buffer).
    Both settings were validated when the inventory was loaded.
    """
    chosen = commands.ike_command_setting(device.data.get("ike_command", "auto"))
    if chosen == commands.OFFLINE_HISTORY:
        command = commands.offline_history_command(peer)
        return [(command, None, (yield command))]
    if chosen is None and device.data.get(LEARNED_COMMAND) == commands.OFFLINE_HISTORY:
        # The history says this device answered offline history last time: ask it first,
        # and fall back to offline-info if it no longer knows it (a replaced device).
        history = commands.offline_history_command(peer)
        answer = yield history
        if not _unrecognized(answer):
            return [(history, None, answer)]
        log.info("%s: '%s' unrecognised now; trying '%s'", device.name, history, OFFLINE_INFO)
    spus: Sequence[commands.Spu | None] = (None,)
    if device.data.get("ike_spus") is not None:
        spus = commands.parse_spus(device.data["ike_spus"])
    outputs: list[Output] = []
    for spu in spus:
        command = commands.offline_info_command(peer, spu)
        text = yield command
        if chosen is None and not outputs and _unrecognized(text):
            log.info(
                "%s: '%s' unrecognised; trying '%s'", device.name, command, commands.OFFLINE_HISTORY
            )
            history = commands.offline_history_command(peer)
            answer = yield history
            if _unrecognized(answer):
                # Neither is known: report the first refusal, the usual command's.
                log.info("%s: '%s' unrecognised too", device.name, history)
                return [(command, spu, text)]
            return [(history, None, answer)]
        outputs.append((command, spu, text))
    return outputs


LEARNED_COMMAND = "_ike_command_learned"
"""``Device.data`` key the run sets from the history: the command the device answered last."""
OFFLINE_INFO = commands.OFFLINE_INFO


def with_learned_commands(devices: Sequence[Device], known: Mapping[str, str]) -> list[Device]:
    """The devices, those without an inventory ``ike_command`` told what they answered last.

    Examples:
        >>> from collector.core.records import Device
        >>> [d.data.get(LEARNED_COMMAND) for d in with_learned_commands(
        ...     [Device("ne1", "192.0.2.1")], {"ne1": "display ike offline history"})]
        ['display ike offline history']
    """
    updated = []
    for device in devices:
        learned = known.get(device.name)
        if learned is None or "ike_command" in device.data:
            updated.append(device)
        else:
            data = MappingProxyType({**device.data, LEARNED_COMMAND: learned})
            updated.append(dataclasses.replace(device, data=data))
    return updated


def _unrecognized(text: str) -> bool:
    """Whether an output is VRP's refusal of an unknown command (not any other error)."""
    if "Unrecognized command" not in text:
        return False
    try:
        parse(text)
    except CommandRejected as exc:
        return "Unrecognized command" in exc.message
    except ParseError:
        return False
    return False


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


class NapalmTransport(_SessionTransport):
    """``--transport napalm``: napalm-huawei-vrp's driver, ``open()`` + ``cli()`` + ``close()``.

    Same read-only login, host keys, deadline and error kinds as :class:`NetmikoTransport`
    (the driver's netmiko connection is a :class:`ReadOnlyHuaweiSSH`).

    Raises:
        ImportError: napalm-huawei-vrp is not installed (the ``napalm`` extra).
    """

    name = "napalm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # SshTransport's arguments
        self._driver_class = _read_only_vrp_driver()  # first: ImportError without the extra
        super().__init__(*args, **kwargs)
        self._netmiko = NetmikoTransport(self.known_hosts, allow_sha1_kex=self.allow_sha1_kex)

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
            login.target.hostname,
            login.username,
            "",  # the password goes to the connection factory, never into napalm's state
            timeout=max(1, int(login.deadline.seconds)),
            optional_args={"port": login.target.port},
            connection_factory=factory,
        )

        def run(command: str) -> str:
            output = driver.cli([command])
            return str(output[command])

        with watched(login.deadline, abort):
            try:
                with watched(login.connect_deadline, abort):
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
