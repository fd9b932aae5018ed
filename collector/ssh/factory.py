"""The one place a transport is chosen by name (``--transport``, the API).

Each transport's module is imported only when it is chosen: netmiko (with textfsm, ttp,
pyserial, scp) costs ~40-50 ms of CPU at every start that the asyncssh transport does not
use, and asyncssh ~90 ms that netmiko does not.
"""

from __future__ import annotations

from collector.core.errors import CollectorError
from collector.core.options import DEFAULT_TRANSPORT
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import Transport

__all__ = ["TRANSPORTS", "TransportUnavailable", "make_transport"]


TRANSPORTS = ("netmiko", "napalm", "asyncssh")
"""The names ``--transport`` accepts."""


class TransportUnavailable(CollectorError):
    """A transport whose library is not installed; the message says what to install."""


def make_transport(
    name: str = DEFAULT_TRANSPORT,
    *,
    known_hosts: KnownHosts | None = None,
    allow_sha1_kex: bool = False,
    connect_timeout: float | None = None,
) -> Transport:
    """The transport called ``name`` (``netmiko``, ``napalm`` or ``asyncssh``).

    Raises:
        TransportUnavailable: ``napalm`` without napalm-huawei-vrp installed, ``asyncssh``
            without asyncssh.
        ValueError: an unknown name.
    """
    if name == "netmiko":
        from collector.ssh.transport import NetmikoTransport

        return NetmikoTransport(
            known_hosts, allow_sha1_kex=allow_sha1_kex, connect_timeout=connect_timeout
        )
    if name == "napalm":
        from collector.ssh.transport import NapalmTransport

        try:
            return NapalmTransport(
                known_hosts, allow_sha1_kex=allow_sha1_kex, connect_timeout=connect_timeout
            )
        except ImportError:
            raise TransportUnavailable(
                "--transport napalm needs napalm-huawei-vrp:"
                " pip install 'collect-ike-offline[napalm]'"
            ) from None
    if name == "asyncssh":
        try:
            from collector.ssh.async_transport import AsyncsshTransport  # optional: asyncssh
        except ImportError:
            raise TransportUnavailable(
                "--transport asyncssh needs asyncssh: pip install 'collect-ike-offline[asyncssh]'"
            ) from None
        return AsyncsshTransport(
            known_hosts, allow_sha1_kex=allow_sha1_kex, connect_timeout=connect_timeout
        )
    raise ValueError(f"unknown transport {name!r} (use one of: {', '.join(TRANSPORTS)})")
