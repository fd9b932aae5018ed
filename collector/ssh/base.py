"""What every SSH transport is built from: its settings and its one entry point.

:class:`SshTransport` holds what ``make_transport`` passes to each transport (the host keys
it checks, ``--legacy-ssh``, ``--connect-timeout``) and implements
:meth:`~collector.ssh.protocol.Transport.collect` once: the session stage is published for
the progress line, and the transport's :meth:`SshTransport.read` does the rest. It loads
paramiko (through :mod:`collector.ssh.hostkeys`), never netmiko: the asyncssh transport
derives from it as the netmiko and NAPALM ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.core.records import Device, DeviceResult
from collector.ssh.breaker import LoginGate
from collector.ssh.credentials import Credentials
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import Stage, published

__all__ = ["Request", "SshTransport"]


@dataclass(frozen=True, slots=True)
class Request:
    """What one :meth:`~collector.ssh.protocol.Transport.collect` call asks of a device."""

    peer: str | None = None
    """Only the deletions of this remote peer (``display ike offline-info peer A.B.C.D``)."""
    timeout: float = 30.0
    """Seconds for the whole attempt (the hard deadline)."""
    clock: bool = False
    """Read ``display clock`` first (the device's zone and skew)."""
    keep_raw: bool = False
    """Keep the raw output in the result."""
    login_gate: LoginGate | None = None
    """Taken right before the first authentication request (the run's auth breaker,
    :mod:`collector.ssh.breaker`); None: log in at once."""


class SshTransport:
    """The base of the transports.

    Args:
        known_hosts: Host key store; ``~/.ssh/known_hosts`` with trust on first use if None.
        allow_sha1_kex: Allow the SHA-1 key exchanges of older VRP releases
            (``--legacy-ssh``). Off by default.
        connect_timeout: Seconds from the start of an attempt to the device's prompt
            (``--connect-timeout``); None: the attempt's deadline alone.
    """

    name: str

    def __init__(
        self,
        known_hosts: KnownHosts | None = None,
        *,
        allow_sha1_kex: bool = False,
        connect_timeout: float | None = None,
    ) -> None:
        self.known_hosts = known_hosts if known_hosts is not None else KnownHosts()
        self.allow_sha1_kex = allow_sha1_kex
        self.connect_timeout = connect_timeout
        """Seconds from the start of an attempt to the device's prompt; None: the deadline."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.known_hosts!r})"

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
        """Read one device (see :class:`~collector.ssh.protocol.Transport`): login,
        optional clock, the command; never raises for a device problem.

        ``timeout`` bounds the whole attempt; :attr:`connect_timeout` (when shorter) the
        part up to the device's prompt (TCP, SSH banner, key exchange, login).
        """
        stage = Stage()
        request = Request(peer, timeout, clock, keep_raw, login_gate)
        with published(stage):  # for a progress display: what this device waits for
            return self.read(device, credentials, request, stage)

    def read(
        self, device: Device, credentials: Credentials, request: Request, stage: Stage
    ) -> DeviceResult:
        """One attempt at one device; ``stage`` follows what the session waits for."""
        raise NotImplementedError
