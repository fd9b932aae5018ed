"""``collect-ike-offline export``: the stored deletions, one event a line, for a SIEM.

Streamed from the store (:meth:`collector.history.store.Store.stream`: SQLite steps the statement,
PostgreSQL reads through a server-side cursor), one row at a time, so memory stays flat
over millions of rows. Rows come ordered by device, then device-local time (the table's
clustered key: no sort). The field names are stable (:data:`EXPORT_FIELDS`, documented in
the README); new fields are only ever appended.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

from collector.core.records import Category
from collector.history.report import raw_range
from collector.history.schema import DEDUP_KEY, Dialect
from collector.output.machine import csv_cell, csv_writer

if TYPE_CHECKING:
    from collector.history.store import Store

EXPORT_FIELDS: tuple[str, ...] = (
    "event_id",
    "device",
    "site",
    "peer",
    "port",
    "reason",
    "reason_code",
    "category",
    "impact",
    "ike_version",
    "time_local",
    "time_utc",
    "first_seen_run",
    "first_seen_at",
    "slot",
    "cpu",
    "vpn_instance",
)
"""One exported deletion (documented in the README).

``event_id``: a stable hash of the deletion's identity (device, local time, peer, port,
reason, IKE version, VPN instance, buffer, occurrence), the same in every export, for
de-duplication in the SIEM. ``reason``: as the device printed it. ``impact``: ``routine``
or ``disruptive``. ``time_local``: the device's time with its UTC offset; ``time_utc``: UTC
(``Z``). ``first_seen_run`` / ``first_seen_at``: the collection run that first stored it and
when that run started (UTC). ``slot``, ``cpu``: the buffer (an NE40E slot, a firewall SPU;
null on one-buffer devices); ``vpn_instance`` (NE40E). ``port`` and ``ike_version`` are null
where the layout prints none.
"""


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


def _category(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        return Category.UNKNOWN


def _iso_local(t_local: int, t_utc: int) -> str:
    offset = timedelta(seconds=t_local - t_utc)
    moment = datetime.fromtimestamp(t_utc, UTC).astimezone(timezone(offset))
    return moment.isoformat()


def _iso_utc(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def _event_id(*key: object) -> str:
    """A stable id of one deletion from its identity (the store's de-duplication key)."""
    text = "\x1f".join(map(str, key))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def iter_events(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The stored deletions with ``since <= UTC time < until``, one dict per deletion."""
    low = None if since is None else int(since.timestamp())
    high = None if until is None else int(until.timestamp())
    where, params = raw_range(low, high)
    if store.dialect is Dialect.SQLITE:
        # One sequential pass gains nothing from the store's 64 MB page cache or its 256 MB
        # mmap window, which would show as memory growing with the file up to their size.
        store.fetch("PRAGMA mmap_size = 0")
        store.fetch("PRAGMA cache_size = -8192")
    devices = {
        int(row[0]): (str(row[1]), row[2])
        for row in store.fetch("SELECT id, name, site FROM devices")
    }
    reasons = {
        int(row[0]): (str(row[1]), str(row[2]), _category(str(row[3])))
        for row in store.fetch("SELECT id, reason, reason_code, category FROM reasons")
    }
    runs = {int(row[0]): row[1] for row in store.fetch("SELECT id, started FROM runs")}
    sql = (
        "SELECT x.device_id, x.t_local, p.peer, x.port, x.reason_id, x.ike_version, "
        "x.vpn_instance, x.slot, x.cpu, x.occurrence, x.t_utc, x.first_seen_run "
        # peers has only id and peer: the window's columns (device_id, t_local, t_utc) are
        # the deletions' without a prefix.
        f"FROM deletions x JOIN peers p ON p.id = x.peer_id WHERE {where} "
        # The clustered key's order: the query streams without a sort.
        f"ORDER BY {', '.join(f'x.{column}' for column in DEDUP_KEY)}"
    )
    for row in store.stream(sql, params):
        device_id, t_local, peer, port, reason_id, version, vpn, slot, cpu = row[:9]
        occurrence, t_utc, run = row[9:]
        device, site = devices.get(int(device_id), (str(device_id), None))
        text, code, category = reasons[int(reason_id)]
        key = (device, t_local, peer, port, text, version, vpn, slot, cpu, occurrence)
        yield {
            "event_id": _event_id(*key),
            "device": device,
            "site": site,
            "peer": peer,
            "port": port or None,
            "reason": text,
            "reason_code": code,
            "category": category.value,
            "impact": category.impact,
            "ike_version": version or None,
            "time_local": _iso_local(int(t_local), int(t_utc)),
            "time_utc": _iso_utc(int(t_utc)),
            "first_seen_run": int(run),
            "first_seen_at": _iso_utc(runs.get(int(run))),
            "slot": slot or None,
            "cpu": cpu or None,
            "vpn_instance": vpn or None,
        }


def write_export(
    store: Store,
    out: TextIO,
    fmt: ExportFormat | str = ExportFormat.NDJSON,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the events to ``out`` as NDJSON (one object a line) or CSV (a header row, then
    one row an event, cells neutralised against formula injection). Returns the count."""
    chosen = ExportFormat(fmt)
    count = 0
    if chosen is ExportFormat.CSV:
        writer = csv_writer(out)
        writer.writerow(EXPORT_FIELDS)
        for event in iter_events(store, since, until):
            writer.writerow([csv_cell(event[name]) for name in EXPORT_FIELDS])
            count += 1
        return count
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for event in iter_events(store, since, until):
        out.write(dumps(event))
        out.write("\n")
        count += 1
    return count
