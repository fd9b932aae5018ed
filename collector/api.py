"""The public Python API of collect-ike-offline: import from here, and only from here.

These names stay stable when the modules behind them move; everything else in the
``collector`` package is private and may change without notice. ``docs/API.md`` shows
each of them at work (its examples are run by the test suite).

* Parse saved output: :func:`parse` -> :class:`ParseResult` of :class:`OfflineRecord`.
* Inventory: :func:`load_inventory` -> :class:`Inventory` (Nornir SimpleInventory or CSV),
  :func:`select_devices` (the ``--host``/``--group``/``--where`` filters).
* Collect: :func:`collect_fleet` (devices in, one :class:`DeviceResult` per device out) and
  :func:`run_collection` (the same plus the history and the fleet report: what
  ``collect-ike-offline collect`` does).
* History: :func:`open_history` -> :class:`Store`; :func:`history_report` -> :class:`FleetReport`.
* Output: :func:`render_report` (table, JSON, CSV, NDJSON), :func:`report_dict`,
  :func:`render_prometheus` (a node_exporter textfile).
* Nornir: :mod:`collector.nornir` (``ike_offline_info``; the ``nornir`` extra).

Errors an operator can act on are one-line exceptions: :class:`ParseError` (and its
:class:`CommandRejected`), :class:`InventoryError`, :class:`StoreError`,
:class:`TransportUnavailable`. A device that cannot be read is never an exception: its
:class:`DeviceResult` carries an :class:`ErrorKind` and one line of reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector import __version__
from collector.core.aggregate import FleetReport, GroupBy
from collector.core.options import DEFAULT_TRANSPORT, DEFAULT_WORKERS
from collector.core.parse import CommandRejected, ParseError, ParseResult, parse
from collector.core.records import (
    Category,
    Device,
    DeviceError,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)
from collector.fleet import collect as _collect
from collector.fleet import run as _run
from collector.fleet.collect import Collection
from collector.history.report import history_report as _history_report
from collector.history.store import Store, StoreError, open_store
from collector.inventory.loading import load_inventory
from collector.inventory.model import Inventory, InventoryError
from collector.inventory.selection import select
from collector.output.machine import report_dict
from collector.output.prometheus import render_prometheus
from collector.output.render import render_report
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.factory import TransportUnavailable, make_transport
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import RunOptions, Transport

__all__ = [
    "Category",
    "Collection",
    "CommandRejected",
    "Credentials",
    "Device",
    "DeviceError",
    "DeviceResult",
    "DeviceStatus",
    "ErrorKind",
    "FleetReport",
    "GroupBy",
    "Inventory",
    "InventoryError",
    "KnownHosts",
    "OfflineRecord",
    "ParseError",
    "ParseResult",
    "Secret",
    "Store",
    "StoreError",
    "Transport",
    "TransportUnavailable",
    "__version__",
    "collect_fleet",
    "history_report",
    "load_inventory",
    "open_history",
    "parse",
    "render_prometheus",
    "render_report",
    "report_dict",
    "run_collection",
    "select_devices",
]


def select_devices(
    inventory: Inventory,
    *,
    hosts: Sequence[str] = (),
    groups: Sequence[str] = (),
    where: Sequence[tuple[str, str]] = (),
) -> tuple[Device, ...]:
    """The devices of ``inventory`` that pass every filter given (as ``collect``'s
    ``--host GLOB``, ``--group NAME`` and ``--where key=value``), in inventory order."""
    return select(inventory, hosts=hosts, groups=groups, where=where)


def _transport(
    transport: str | Transport, known_hosts: KnownHosts | str | os.PathLike[str] | None
) -> Transport:
    if not isinstance(transport, str):
        return transport
    if known_hosts is not None and not isinstance(known_hosts, KnownHosts):
        known_hosts = KnownHosts(Path(os.fspath(known_hosts)))
    return make_transport(transport, known_hosts=known_hosts)


def _workers(transport: Transport, workers: int | None) -> int:
    """``workers``, or the transport's own default (sessions in flight for asyncssh)."""
    if workers is not None:
        return workers
    return int(getattr(transport, "default_workers", DEFAULT_WORKERS))


