"""A Nornir task: ``display ike offline-info`` with the collector's read-only session.

``pip install 'collect-ike-offline[nornir]'``, then, with your own inventory::

    from nornir import InitNornir
    from collector.nornir import ike_offline_info

    nr = InitNornir(config_file="config.yaml")
    results = nr.run(task=ike_offline_info)
    for name, multi in results.items():
        if multi.failed:
            print(name, multi[0].exception.kind, multi[0].exception.message)
        else:
            print(name, len(multi[0].result), "deletions")

How a host is reached: from its ``netmiko`` connection parameters, exactly as
nornir_netmiko's connection plugin would read them (``hostname``, ``port``, ``username``,
``password``, ``platform`` and ``connection_options.netmiko.extras``, inherited from groups
and defaults the Nornir way; Nornir's ``ssh.config_file`` when that file exists). The
session itself is :class:`~collector.ssh.vrp_session.ReadOnlyHuaweiSSH` through
:class:`~collector.ssh.transport.NetmikoTransport`, not nornir_netmiko's stock
``ConnectHandler``: netmiko's Huawei class answers ``Y`` to the "save the configuration?"
question some devices ask after login, ours answers ``N`` and sends only display commands.
So the task neither opens nor reuses ``host.connections["netmiko"]``: it opens its own
session, with a hard ``timeout`` for the whole of it, and closes it before it returns (the
same as one device of ``collect-ike-offline collect``). Extras other than key, agent and
ssh_config settings are ignored (see :data:`~collector.ssh.transport.PASSTHROUGH_EXTRAS`):
host-key settings and session logs in particular, because host keys are checked against
``known_hosts`` (trust on first use unless ``strict``) and a session log would write the
conversation to a file.

What comes back is a Nornir ``Result``:

* read: ``result`` is the list of :class:`~collector.core.records.OfflineRecord` (named tuples;
  ``record.to_dict()`` for JSON), ``failed`` False;
* not read: ``failed`` True, ``exception`` a :class:`DeviceReadError` whose ``kind`` is the
  :class:`~collector.core.records.ErrorKind` (``auth``, ``timeout``, ``incomplete-output``, ...),
  ``result`` its one-line message. Nothing is raised, so Nornir logs no traceback, and the
  host lands in ``nr.data.failed_hosts`` as for any failed task;
* always: ``device_result`` (the :class:`~collector.core.records.DeviceResult`) and ``outcome``
  (the :class:`~collector.history.store.DeviceOutcome` when recorded into a history, else None).

What ``collect`` warns about (a wrapped buffer, a skewed device clock) is logged the same
way, through Python logging (``collector.*`` loggers), not printed.

With ``store=``, each host's result is recorded into the history as soon as it is read.
A history *run* groups the devices of one collection (reports count new deletions per run
and detect buffer wrap-arounds between runs), and a Nornir task cannot see where one
``nr.run`` ends, so ``store`` takes a :class:`HistoryRun`: open one around each
``nr.run``::

    with open_store("ike.sqlite3") as store, HistoryRun(store, inventory="nornir") as run:
        nr.run(task=ike_offline_info, store=run)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from nornir.core.task import Result, Task

from collector.core.commands import (
    InvalidDeviceSetting,
    InvalidPeer,
    check_device_settings,
    offline_info_command,
)
from collector.core.errors import CollectorError
from collector.core.records import Device, DeviceResult, ErrorKind, OfflineRecord
from collector.fleet.collect import warn_gap, warn_skew
from collector.history.store import DeviceOutcome, RunId, Store, StoreError
from collector.inventory.model import (
    DEFAULT_PLATFORM,
    DEFAULT_PORT,
    PLATFORMS,
    with_platform_command,
)
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.transport import NetmikoTransport

__all__ = [
    "CONNECTION_OPTIONS",
    "DeviceReadError",
    "HistoryRun",
    "IkeOfflineResult",
    "credentials_from_host",
    "device_from_host",
    "ike_offline_info",
]

CONNECTION_OPTIONS = "netmiko"
"""Whose ``connection_options`` (and parameters) the task reads: nornir_netmiko's."""


