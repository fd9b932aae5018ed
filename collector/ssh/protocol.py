"""What the fleet runner needs of a transport, without loading netmiko or paramiko.

:class:`Transport` is the whole interface a runner, the CLI and the API use; the
transports of :mod:`collector.ssh.transport` implement it. :class:`Stage` is where one
session stands, and :func:`current_phase` lets a progress display read it per thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from collector.core.options import DEFAULT_WORKERS
from collector.core.records import ErrorKind

if TYPE_CHECKING:
    from collector.core.records import Device, DeviceResult
    from collector.ssh.breaker import AuthBreaker, LoginGate
    from collector.ssh.credentials import Credentials
    from collector.ssh.hostkeys import KnownHosts

__all__ = [
    "DEFAULT_RETRY_ON",
    "GRACE",
    "RunOptions",
    "Stage",
    "Transport",
    "current_phase",
    "published",
]

DEFAULT_RETRY_ON: frozenset[ErrorKind] = frozenset({ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT})
"""The failures worth another attempt by default (``--retry-on``)."""
GRACE = 5.0
"""Seconds past a device's deadline before the runner gives up on its thread."""


@dataclass(slots=True)
class Stage:
    """Where a session is (for timeout messages); shared by the connection and the caller."""

    phase: str = "setup"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a fan-out reads every device: what the runner's threads, its forked children
    and a transport with its own fan-out (asyncssh) all take, as one value."""

    workers: int = DEFAULT_WORKERS
    """Devices read at once (threads, or sessions in flight; shared out between processes)."""
    timeout: float = 30.0
    """Seconds for one attempt at one device (the hard deadline: connect, login, commands)."""
    retries: int = 1
    """Extra attempts for failures whose kind is in ``retry_on``."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled for each further one."""
    peer: str | None = None
    """Only this peer's records (``display ike offline-info peer A.B.C.D``)."""
    clock: bool = False
    """Also read ``display clock`` (``DeviceResult.device_clock``)."""
    keep_raw: bool = False
    """Keep the command output on each result."""
    retry_on: frozenset[ErrorKind] = DEFAULT_RETRY_ON
    """Error kinds worth another attempt."""
    grace: float = GRACE
    """Seconds past the deadline before a stuck attempt is abandoned as ``timeout``."""
    breaker: AuthBreaker | None = field(default=None, compare=False)
    """Stops logging in as a user whose logins keep being refused
    (:mod:`collector.ssh.breaker`; the skipped devices are ``skipped-auth``). Shared
    memory: forked children inherit it."""
    processes: int = 1
    """Split the fleet over this many forked processes (one core each), when the fleet
    and ``workers`` allow (see :func:`collector.fleet.run.iter_fleet`); 1: this process."""


class Transport(Protocol):
    """How the runner reads one device."""

    name: str

    @property
    def known_hosts(self) -> KnownHosts | None:
        """The host keys it checks (and the keys it trusted on first use); None: none."""
        ...

    def collect(
        self,
        device: Device,
        credentials: Credentials,
        *,
        peer: str | None = None,
        timeout: float = 30.0,
        clock: bool = False,
        keep_raw: bool = False,
        login_gate: LoginGate | None = None,
    ) -> DeviceResult:
        """Log in, run the command, check the output; never raises for a device problem.

        With ``login_gate``, the transport takes it right before its first authentication
        request (after the TCP connect, the SSH banner, the key exchange and the host-key
        check), once per attempt; when the gate says the breaker is open, the attempt ends
        there, ``skipped-auth``, without authenticating."""
        ...


_STAGES: dict[int, Stage] = {}
"""The session stage of the device each thread is reading now (thread id -> stage)."""


@contextlib.contextmanager
def published(stage: Stage) -> Iterator[None]:
    """Let :func:`current_phase` read ``stage`` for the calling thread while inside."""
    thread = threading.get_ident()
    _STAGES[thread] = stage
    try:
        yield
    finally:
        _STAGES.pop(thread, None)


def current_phase(thread: int) -> str | None:
    """What the device that thread ``thread`` reads is waiting for (``login``, a command),
    or None when that thread reads none through a published :class:`Stage`."""
    stage = _STAGES.get(thread)
    return None if stage is None else stage.phase