def collect_fleet(
    devices: Sequence[Device],
    credentials: Credentials,
    *,
    transport: str | Transport = DEFAULT_TRANSPORT,
    known_hosts: KnownHosts | str | os.PathLike[str] | None = None,
    workers: int | None = None,
    timeout: float = 30.0,
    retries: int = 1,
    peer: str | None = None,
    clock_from_device: bool = False,
) -> list[DeviceResult]:
    """Read every device (read-only, ``workers`` at once); no history, no report.

    Args:
        devices: From :func:`load_inventory` / :func:`select_devices`, or built by hand.
        credentials: ``Credentials("admin", Secret(password))``; devices may carry their
            own ``username``.
        transport: ``"asyncssh"`` (default), ``"netmiko"``, ``"napalm"`` (the ``napalm``
            extra) or a transport object.
        known_hosts: Host keys (a path or :class:`KnownHosts`); ``~/.ssh/known_hosts``
            with trust on first use when None. Ignored for a transport object.
        workers, timeout, retries, peer, clock_from_device: As ``collect``'s options
            (``workers`` None: the transport's default, 1,000 sessions for asyncssh, 32
            threads for netmiko and napalm).

    Returns:
        One result per device, in the order given. A device that could not be read has
        ``status`` ``failed`` and an ``error`` (kind and one line); nothing is raised
        for a device problem.

    Raises:
        TransportUnavailable: ``"napalm"`` without napalm-huawei-vrp installed.
        collector.core.commands.InvalidPeer: ``peer`` is not a dotted-decimal IPv4 address.
    """
    chosen = _transport(transport, known_hosts)
    options = RunOptions(
        workers=_workers(chosen, workers),
        timeout=timeout,
        retries=retries,
        peer=peer,
        clock=clock_from_device,
    )
    return _run.collect_fleet(devices, credentials, chosen, options)


def run_collection(
    devices: Sequence[Device],
    credentials: Credentials,
    *,
    store: Store | None,
    inventory_path: str | os.PathLike[str] = "python",
    transport: str | Transport = DEFAULT_TRANSPORT,
    known_hosts: KnownHosts | str | os.PathLike[str] | None = None,
    workers: int | None = None,
    timeout: float = 30.0,
    retries: int = 1,
    peer: str | None = None,
    clock_from_device: bool = False,
) -> Collection:
    """One collection run, as ``collect-ike-offline collect`` does it: read every device,
    store each result in ``store`` as it arrives, and build the fleet report.

    Args:
        store: From :func:`open_history`, or None for no history (no new deletions or
            gaps in the report then). The caller closes it.
        inventory_path: Recorded with the run in the history.
        Other arguments: as :func:`collect_fleet`.

    Returns:
        A :class:`Collection`: ``report`` (a :class:`FleetReport` with the history's new
        deletions and gaps), ``results`` (one :class:`DeviceResult` per device) and
        ``new_by_reason`` (this run's new deletions by reason code).
    """
    chosen = _transport(transport, known_hosts)
    return _collect.run_collection(
        devices,
        credentials,
        chosen,
        store=store,
        inventory_path=Path(os.fspath(inventory_path)),
        workers=_workers(chosen, workers),
        timeout=timeout,
        retries=retries,
        peer=peer,
        clock_from_device=clock_from_device,
        show_progress=False,
    )


def open_history(target: str | os.PathLike[str] | None = None) -> Store:
    """Open (creating it if needed) the history: a SQLite file path, a
    ``postgresql://user@host/db`` URL (the ``postgres`` extra), or None for the per-user
    default ``~/.local/share/collect-ike-offline/history.sqlite3``.

    The store is a context manager (``with open_history(path) as store: ...``).

    Raises:
        StoreError: it cannot be opened, reached, or has a newer schema.
    """
    return open_store(target)


def history_report(
    store: Store,
    *,
    since: datetime | timedelta | None = None,
    until: datetime | None = None,
    group_by: GroupBy | str | None = None,
    flap_threshold: int | None = None,
) -> FleetReport:
    """The fleet report over the history, as ``collect-ike-offline report``.

    Args:
        since: The window's start: an aware datetime, or a timedelta back from now
            (``timedelta(days=7)``); None: everything stored.
        until: The window's end (aware); None: now.
        group_by: ``device``, ``site``, ``group``, ``reason``, ``category`` or ``peer``.
        flap_threshold: Deletions of one peer in the window that make it flapping.
    """
    now = datetime.now(UTC)
    start = now - since if isinstance(since, timedelta) else since
    return _history_report(
        store,
        since=start,
        until=until,
        generated_at=now,
        group_by=group_by,
        flap_threshold=flap_threshold,
    )