class DeviceReadError(CollectorError):
    """A device that could not be read: the ``exception`` of a failed ``Result``.

    Attributes:
        device: The Nornir host name.
        kind: Why, one of :class:`~collector.core.records.ErrorKind`.
        message: One line for the operator (never contains a secret).
    """

    def __init__(self, device: str, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{device}: {kind.value}: {message}")
        self.device = device
        self.kind = kind
        self.message = message


class IkeOfflineResult(Result):
    """The ``Result`` of :func:`ike_offline_info`: Nornir's, plus what the collector knows.

    Attributes:
        device_result: The collector's outcome for the device (records, error, times);
            None when the task stopped before connecting (a bad ``peer``).
        outcome: What recording into the history did (new deletions, gap), or None.
    """

    device_result: DeviceResult | None
    outcome: DeviceOutcome | None

    def __init__(
        self,
        host: Any,
        result: Any = None,
        *,
        failed: bool = False,
        exception: BaseException | None = None,
        device_result: DeviceResult | None = None,
        outcome: DeviceOutcome | None = None,
    ) -> None:
        super().__init__(host, result=result, failed=failed, exception=exception)
        self.device_result = device_result
        self.outcome = outcome


class HistoryRun:
    """One run in the collector's history that Nornir's worker threads record into.

    A context manager: the run starts on enter and is finished (its totals and end time
    written) on exit. :meth:`record` is thread-safe (one device at a time, one
    transaction per device), so one ``HistoryRun`` serves every thread of ``nr.run``.

    Args:
        store: An open history (:func:`collector.history.store.open_store`); the caller closes it.
        inventory: Recorded with the run (a path or a name such as ``"nornir"``).
    """

    def __init__(self, store: Store, *, inventory: str | os.PathLike[str] | None = None) -> None:
        self.store = store
        self.inventory = inventory
        self.run_id: RunId | None = None
        self.outcomes: dict[str, DeviceOutcome] = {}
        """What recording each device did (new deletions, gap), by device name."""
        self._lock = threading.Lock()

    def __enter__(self) -> HistoryRun:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish()

    def start(self) -> RunId:
        """Start the run (done by ``with``; idempotent)."""
        with self._lock:
            if self.run_id is None:
                self.run_id = self.store.start_run(self.inventory)
            return self.run_id

    def record(self, result: DeviceResult) -> DeviceOutcome:
        """Store one device's result in this run (starting the run if needed).

        Raises:
            StoreError: the history cannot be written.
        """
        run_id = self.start()
        with self._lock:
            outcome = self.store.record_device(run_id, result)
            self.outcomes[result.device.name] = outcome
            return outcome

    def finish(self) -> None:
        """Write the run's end and totals (done by ``with``)."""
        with self._lock:
            if self.run_id is not None:
                self.store.finish_run(self.run_id)


def device_from_host(host: Any) -> Device:
    """The collector's :class:`~collector.core.records.Device` for one Nornir host.

    Hostname, port, username, platform and extras come from the host's ``netmiko``
    connection parameters (inherited from groups and defaults); ``data`` is the host's
    extended data (``timezone`` there turns offline times into UTC in the history).
    """
    params = host.get_connection_parameters(CONNECTION_OPTIONS)
    platform = str(params.platform or DEFAULT_PLATFORM)
    # The platform names our inventory loader takes (huawei_vrp, ne40e, ...), and what
    # they imply (NE40E-like: display ike offline history), decided in one place.
    data = with_platform_command(dict(host.extended_data()), platform)
    return Device(
        name=str(host.name),
        hostname=str(params.hostname or host.name),
        port=int(params.port or DEFAULT_PORT),
        username=None if params.username is None else str(params.username),
        platform=PLATFORMS.get(platform.strip().lower(), platform),
        groups=tuple(str(group.name) for group in host.extended_groups()),
        data=MappingProxyType(data),
        netmiko_extras=MappingProxyType(dict(params.extras or {})),
    )


def credentials_from_host(host: Any, config: Any = None) -> Credentials:
    """How to log in to one Nornir host: its ``netmiko`` username and password, and
    Nornir's ``ssh.config_file`` (``config``: the Nornir ``Config``) when it exists."""
    params = host.get_connection_parameters(CONNECTION_OPTIONS)
    ssh_config: Path | None = None
    configured = getattr(getattr(config, "ssh", None), "config_file", None)
    if configured:
        candidate = Path(str(configured)).expanduser()
        ssh_config = candidate if candidate.is_file() else None
    password = None if params.password is None else str(params.password)
    return Credentials(
        username=None if params.username is None else str(params.username),
        password=Secret(password) if password else None,
        ssh_config_file=ssh_config,
    )


_KNOWN_HOSTS: dict[tuple[Path | None, bool], KnownHosts] = {}
_KNOWN_HOSTS_LOCK = threading.Lock()


def _known_hosts(
    known_hosts: KnownHosts | str | os.PathLike[str] | None, strict: bool
) -> KnownHosts:
    """One :class:`KnownHosts` per file for the whole process, so Nornir's threads share
    its lock and what it learnt (trust on first use appends to the file once)."""
    if isinstance(known_hosts, KnownHosts):
        return known_hosts
    path = None if known_hosts is None else Path(known_hosts).expanduser().resolve()
    with _KNOWN_HOSTS_LOCK:
        found = _KNOWN_HOSTS.get((path, strict))
        if found is None:
            found = _KNOWN_HOSTS[(path, strict)] = KnownHosts(path, strict=strict)
        return found


def ike_offline_info(
    task: Task,
    peer: str | None = None,
    store: HistoryRun | None = None,
    *,
    known_hosts: KnownHosts | str | os.PathLike[str] | None = None,
    strict_host_keys: bool = False,
    timeout: float = 30.0,
    clock_from_device: bool = False,
) -> IkeOfflineResult:
    """Nornir task: read ``display ike offline-info [peer A.B.C.D]`` from ``task.host``.

    Args:
        task: Nornir's task (``nr.run(task=ike_offline_info, ...)``).
        peer: Only this peer's deletions (dotted-decimal IPv4), as ``collect --peer``.
        store: A :class:`HistoryRun` to record the result into, or None.
        known_hosts: A known_hosts path or :class:`~collector.ssh.hostkeys.KnownHosts`;
            ``~/.ssh/known_hosts`` when None. Unknown devices are trusted on first use
            and recorded, changed keys are refused (``host-key``).
        strict_host_keys: Refuse devices whose key is not in ``known_hosts``.
        timeout: Seconds for the whole session (connect, login, commands).
        clock_from_device: Also read ``display clock`` (its offset places offline
            times in UTC in the history when the host has no ``timezone`` data).

    Returns:
        An :class:`IkeOfflineResult`, a Nornir ``Result`` (see the module doc): the
        records, or ``failed`` with a :class:`DeviceReadError` carrying the error kind.
    """
    host = task.host
    try:
        offline_info_command(peer)
    except InvalidPeer as error:
        return IkeOfflineResult(host, result=str(error), failed=True, exception=error)
    if store is not None and not isinstance(store, HistoryRun):
        error = TypeError(
            "store= takes a collector.nornir.HistoryRun (one history run around nr.run),"
            f" not {type(store).__name__}"
        )
        return IkeOfflineResult(host, result=str(error), failed=True, exception=error)
    device = device_from_host(host)
    try:
        check_device_settings(device)  # data.ike_command, data.ike_spus: before connecting
    except InvalidDeviceSetting as error:
        message = f"{device.name}: {error}"
        return IkeOfflineResult(host, result=message, failed=True, exception=error)
    transport = NetmikoTransport(_known_hosts(known_hosts, strict_host_keys))
    credentials = credentials_from_host(host, getattr(task.nornir, "config", None))
    outcome = None
    device_result = transport.collect(
        device, credentials, peer=peer, timeout=timeout, clock=clock_from_device
    )
    if store is not None:
        try:
            outcome = store.record(device_result)
            for gap in outcome.gaps:
                warn_gap(gap, device_result)
        except StoreError as error:
            warn_skew(device_result, None)
            return IkeOfflineResult(
                host,
                result=f"not stored: {error}",
                failed=True,
                exception=error,
                device_result=device_result,
                outcome=None,
            )
    warn_skew(device_result, outcome)  # logged as collect logs them (collector.fleet.collect)
    if device_result.ok:
        records: list[OfflineRecord] = list(device_result.records)
        return IkeOfflineResult(host, result=records, device_result=device_result, outcome=outcome)
    assert device_result.error is not None
    error_info = device_result.error
    return IkeOfflineResult(
        host,
        result=f"{error_info.kind.value}: {error_info.message}",
        failed=True,
        exception=DeviceReadError(device.name, error_info.kind, error_info.message),
        device_result=device_result,
        outcome=outcome,
    )
