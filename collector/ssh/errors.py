"""Session errors and their classification into an error kind and one line of text.

:func:`classify_error` walks an exception's cause chain (netmiko rewraps paramiko's
errors) and maps it to an :class:`~collector.core.records.ErrorKind` and a one-line message for
the operator (device text sanitised and secrets masked by :func:`one_line`). A failed SSH
negotiation comes with advice that depends on whether the installed paramiko still has the
SHA-1 key exchanges of older VRP releases (:func:`legacy_kex_available`).
"""

from __future__ import annotations

import errno
import re
import socket
import sys
from collections.abc import Iterator, Mapping

import paramiko

from collector.core import terminal
from collector.core.commands import CommandNotAllowed
from collector.core.errors import CollectorError
from collector.core.records import ErrorKind
from collector.ssh.credentials import CredentialsError, SecretMasker
from collector.ssh.deadline import Deadline
from collector.ssh.hostkeys import HostKeyError, HostKeyProblem, KnownHosts

__all__ = [
    "AEAD_CIPHERS",
    "LEGACY_KEX",
    "ConnectionDropped",
    "DeadlinePassed",
    "SessionError",
    "banner_timed_out",
    "classify_error",
    "legacy_kex_available",
    "one_line",
    "target_answered",
]

# Here rather than in collector.ssh.vrp_session (which uses them too): the negotiation advice
# depends on them, and errors must not import the session module.
LEGACY_KEX = ("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1")
"""SHA-1 key exchanges older VRP releases offer alone; paramiko 5 removed them."""
AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""The ciphers both SSH transports offer first. paramiko: with an AEAD cipher it skips its
pure-Python MAC comparison (``util.constant_time_bytes_eq``, a loop per received packet);
measured on the mock fleet, about 0.4 of 9 ms client CPU per device. asyncssh: its own
first choice, ChaCha20-Poly1305, builds several cipher contexts in Python for every packet
(about 1.3 of 3.3 ms a device); AES-GCM is one call. Devices without GCM still negotiate
the CTR ciphers offered next."""


def _auth_refused() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "authentication refused": paramiko's, and netmiko's own
    when netmiko is loaded (only the netmiko and napalm transports load it, and nothing
    else raises it; the asyncssh path never imports netmiko, ~40-50 ms of start-up)."""
    netmiko = sys.modules.get("netmiko.exceptions")
    if netmiko is None:
        return (paramiko.AuthenticationException,)
    return (paramiko.AuthenticationException, netmiko.NetmikoAuthenticationException)


_MESSAGE_LIMIT = 300


def legacy_kex_available() -> bool:
    """Whether the installed paramiko still has the SHA-1 key exchanges (paramiko < 5)."""
    kex_info: Mapping[str, object] = getattr(paramiko.Transport, "_kex_info", {})
    return any(name in kex_info for name in LEGACY_KEX)


class SessionError(CollectorError):
    """A device problem found by the session code, already classified."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ConnectionDropped(CollectorError):
    """The channel reached EOF (the device or the network closed the session)."""


class DeadlinePassed(CollectorError):
    """The device's deadline passed while waiting for it."""


def one_line(text: str, masker: SecretMasker | None = None, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` as one line for the operator (:func:`collector.core.terminal.one_line`),
    secrets masked (with ``masker``), cut to ``limit`` characters.
    """
    line = terminal.one_line(text)
    if masker is not None:
        line = masker.mask(line)
    return terminal.one_line(line, limit)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes/contexts (netmiko rewraps paramiko's errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def target_answered(exc: BaseException) -> bool:
    """Whether ``exc`` is the target device's own answer (its host key, or authentication
    refused): the connection to it worked, so a jump host in between did its job."""
    answers = (HostKeyError, paramiko.BadHostKeyException, *_auth_refused())
    return any(isinstance(item, answers) for item in _chain(exc))


def banner_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is paramiko giving up waiting for the SSH banner (its banner
    timeout, not an EOF): paramiko raises "Error reading SSH protocol banner" from the
    socket timeout."""
    chain = list(_chain(exc))
    banner = any(
        isinstance(item, paramiko.SSHException) and "protocol banner" in str(item) for item in chain
    )
    return banner and any(isinstance(item, TimeoutError) for item in chain)


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
    refused = _auth_refused()
    where = f"{host}:{port}"
    for item in chain:
        # Host key messages are ours (no device text) and end with the remedy
        # (ssh-keygen -R ...): a long known_hosts path must not cut it off.
        if isinstance(item, HostKeyError):
            kind = (
                ErrorKind.HOST_KEY_CHANGED
                if item.problem is HostKeyProblem.CHANGED
                else ErrorKind.HOST_KEY
            )
            return kind, one_line(str(item), masker, limit=1000)
        if isinstance(item, paramiko.BadHostKeyException):
            if known_hosts is not None:
                error = known_hosts.changed_error(device_name, host, port, item.key)
                return ErrorKind.HOST_KEY_CHANGED, one_line(str(error), masker, limit=1000)
            return ErrorKind.HOST_KEY_CHANGED, one_line(f"host key of {where} changed", masker)
    for item in chain:
        if isinstance(item, paramiko.BadAuthenticationType):
            allowed = ", ".join(item.allowed_types) or "none"
            return ErrorKind.AUTH, (
                f"authentication failed for user {username!r}: the device accepts only {allowed}"
            )
        if isinstance(item, refused):
            return ErrorKind.AUTH, (
                f"authentication failed for user {username!r} (password or key refused)"
            )
        if isinstance(item, CredentialsError):
            return ErrorKind.AUTH, one_line(str(item), masker)
        if isinstance(item, paramiko.SSHException) and "No authentication methods" in str(item):
            return ErrorKind.AUTH, "no password, key or agent to log in with"
    stage = f" (during {phase})" if phase else ""
    if deadline is not None and deadline.expired:
        return ErrorKind.TIMEOUT, f"no complete answer within {deadline.seconds:g} s{stage}"
    for item in chain:
        if isinstance(item, SessionError):
            return item.kind, one_line(item.message, masker)
        if isinstance(item, DeadlinePassed):
            seconds = deadline.seconds if deadline is not None else 0
            return ErrorKind.TIMEOUT, f"no complete answer within {seconds:g} s{stage}"
        if isinstance(item, socket.gaierror):
            return ErrorKind.UNREACHABLE, one_line(
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
            return ErrorKind.UNREACHABLE, one_line(
                f"{where}: {item.strerror or 'unreachable'}", masker
            )
        if isinstance(item, CommandNotAllowed):
            return ErrorKind.PROTOCOL, one_line(f"internal safety check: {item}", masker)
        if isinstance(item, paramiko.IncompatiblePeer) or (
            isinstance(item, paramiko.SSHException)
            and re.search(r"Incompatible|no acceptable|no matching", str(item), re.IGNORECASE)
        ):
            # The advice comes last and is the point: cut the library's detail, not it.
            detail = one_line(str(item), masker, limit=160)
            return ErrorKind.PROTOCOL, one_line(_negotiation_message(detail), limit=1000)
        if isinstance(item, paramiko.SSHException) and "banner" in str(item).lower():
            return ErrorKind.PROTOCOL, f"no SSH banner from {where} (is it an SSH server?)"
        if isinstance(item, ConnectionDropped | EOFError | ConnectionResetError):
            return ErrorKind.PROTOCOL, f"connection closed by {where}{stage}"
    for item in chain:
        if isinstance(item, paramiko.SSHException):
            return ErrorKind.PROTOCOL, one_line(f"SSH error with {where}: {item}", masker)
    return ErrorKind.PROTOCOL, one_line(
        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
        masker,
    )
