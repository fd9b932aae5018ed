"""The history store: runs, devices, every deletion exactly once, gaps; SQLite or PostgreSQL.

A device keeps only its latest 200 deletions; the store keeps all of them. Each device's
result is written in ONE transaction, so a crash (even SIGKILL) loses nothing already
committed and leaves no half-written device.

A device may keep several buffers (NE40E slots, the SPUs of a multi-SPU firewall: a row's
``slot`` and ``cpu``); everything below is per buffer, and the VPN instance is part of a
row's identity. De-duplication is exact and multiset-aware: identical rows of one buffer's
snapshot are numbered (``occurrence`` 0, 1, 2 ... per identical row). Per device, the
stored rows the snapshot overlaps (t_local >= its oldest row, all buffers: one range scan
of the clustered key) are diffed with it as a multiset in Python (the key holds the
buffer) and only new rows are inserted, so a deletion seen in many runs is stored once,
two identical deletions of the same second stay two, and the same row in two slots is
two. SQLite: ``BEGIN IMMEDIATE`` makes the diff exact. PostgreSQL: the device row is
locked, and the insert is ``ON CONFLICT DO NOTHING RETURNING``, so two collectors writing
one device stay safe and the roll-ups count only rows really inserted. An unchanged
snapshot (same digest as the device's last one) skips the diff altogether.

Roll-ups (``roll_device``, ``roll_reason``, ``device_runs.new_reasons``) are updated in
the same transaction from the inserted rows; reports read them instead of every row.

A gap is recorded, per buffer, when a buffer's full snapshot (200 rows) shares no row with
what was stored for that buffer: it wrapped between two runs and deletions in between may
be lost (slot 3 can wrap while slot 1 overlaps).

Schema versions: a database of an older version is migrated when it is opened
(``store_schema.MIGRATIONS``, one transaction, recorded in ``schema_version``).

Size: over 500 lines because :class:`Store` is one transaction boundary over one schema
(connections, runs, interning, ingest with de-dup and gaps, roll-ups, prune, integrity,
queries share its connection, dialect and caches); the schema, the paths and the history
report are their own modules. A split of the class along
those lines is left for a follow-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache, partial
from itertools import chain
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NewType

from collector import PROGRAM
from collector.core.clock import ZoneError, parse_zone, resolve_zone, session_skew
from collector.core.errors import CollectorError
from collector.core.records import (
    UNKNOWN_REASON_CODE,
    DeviceResult,
    OfflineRecord,
    classify_reason,
)
from collector.history.paths import default_db_path
from collector.history.schema import (
    DEDUP_KEY,
    MIGRATIONS,
    NO_TEXT,
    NO_VERSION,
    REASON_CODE_BITS,
    ROLLUPS,
    SCHEMA_VERSION,
    TABLES,
    ColumnType,
    Dialect,
    Table,
    ddl,
    migration_ddl,
    placeholders,
)

if TYPE_CHECKING:
    pass

RunId = NewType("RunId", int)

FULL_BUFFER = 200
"""A device keeps its latest 200 deletions (command reference: display ike offline-info)."""
DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite writer waits for another writer's transaction (WAL allows one writer)."""

_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
MAX_OFFSET = 15 * 3600
"""Largest |local - UTC| accepted; window edges widen their local-time range by it."""
_NO_SHIFT = 1 << 40
_FIRST = itemgetter(0)
_RECORD_FIELDS = attrgetter(
    "offline_time", "peer", "port", "reason", "ike_version", "vpn_instance", "slot", "cpu"
)
_TEXT_COLUMN = 5
"""Where the texts (vpn_instance, slot, cpu) start in a ``Key``."""
_KEY_BUFFER = itemgetter(6, 7)
Row = tuple[Any, ...]
Key = tuple[int, int, int, int, int, str, str, str]
"""t_local, peer_id, port, reason_id, ike_version, vpn_instance, slot, cpu (as stored)."""
Buffer = tuple[str, str]
"""(slot, cpu) as stored: ``NO_TEXT`` for what the layout does not print."""


class StoreError(CollectorError):
    """The store cannot be opened or used; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Deletions of ``device`` may be lost between ``missing_since`` and ``missing_until``."""

    device: str
    run_id: int
    missing_since: datetime | None
    """UTC time of the newest deletion stored before this run."""
    missing_until: datetime | None
    """UTC time of the oldest deletion of this run's (full) snapshot."""
    missing_since_local: str | None = None
    missing_until_local: str | None = None
    slot: str | None = None
    """The buffer that wrapped (None on devices with one buffer)."""
    cpu: str | None = None

    @property
    def buffer(self) -> str | None:
        """``slot 3``, ``slot 1 cpu 0``, or None on a device with one buffer."""
        return buffer_label(self.slot, self.cpu)


def buffer_label(slot: str | None, cpu: str | None) -> str | None:
    """How reports name a buffer.

    Examples:
        >>> buffer_label("1", "0"), buffer_label("3", None), buffer_label(None, None)
        ('slot 1 cpu 0', 'slot 3', None)
    """
    if not slot and not cpu:
        return None
    return " ".join(part for part in (slot and f"slot {slot}", cpu and f"cpu {cpu}") if part)


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """What storing one device's result did."""

    device: str
    records: int
    """Rows in the snapshot."""
    new_records: int
    """Rows not stored before (written now)."""
    gaps: tuple[Gap, ...] = ()
    """One per buffer that wrapped since the previous run."""
    skew: timedelta | None = None
    """Device clock minus collector clock, when the device clock was read."""
    zone_source: str = "assumed-utc"
    """Where the zone for UTC conversion came from: inventory, device-clock, assumed-utc."""

    @property
    def gap(self) -> Gap | None:
        """The first gap (devices with one buffer have at most one)."""
        return self.gaps[0] if self.gaps else None


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def is_database_error(error: BaseException) -> bool:
    """Whether ``error`` came from the database (its driver or server: a server that went
    away, a full disk, a lock), rather than from the collector's own code."""
    if isinstance(error, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


APPLICATION = PROGRAM
"""The schema marker: ``meta`` row ``application`` (with ``schema_version``)."""
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _foreign(target: str, tables: set[str]) -> str:
    shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
    return (
        f"{target}: not a collect-ike-offline history database (it holds other tables:"
        f" {shown}; no schema marker of ours): point --db at a new file or database"
    )


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("store times must be aware (UTC)")
    return moment.timestamp()


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _local_text(seconds: int) -> str:
    """Device-local epoch seconds back to the text the store keys on.

    Examples:
        >>> _local_text(1795774272)
        '2026-11-27 10:11:12'
    """
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(sep=" ")


class _Interned:
    """Peer and reason texts -> ids, cached for the life of the Store."""

    def __init__(self) -> None:
        self.peers: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.reason_bits: dict[int, int] = {}
        """reason_id -> the bit (a power of two) of its code in ``roll_device.codes``."""
        self.loaded = False

    def forget(self, entries: Iterable[tuple[str, str]]) -> None:
        for table, text in entries:
            (self.peers if table == "peers" else self.reasons).pop(text, None)


class Store:
    """One connection to the history database. Not shared between threads."""

    def __init__(
        self, connection: Any, dialect: Dialect, target: str, *, keep_raw: bool = False
    ) -> None:
        self._conn = connection
        self.dialect = dialect
        self.target = target
        """The path or URL (never printed with a password: see ``display_target``)."""
        self.keep_raw = keep_raw
        self._sql_cache: dict[str, str] = {}
        self._in_transaction = False
        self._interned = _Interned()
        self._upsert_sql: dict[str, str] = {}
        self._pending: list[tuple[str, str]] = []
        """(table, text) interned in the open transaction, forgotten if it rolls back."""

    # -- plumbing: the only place the two drivers differ ------------------------------

    def _sql(self, sql: str) -> str:
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = placeholders(sql, self.dialect)
        return cached

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders) and return its rows (empty if none)."""
        cursor = self._conn.execute(self._sql(sql), tuple(params))
        if cursor.description is None:
            return []
        return list(cursor.fetchall())

    def stream(self, sql: str, params: Sequence[Any] = (), batch: int = 5000) -> Iterator[Row]:
        """Run one query and yield its rows a batch at a time, in constant memory.

        SQLite steps the statement as rows are fetched; PostgreSQL uses a server-side
        (named) cursor in a read-only transaction, ``batch`` rows per round trip.
        """
        if self.dialect is Dialect.POSTGRES:
            with self._conn.transaction(), self._conn.cursor(name="ike_stream") as cursor:
                cursor.itersize = batch
                cursor.execute(self._sql(sql), tuple(params))
                yield from cursor
            return
        cursor = self._conn.execute(self._sql(sql), tuple(params))
        try:
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = self._conn.execute(self._sql(sql), tuple(params))
        return int(cursor.rowcount)

    def _execute_many(self, sql: str, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        if self.dialect is Dialect.SQLITE:
            return int(self._conn.executemany(sql, rows).rowcount)
        with self._conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)
            return int(cursor.rowcount)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed on success, rolled back on any exception."""
        if self._in_transaction:
            yield
            return
        self._in_transaction = True
        try:
            if self.dialect is Dialect.SQLITE:
                # IMMEDIATE takes the write lock up front, so the busy timeout applies here
                # instead of a deadlock error when a reader later tries to write.
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            else:
                with self._conn.transaction():
                    yield
        except BaseException:
            # Ids handed out in a rolled-back transaction do not exist any more.
            self._interned.forget(self._pending)
            raise
        finally:
            self._pending.clear()
            self._in_transaction = False

    @property
    def display_target(self) -> str:
        """The path, or the URL without its password, for messages."""
        if self.dialect is Dialect.SQLITE:
            return self.target
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.target)
        if parts.password is None:
            return self.target
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------

    def _existing_tables(self) -> set[str]:
        if self.dialect is Dialect.SQLITE:
            rows = self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(row[0]) for row in rows}

    def create_schema(self, create: bool = True) -> None:
        """Create the tables (idempotent) and check the schema version.

        Args:
            create: False (``report``, ``prune``): never create a schema; a database
                without our history is a :class:`StoreError`.

        Raises:
            StoreError: another program's database (no schema marker of ours), no history
                with ``create=False``, or a schema version this collector cannot use.
        """
        existing = self._existing_tables()
        if not self._check_ours(existing, create):
            return
        if "meta" in existing and "schema_version" not in existing:
            self._check_version()  # a version 1 database (before schema_version existed)
        if set(TABLES) <= existing:
            # Already there: no DDL at all, because CREATE INDEX IF NOT EXISTS still locks
            # the table in PostgreSQL and would deadlock with a collector writing into it.
            if self._stored_version() < SCHEMA_VERSION:
                self._migrate()
            self._check_version()
            return
        with self.transaction():
            if self.dialect is Dialect.POSTGRES:
                # Two collectors starting at once would race on CREATE TABLE IF NOT EXISTS.
                self._execute("SELECT pg_advisory_xact_lock(7310405)")
            for statement in ddl(self.dialect):
                self._execute(statement)
            self._execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            self._execute(
                "INSERT INTO meta (key, value) VALUES ('application', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (APPLICATION,),
            )
            # One row per version applied: the place later migrations record themselves.
            self._execute(
                "INSERT INTO schema_version (version, applied) VALUES (?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                (SCHEMA_VERSION, datetime.now(UTC).timestamp()),
            )
        self._check_version()

    def _check_ours(self, existing: set[str], create: bool) -> bool:
        """Whether the database is ours (or empty, and may be made ours); False: nothing to
        do. A SQLite file with other tables, or our table names without our marker, is
        refused; a PostgreSQL schema may also hold other programs' tables."""
        if "meta" in existing:
            try:
                marker = {
                    str(key): str(value)
                    for key, value in self.fetch(
                        "SELECT key, value FROM meta WHERE key IN ('schema_version', 'application')"
                    )
                }
            except Exception:  # another program's meta table, other columns
                marker = {}
            if "schema_version" in marker and marker.get("application", APPLICATION) == APPLICATION:
                return True
            raise StoreError(_foreign(self.display_target, existing))
        shared = self.dialect is Dialect.POSTGRES and not existing & set(TABLES)
        if existing and not shared:
            raise StoreError(_foreign(self.display_target, existing))
        if not create:
            raise StoreError(
                f"{self.display_target}: no collect-ike-offline history there yet: run"
                " 'collect-ike-offline collect' first, or point --db at the history"
            )
        return True

    def _stored_version(self) -> int:
        """The database's schema version (``schema_version`` rows, ``meta`` before them)."""
        rows: list[Row] = [(None,)]
        if "schema_version" in self._existing_tables():
            rows = self.fetch("SELECT max(version) FROM schema_version")
        meta = self.fetch("SELECT value FROM meta WHERE key = 'schema_version'")
        versions = [int(value) for value in (rows[0][0], meta[0][0] if meta else None) if value]
        return max(versions, default=SCHEMA_VERSION)

    def _check_version(self) -> None:
        found = self._stored_version()
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.display_target}: history schema version {found} is newer "
                f"than this collector's ({SCHEMA_VERSION}); upgrade collect-ike-offline"
            )
        if found < SCHEMA_VERSION:
            raise StoreError(
                f"{self.display_target}: history schema version {found} is older than this "
                f"collector's ({SCHEMA_VERSION}) and cannot be migrated: start a new database"
            )

    def _migrate(self) -> None:
        """Bring an older database to ``SCHEMA_VERSION``, in one transaction.

        Each step of ``store_schema.MIGRATIONS`` past the stored version runs its DDL and
        records itself in ``schema_version`` (and ``meta``); a failure rolls everything
        back, leaving the database as it was. PostgreSQL: the advisory lock of schema
        creation serializes collectors opening the same old database at once.

        Raises:
            StoreError: a step failed (the database is unchanged).
        """
        try:
            self._migrate_steps()
        except StoreError:
            raise
        except Exception as error:
            lines = str(error).strip().splitlines()
            raise StoreError(
                f"{self.display_target}: cannot migrate the history from schema version "
                f"{self._stored_version()} to {SCHEMA_VERSION} "
                f"({lines[0] if lines else type(error).__name__}); the database is unchanged"
            ) from None

    def _migrate_steps(self) -> None:
        with self.transaction():
            if self.dialect is Dialect.POSTGRES:
                self._execute("SELECT pg_advisory_xact_lock(7310405)")
            found = self._stored_version()  # again, under the lock
            if found < MIGRATIONS[0].to_version - 1:
                return  # too old to migrate: _check_version says so
            for step in (step for step in MIGRATIONS if step.to_version > found):
                for statement in migration_ddl(step, self.dialect):
                    self._execute(statement)
                if step.reclassify_reasons:
                    self._reclassify()
                self._execute(
                    "INSERT INTO schema_version (version, applied) VALUES (?, ?) "
                    "ON CONFLICT (version) DO NOTHING",
                    (step.to_version, datetime.now(UTC).timestamp()),
                )
                self._execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(step.to_version),),
                )

    def _reclassify(self) -> None:
        """Give stored reasons the code and category the taxonomy has for them now.

        Reasons a version stored as ``unknown`` may have a code in the next one (v3:
        ``hardware-timeout``, ``kick old sa with same flow``, ...). The bit sets that
        name reason codes (``device_runs.new_codes``, ``roll_device.codes``) follow.
        """
        changed: set[int] = set()
        for reason_id, text, code, category in self.fetch(
            "SELECT id, reason, reason_code, category FROM reasons"
        ):
            new_code, new_category = classify_reason(str(text))
            if (new_code, new_category.value) != (code, category):
                self._execute(
                    "UPDATE reasons SET reason_code = ?, category = ? WHERE id = ?",
                    (new_code, new_category.value, reason_id),
                )
                changed.add(int(reason_id))
        if not changed:
            return
        self._interned = _Interned()
        self._load_interned()
        bits = self._interned.reason_bits
        updates: list[Row] = []
        for run_row_id, text in self.fetch(
            "SELECT id, new_reasons FROM device_runs WHERE new_reasons IS NOT NULL"
        ):
            counts: dict[str, int] = json.loads(text)
            if changed.intersection(map(int, counts)):
                codes = 0
                for reason_id in counts:
                    codes |= bits[int(reason_id)]
                updates.append((codes, run_row_id))
        self._execute_many("UPDATE device_runs SET new_codes = ? WHERE id = ?", updates)
        self.rebuild_rollups()

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        inventory: str | os.PathLike[str] | None = None,
        shard: str | None = None,
        host: str | None = None,
        *,
        started: datetime | None = None,
    ) -> RunId:
        """Record the start of a collection run and return its id."""
        started = started or datetime.now(UTC)
        with self.transaction():
            rows = self.fetch(
                "INSERT INTO runs (started, collector_host, inventory, shard) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (
                    _epoch(started),
                    host or socket.gethostname(),
                    None if inventory is None else os.fspath(inventory),
                    shard,
                ),
            )
        return RunId(int(rows[0][0]))

    def finish_run(self, run_id: int, *, finished: datetime | None = None) -> None:
        """Record the end of a run with its totals (computed from its devices)."""
        finished = finished or datetime.now(UTC)
        with self.transaction():
            totals = self.fetch(
                "SELECT "
                "coalesce(sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), 0), "
                "coalesce(sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END), 0), "
                "coalesce(sum(record_count), 0), coalesce(sum(new_records), 0), "
                "coalesce(sum(gap), 0) FROM device_runs WHERE run_id = ?",
                (run_id,),
            )[0]
            self._execute(
                "UPDATE runs SET finished = ?, devices_ok = ?, devices_failed = ?, "
                "records_seen = ?, new_records = ?, gaps = ? WHERE id = ?",
                (_epoch(finished), *(int(value) for value in totals), run_id),
            )

    # -- devices -------------------------------------------------------------------------

    def _device_row(
        self, result: DeviceResult, zone_text: str | None
    ) -> tuple[int, str | None, int, bool]:
        """Insert or update the device; return (id, last digest, pruned_until, is new)."""
        device = result.device
        groups = ",".join(device.groups)
        lock = " FOR UPDATE" if self.dialect is Dialect.POSTGRES else ""
        select = (
            "SELECT id, hostname, site, groups, zone, last_digest, pruned_until "
            f"FROM devices WHERE name = ?{lock}"
        )
        rows = self.fetch(select, (device.name,))
        is_new = False
        if not rows:
            created = self.fetch(
                "INSERT INTO devices (name, hostname, site, groups, zone) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
                (device.name, device.hostname, device.site, groups, zone_text),
            )
            if created:
                # Brand new: nothing stored for it, no groups to replace.
                device_id = int(created[0][0])
                self._execute_many(
                    "INSERT INTO device_groups (device_id, group_name) VALUES (?, ?)",
                    [(device_id, group) for group in dict.fromkeys(device.groups)],
                )
                return device_id, None, 0, True
            rows = self.fetch(select, (device.name,))
            self._set_groups(int(rows[0][0]), device.groups)
        device_id, hostname, site, stored_groups, zone, digest, pruned_until = rows[0]
        if (hostname, site, zone) != (device.hostname, device.site, zone_text):
            self._execute(
                "UPDATE devices SET hostname = ?, site = ?, zone = ? WHERE id = ?",
                (device.hostname, device.site, zone_text, device_id),
            )
        if stored_groups != groups:
            self._execute("UPDATE devices SET groups = ? WHERE id = ?", (groups, device_id))
            self._set_groups(int(device_id), device.groups)
        return int(device_id), digest, int(pruned_until), is_new

    def _set_groups(self, device_id: int, groups: Sequence[str]) -> None:
        self._execute("DELETE FROM device_groups WHERE device_id = ?", (device_id,))
        self._execute_many(
            "INSERT INTO device_groups (device_id, group_name) VALUES (?, ?) "
            "ON CONFLICT (device_id, group_name) DO NOTHING",
            [(device_id, group) for group in dict.fromkeys(groups)],
        )

    # -- interning -----------------------------------------------------------------------

    def _load_interned(self) -> None:
        if self._interned.loaded:
            return
        self._interned.peers.update(
            (str(peer), int(peer_id)) for peer_id, peer in self.fetch("SELECT id, peer FROM peers")
        )
        for reason_id, text, code in self.fetch("SELECT id, reason, reason_code FROM reasons"):
            self._interned.reasons[str(text)] = int(reason_id)
            self._interned.reason_bits[int(reason_id)] = 1 << REASON_CODE_BITS.get(
                str(code), REASON_CODE_BITS[UNKNOWN_REASON_CODE]
            )
        self._interned.loaded = True

    def _peer_id(self, peer: str) -> int:
        """The id of a peer text, inserting it if new (inside the open transaction)."""
        known = self._interned.peers.get(peer)
        if known is not None:
            return known
        rows = self.fetch(
            "INSERT INTO peers (peer) VALUES (?) ON CONFLICT (peer) DO NOTHING RETURNING id",
            (peer,),
        ) or self.fetch("SELECT id FROM peers WHERE peer = ?", (peer,))
        self._interned.peers[peer] = peer_id = int(rows[0][0])
        self._pending.append(("peers", peer))
        return peer_id

    def _reason_id(self, text: str) -> int:
        """The id of a reason as printed, inserting it (with its code) if new."""
        known = self._interned.reasons.get(text)
        if known is not None:
            return known
        code, category = classify_reason(text)
        rows = self.fetch(
            "INSERT INTO reasons (reason, reason_code, category) VALUES (?, ?, ?) "
            "ON CONFLICT (reason) DO NOTHING RETURNING id",
            (text, code, category.value),
        ) or self.fetch("SELECT id FROM reasons WHERE reason = ?", (text,))
        self._interned.reasons[text] = reason_id = int(rows[0][0])
        self._interned.reason_bits[reason_id] = 1 << REASON_CODE_BITS[code]
        self._pending.append(("reasons", text))
        return reason_id

    def _snapshot_keys(self, records: Sequence[OfflineRecord]) -> tuple[list[Key], str]:
        """The snapshot as de-dup keys (without device and occurrence), and its digest.

        Key layout: ``Key``, with what the layout did not print as ``NO_VERSION`` and
        ``NO_TEXT``. The digest covers the keys in device order (ids are stable within
        one database, so it is too), column by column: each integer column as an array,
        then the texts joined, only when there are any (most devices: one buffer, no VPN).
        """
        self._load_interned()
        peers = self._interned.peers
        reasons = self._interned.reasons
        fields = list(map(_RECORD_FIELDS, records))
        # Texts not seen before are interned first (sorted: concurrent PostgreSQL writers
        # then insert shared new texts in one order), so the comprehension never misses.
        for peer in sorted({field[1] for field in fields}.difference(peers)):
            self._peer_id(peer)
        for reason in sorted({field[3] for field in fields}.difference(reasons)):
            self._reason_id(reason)
        keys: list[Key] = [
            (
                (moment - _EPOCH) // _SECOND,
                peers[peer],
                port or 0,
                reasons[reason],
                version or NO_VERSION,
                vpn or NO_TEXT,
                slot or NO_TEXT,
                cpu or NO_TEXT,
            )
            for moment, peer, port, reason, version, vpn, slot, cpu in fields
        ]
        columns = list(zip(*keys, strict=True))
        digest = hashlib.blake2b(digest_size=16)
        for numbers in columns[:_TEXT_COLUMN]:
            digest.update(array("q", numbers).tobytes())
        if any(map(any, columns[_TEXT_COLUMN:])):
            texts = "\x1f".join(chain.from_iterable(columns[_TEXT_COLUMN:]))
            digest.update(texts.encode("utf-8", "surrogatepass"))
        return keys, digest.hexdigest()

    # -- ingest --------------------------------------------------------------------------

    def record_device(
        self,
        run_id: int,
        result: DeviceResult,
        zone: tzinfo | str | None = None,
        *,
        declared_count: int | Mapping[tuple[str | None, str | None], int] | None = None,
    ) -> DeviceOutcome:
        """Store one device's result in one transaction.

        Args:
            run_id: From :meth:`start_run`.
            result: The device's outcome; failed devices are recorded with their error.
            zone: The zone of the device's ``offline-time`` (tzinfo or text); None: the
                inventory's ``data.timezone``, else the offset ``display clock`` printed
                (``result.device_clock`` aware), else UTC.
            declared_count: ``Current info Num`` when the parser saw it, for a device
                with one buffer; several buffers: by ``record.buffer`` (``(slot, cpu)``,
                NE40E ``Current Record Number`` per slot). A buffer's snapshot is full
                when it has 200 rows or its device declared 200 or more.

        Returns:
            How many deletions were new, a gap per buffer that wrapped, the clock skew.
            The device row also remembers ``result.command`` (:meth:`known_command`).

        Raises:
            StoreError: the zone text is invalid.
        """
        device = result.device
        zone_text = zone if isinstance(zone, str) else device.data.get("timezone")
        try:
            if isinstance(zone, tzinfo):
                tz, zone_source = zone, "given"
            else:
                tz, zone_source = resolve_zone(
                    None if zone_text is None else str(zone_text), result.device_clock
                )
        except ZoneError as zone_error:
            raise StoreError(f"device {device.name}: {zone_error}") from None
        skew = session_skew(result.device_clock, tz, result.started, result.finished)
        records = result.records
        # Which buffers are full is only asked when rows were new (a gap is possible).
        full = partial(_full_buffers, records, declared_count)
        if isinstance(declared_count, Mapping):
            declared_count = sum(declared_count.values())
        raw = None
        if self.keep_raw and result.raw is not None:
            raw = zlib.compress(result.raw.encode("utf-8", "replace"), 6)
        gaps: tuple[Gap, ...] = ()
        new_records = 0
        new_reasons: str | None = None
        new_codes = 0
        digest: str | None = None
        with self.transaction():
            device_id, last_digest, pruned_until, is_new = self._device_row(
                result, None if zone_text is None else str(zone_text)
            )
            if result.ok and records:
                keys, digest = self._snapshot_keys(records)
                # Unchanged since the last run (the common cron case): nothing to diff.
                if digest != last_digest:
                    new_records, gaps, new_reasons, new_codes = self._insert_snapshot(
                        run_id, device.name, device_id, keys, tz, pruned_until, full, is_new
                    )
            error = result.error
            self._execute(
                "INSERT INTO device_runs (run_id, device_id, status, error_kind, error_message, "
                "record_count, declared_count, new_records, gap, clock_skew, zone_source, "
                "started, finished, attempts, raw, new_reasons, new_codes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    device_id,
                    result.status.value,
                    None if error is None else error.kind.value,
                    None if error is None else error.message,
                    len(records),
                    declared_count,
                    new_records,
                    len(gaps),
                    None if skew is None else skew.total_seconds(),
                    zone_source,
                    None if result.started is None else _epoch(result.started),
                    None if result.finished is None else _epoch(result.finished),
                    result.attempts,
                    raw,
                    new_reasons,
                    new_codes,
                ),
            )
            self._execute(
                "UPDATE devices SET last_digest = coalesce(?, last_digest), last_run = ?, "
                "last_status = ?, last_error_kind = ?, last_error_message = ?, "
                "last_success = coalesce(?, last_success), ike_command = coalesce(?, ike_command) "
                "WHERE id = ?",
                (
                    digest,
                    run_id,
                    result.status.value,
                    None if error is None else error.kind.value,
                    None if error is None else error.message,
                    _epoch(result.finished or datetime.now(UTC)) if result.ok else None,
                    result.command,
                    device_id,
                ),
            )
            self._execute_many(
                "INSERT INTO gaps (device_id, run_id, missing_since_utc, missing_until_utc, "
                "missing_since_local, missing_until_local, slot, cpu) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        device_id,
                        run_id,
                        None if gap.missing_since is None else int(gap.missing_since.timestamp()),
                        None if gap.missing_until is None else int(gap.missing_until.timestamp()),
                        gap.missing_since_local,
                        gap.missing_until_local,
                        gap.slot,
                        gap.cpu,
                    )
                    for gap in gaps
                ],
            )
        return DeviceOutcome(device.name, len(records), new_records, gaps, skew, zone_source)

    def _insert_snapshot(
        self,
        run_id: int,
        device_name: str,
        device_id: int,
        keys: list[Key],
        zone: tzinfo,
        pruned_until: int,
        full: Callable[[], frozenset[Buffer]],
        is_new: bool,
    ) -> tuple[int, tuple[Gap, ...], str | None, int]:
        """Insert the rows of the snapshot not stored yet; update the roll-ups from them."""
        shift = _fixed_shift(zone)
        if shift is not None:
            utcs = [key[0] - shift for key in keys]
        else:
            to_utc = _utc_seconds_function(zone)
            utcs = [to_utc(key[0]) for key in keys]
        # Rows older than a prune would come back as "new" from a quiet device's buffer.
        if pruned_until:
            kept = [(key, utc) for key, utc in zip(keys, utcs, strict=True) if utc >= pruned_until]
            keys = [key for key, _ in kept]
            utcs = [utc for _, utc in kept]
        if not keys:
            return 0, (), None, 0
        offsets = [key[0] - utc for key, utc in zip(keys, utcs, strict=True)]
        if max(offsets) > MAX_OFFSET or min(offsets) < -MAX_OFFSET:
            raise StoreError(f"device {device_name}: UTC offset beyond +-15 hours is not supported")
        # Exact multiset de-dup: the k-th copy of a row in the snapshot (occurrence k) is
        # new when fewer than k + 1 copies are stored. Every stored copy of a key the
        # snapshot holds has t_local >= the snapshot's oldest: one range scan finds them,
        # in every buffer (the key names the buffer, so buffers never match each other).
        # A device first stored in this transaction has nothing to compare with.
        oldest_local = min(key[0] for key in keys)
        stored: Counter[Key] = Counter()
        overlap: list[Row] = []
        if not is_new:
            overlap = self.fetch(
                "SELECT t_local, peer_id, port, reason_id, ike_version, vpn_instance, slot, cpu, "
                "t_utc FROM deletions WHERE device_id = ? AND t_local >= ?",
                (device_id, oldest_local),
            )
            stored = Counter(map(_STORED_KEY, overlap))
        rows: list[Row]
        if len(set(keys)) == len(keys):
            # No identical rows in the snapshot (the usual case): every occurrence is 0.
            rows = [
                (device_id, *key, 0, utc, run_id)
                for key, utc in zip(keys, utcs, strict=True)
                if key not in stored
            ]
        else:
            copies: dict[Key, int] = {}
            rows = []
            for key, utc in zip(keys, utcs, strict=True):
                occurrence = copies.get(key, 0)
                copies[key] = occurrence + 1
                if occurrence >= stored.get(key, 0):
                    rows.append((device_id, *key, occurrence, utc, run_id))
        inserted = self._insert_rows(rows) if rows else []
        if not inserted:
            return 0, (), None, 0
        peer_ids, reason_ids, inserted_utcs, *_ = zip(*inserted, strict=True)
        self._roll_up(device_id, peer_ids, reason_ids, inserted_utcs, is_new)
        new_reasons = Counter(reason_ids)
        bits = self._interned.reason_bits
        new_codes = 0
        for reason_id in new_reasons:
            new_codes |= bits[reason_id]
        gaps: tuple[Gap, ...] = ()
        full_buffers = frozenset() if is_new else full()
        if full_buffers:
            gaps = self._gaps(
                run_id,
                device_name,
                device_id,
                keys,
                utcs,
                inserted,
                overlap,
                full_buffers,
                oldest_local,
            )
        return len(inserted), gaps, json.dumps(new_reasons, separators=(",", ":")), new_codes

    def _gaps(
        self,
        run_id: int,
        device_name: str,
        device_id: int,
        keys: list[Key],
        utcs: list[int],
        inserted: list[tuple[int, int, int, str, str]],
        overlap: list[Row],
        full: frozenset[Buffer],
        scanned_from: int,
    ) -> tuple[Gap, ...]:
        """The full buffers whose rows were all new although the buffer had rows stored.

        ``overlap`` holds the stored rows from ``scanned_from`` on (every buffer): a
        buffer's newest stored row is there if it has any there, else older.
        """
        in_snapshot = Counter(map(_KEY_BUFFER, keys))
        new_in = Counter((row[3], row[4]) for row in inserted)
        gaps: list[Gap] = []
        for buffer in sorted(full):
            if not in_snapshot[buffer] or new_in[buffer] != in_snapshot[buffer]:
                continue
            mine = [row for row in overlap if (row[6], row[7]) == buffer]
            if mine:
                newest = max(mine, key=_FIRST)
                previous: Row | None = (newest[0], newest[8])
            else:
                found = self.fetch(
                    "SELECT t_local, t_utc FROM deletions WHERE device_id = ? AND t_local < ? "
                    "AND slot = ? AND cpu = ? ORDER BY t_local DESC LIMIT 1",
                    (device_id, scanned_from, *buffer),
                )
                previous = found[0] if found else None
            if previous is None:
                continue  # the buffer's first snapshot: nothing to miss
            oldest = min(
                (index for index, key in enumerate(keys) if _KEY_BUFFER(key) == buffer),
                key=lambda index: keys[index][0],
            )
            gaps.append(
                Gap(
                    device=device_name,
                    run_id=run_id,
                    missing_since=_from_epoch(previous[1]),
                    missing_until=_from_epoch(utcs[oldest]),
                    missing_since_local=_local_text(int(previous[0])),
                    missing_until_local=_local_text(keys[oldest][0]),
                    slot=buffer[0] or None,
                    cpu=buffer[1] or None,
                )
            )
        return tuple(gaps)

    def _insert_rows(self, rows: list[Row]) -> list[tuple[int, int, int, str, str]]:
        """Insert deletion rows; return (peer_id, reason_id, t_utc, slot, cpu) of those inserted."""
        if self.dialect is Dialect.SQLITE:
            # BEGIN IMMEDIATE made this the only writer: the diff above is exact, and a
            # conflict here would be a bug, so it raises instead of being skipped.
            self._conn.executemany(_INSERT_DELETIONS, rows)
            return list(map(_INSERTED, rows))
        # PostgreSQL: another collector may have stored some of these rows since the diff
        # (the device row lock makes that unlikely, not impossible after a schema race):
        # ON CONFLICT skips them and RETURNING says what really went in.
        return [
            (int(peer), int(reason), int(utc), str(slot), str(cpu))
            for peer, reason, utc, slot, cpu in self.fetch(_INSERT_DELETIONS_PG, _pg_arrays(rows))
        ]

    def _roll_up(
        self,
        device_id: int,
        peer_ids: Sequence[int],
        reason_ids: Sequence[int],
        utcs: Sequence[int],
        is_new: bool,
    ) -> None:
        """Add inserted rows (as parallel columns) to the roll-up tables."""
        # Counter over zipped columns counts in C: no Python call per row.
        days = [utc // 86400 for utc in utcs]
        by_reason = Counter(zip(days, reason_ids, strict=True))
        ordered = sorted(zip(days, utcs, strict=True))
        newest = dict(ordered)  # the last (largest) instant of each day wins
        oldest = dict(reversed(ordered))
        bits = self._interned.reason_bits
        cells: dict[int, _DayCell] = {
            day: _DayCell(count, newest[day], oldest[day], 0, {})
            for day, count in Counter(days).items()
        }
        for day, reason_id in by_reason:
            cells[day].codes |= bits[reason_id]
        for (day, peer_id), count in Counter(zip(days, peer_ids, strict=True)).items():
            cells[day].peers[peer_id] = count
        if not is_new:
            # The device's own rows (its lock is held): read, merge in Python, write back.
            for day, n, high, low, codes, peers in self.fetch(
                "SELECT day, n, newest, oldest, codes, peers FROM roll_device "
                "WHERE device_id = ? AND day >= ? AND day <= ?",
                (device_id, min(cells), max(cells)),
            ):
                cell = cells.get(int(day))
                if cell is not None:
                    cell.merge(int(n), int(high), int(low), int(codes), peers)
        self._upsert(
            "roll_device", [(device_id, day, *cells[day].values()) for day in sorted(cells)]
        )
        # Sorted: concurrent PostgreSQL writers lock these shared cells in the same order.
        self._upsert("roll_reason", [(*key, n) for key, n in sorted(by_reason.items())])

    def _upsert(self, table: str, rows: list[Row]) -> None:
        """Write roll-up cells (roll_device: replace; others: add counts, keep newest)."""
        sql = self._upsert_sql.get(table)
        if sql is None:
            sql = self._upsert_sql[table] = _upsert_statement(TABLES[table], self.dialect)
        if self.dialect is Dialect.SQLITE:
            self._conn.executemany(sql, rows)
        else:
            self._conn.execute(self._sql(sql), _pg_arrays(rows))

    # -- maintenance ---------------------------------------------------------------------

    def prune_count(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """How many deletions :meth:`prune` would remove now (it changes nothing)."""
        cutoff = (now or datetime.now(UTC)) - older_than
        rows = self.fetch(
            "SELECT count(*) FROM deletions WHERE t_utc < ?", (int(cutoff.timestamp()),)
        )
        return int(rows[0][0])

    def prune(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete deletions older than ``older_than`` (and runs, gaps started before).

        Devices remember the cut-off, so the same old rows still in a device's buffer
        are not stored again as new at the next collection. The roll-ups are rebuilt
        from the rows that remain (a full pass: prune is a daily chore, not a hot path).

        Returns:
            How many deletions were removed.
        """
        cutoff = (now or datetime.now(UTC)) - older_than
        seconds = int(cutoff.timestamp())
        with self.transaction():
            removed = self._execute("DELETE FROM deletions WHERE t_utc < ?", (seconds,))
            self._execute(
                "UPDATE devices SET pruned_until = ? WHERE pruned_until < ?", (seconds, seconds)
            )
            self._execute(
                "DELETE FROM gaps WHERE run_id IN (SELECT id FROM runs WHERE started < ?)",
                (seconds,),
            )
            self._execute(
                "DELETE FROM device_runs WHERE run_id IN (SELECT id FROM runs WHERE started < ?)",
                (seconds,),
            )
            self._execute("DELETE FROM runs WHERE started < ?", (seconds,))
            if removed:
                self.rebuild_rollups()
        return removed

    def rebuild_rollups(self) -> None:
        """Recompute the roll-up tables from ``deletions`` (after a prune, or to repair)."""
        with self.transaction():
            if self.dialect is Dialect.POSTGRES:
                # Writers update cells as they go: keep them out while the tables are redone.
                self._execute(f"LOCK TABLE {', '.join(ROLLUPS)}")
            for table in ROLLUPS:
                self._execute(f"DELETE FROM {table}")
            self._load_interned()
            bits = self._interned.reason_bits
            cells: dict[tuple[int, int], _DayCell] = {}
            for device_id, day, n, newest, oldest in self.fetch(
                "SELECT device_id, t_utc / 86400 AS day, count(*), max(t_utc), min(t_utc) "
                "FROM deletions GROUP BY device_id, day"
            ):
                cells[(int(device_id), int(day))] = _DayCell(
                    int(n), int(newest), int(oldest), 0, {}
                )
            for device_id, day, reason_id in self.fetch(
                "SELECT DISTINCT device_id, t_utc / 86400, reason_id FROM deletions"
            ):
                cells[(int(device_id), int(day))].codes |= bits[int(reason_id)]
            for device_id, day, peer_id, n in self.fetch(
                "SELECT device_id, t_utc / 86400 AS day, peer_id, count(*) FROM deletions "
                "GROUP BY device_id, day, peer_id"
            ):
                cells[(int(device_id), int(day))].peers[int(peer_id)] = int(n)
            if cells:
                self._upsert(
                    "roll_device",
                    [(*key, *cell.values()) for key, cell in sorted(cells.items())],
                )
            self._execute(
                "INSERT INTO roll_reason (day, reason_id, n) "
                "SELECT t_utc / 86400, reason_id, count(*) FROM deletions "
                "GROUP BY t_utc / 86400, reason_id"
            )

    def integrity_check(self) -> list[str]:
        """Problems found in the database; an empty list means it is sound.

        SQLite: ``PRAGMA integrity_check``; both: no duplicate deletion keys, no device
        result pointing at a missing run or device, roll-ups adding up to the deletions.
        """
        problems: list[str] = []
        if self.dialect is Dialect.SQLITE:
            problems += [
                str(row[0]) for row in self.fetch("PRAGMA integrity_check") if row[0] != "ok"
            ]
        duplicates = self.fetch(
            f"SELECT count(*) FROM (SELECT 1 FROM deletions GROUP BY {', '.join(DEDUP_KEY)} "
            "HAVING count(*) > 1) AS duplicated"
        )[0][0]
        if duplicates:
            problems.append(f"{duplicates} duplicated deletion keys")
        orphans = self.fetch(
            "SELECT count(*) FROM device_runs WHERE run_id NOT IN (SELECT id FROM runs) "
            "OR device_id NOT IN (SELECT id FROM devices)"
        )[0][0]
        if orphans:
            problems.append(f"{orphans} device results without their run or device")
        total = self.count_deletions()
        for table in ROLLUPS:
            rolled = int(self.fetch(f"SELECT coalesce(sum(n), 0) FROM {table}")[0][0])
            if rolled != total:
                problems.append(f"roll-up {table} counts {rolled} deletions, not {total}")
        return problems

    # -- small queries ---------------------------------------------------------------------

    def count_deletions(self, device: str | None = None) -> int:
        if device is None:
            return int(self.fetch("SELECT count(*) FROM deletions")[0][0])
        return int(
            self.fetch(
                "SELECT count(*) FROM deletions d JOIN devices v ON v.id = d.device_id "
                "WHERE v.name = ?",
                (device,),
            )[0][0]
        )

    def deletions(self, device: str) -> list[OfflineRecord]:
        """A device's stored deletions, oldest first (identical rows repeated).

        Records as the device printed them: slot, cpu, VPN instance and IKE version are
        None where the layout printed none.
        """
        rows = self.fetch(
            "SELECT p.peer, d.port, r.reason, d.ike_version, d.t_local, d.slot, d.cpu, "
            "d.vpn_instance FROM deletions d JOIN devices v ON v.id = d.device_id "
            "JOIN peers p ON p.id = d.peer_id JOIN reasons r ON r.id = d.reason_id "
            "WHERE v.name = ? ORDER BY d.t_local, p.peer, r.reason, d.slot, d.cpu, "
            "d.vpn_instance, d.occurrence",
            (device,),
        )
        return [
            OfflineRecord.build(
                peer,
                reason,
                int(version) or None,
                _EPOCH + timedelta(seconds=int(local)),
                port=int(port) or None,
                slot=slot or None,
                cpu=cpu or None,
                vpn_instance=vpn or None,
            )
            for peer, port, reason, version, local, slot, cpu, vpn in rows
        ]

    def device_zones(self) -> dict[str, tzinfo]:
        """Each device's zone, to show its times in its own time (``--local-times``).

        The inventory zone the device was last stored with; else the offset its newest
        deletion was stored with (from ``display clock`` or assumed UTC); else none.
        """
        zones: dict[str, tzinfo] = {}
        for name, text in self.fetch("SELECT name, zone FROM devices WHERE zone IS NOT NULL"):
            try:
                zones[str(name)] = parse_zone(str(text))
            except ZoneError:
                continue
        rows = self.fetch(
            "SELECT v.name, d.t_local - d.t_utc FROM deletions d "
            "JOIN (SELECT device_id, max(t_local) AS t FROM deletions GROUP BY device_id) m "
            "ON d.device_id = m.device_id AND d.t_local = m.t "
            "JOIN devices v ON v.id = d.device_id"
        )
        for name, shift in rows:
            if str(name) not in zones:
                seconds = int(shift)
                zones[str(name)] = UTC if not seconds else timezone(timedelta(seconds=seconds))
        return zones

    def known_command(self, device: str) -> str | None:
        """The command ``device`` last answered (None: never stored, or no command known).

        The transport starts with it, so a device that refused ``display ike
        offline-info`` (NE40E/NE8000) is asked ``display ike offline history`` directly.
        """
        rows = self.fetch("SELECT ike_command FROM devices WHERE name = ?", (device,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def known_commands(self) -> dict[str, str]:
        """Every device's last answered command, by device name, in one query (for a run)."""
        return {
            str(name): str(command)
            for name, command in self.fetch(
                "SELECT name, ike_command FROM devices WHERE ike_command IS NOT NULL"
            )
        }

    def last_run_id(self) -> RunId | None:
        rows = self.fetch("SELECT max(id) FROM runs")
        return None if rows[0][0] is None else RunId(int(rows[0][0]))

    def new_by_reason(self, run_id: int) -> dict[str, int]:
        """Deletions first seen in ``run_id``, by reason code (for ``--fail-on``)."""
        codes: dict[int, str] = dict(self.fetch("SELECT id, reason_code FROM reasons"))
        counts: dict[str, int] = {}
        for (text,) in self.fetch(
            "SELECT new_reasons FROM device_runs WHERE run_id = ? AND new_reasons IS NOT NULL",
            (run_id,),
        ):
            for reason_id, count in json.loads(text).items():
                code = str(codes[int(reason_id)])
                counts[code] = counts.get(code, 0) + int(count)
        return counts

    def gaps(self, run_id: int | None = None) -> list[Gap]:
        """Recorded gaps, of one run or all, oldest first."""
        where, params = ("WHERE g.run_id = ?", (run_id,)) if run_id is not None else ("", ())
        rows = self.fetch(
            "SELECT v.name, g.run_id, g.missing_since_utc, g.missing_until_utc, "
            "g.missing_since_local, g.missing_until_local, g.slot, g.cpu FROM gaps g "
            f"JOIN devices v ON v.id = g.device_id {where} ORDER BY g.id",
            params,
        )
        return [
            Gap(
                name,
                int(run),
                _from_epoch(since),
                _from_epoch(until),
                since_local,
                until_local,
                slot,
                cpu,
            )
            for name, run, since, until, since_local, until_local, slot, cpu in rows
        ]


def _fixed_shift(zone: tzinfo) -> int | None:
    """The UTC offset in seconds of a fixed-offset zone; None for zones with rules."""
    if isinstance(zone, timezone):
        offset = zone.utcoffset(None)
        return int(offset.total_seconds()) if offset is not None else 0
    return None


@lru_cache(maxsize=256)
def _utc_seconds_function(zone: tzinfo) -> Callable[[int], int]:
    """A fast local-epoch-seconds -> UTC-epoch-seconds function for one zone.

    Cached per zone, with its per-hour offsets: the devices of a fleet share a few zones,
    so after the first device almost every record is one dict lookup.
    """
    shift = _fixed_shift(zone)
    if shift is not None:
        return lambda local: local - shift
    hours: dict[int, int] = {}

    def offset_of(local: int) -> int:
        # fold=0: an ambiguous local time (DST end) is read as its first occurrence.
        moment = (_EPOCH + timedelta(seconds=local)).replace(tzinfo=zone, fold=0)
        return local - int(moment.timestamp())

    def named(local: int) -> int:
        # One zoneinfo lookup per local hour: the offset is the same at both ends of
        # the hour unless a transition falls inside it, then every second is asked.
        hour = local // 3600
        shift = hours.get(hour)
        if shift is None:
            first, last = offset_of(hour * 3600), offset_of(hour * 3600 + 3599)
            shift = hours[hour] = first if first == last else _NO_SHIFT
        if shift == _NO_SHIFT:
            return local - offset_of(local)
        return local - shift

    return named


def _upsert_statement(table: Table, dialect: Dialect) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` writing a batch of roll-up cells.

    ``roll_device`` rows come merged from Python (replaced); other cells add counts.
    """
    names = [column.name for column in table.columns]
    larger = "max" if dialect is Dialect.SQLITE else "greatest"
    merge = {
        "n": f"n = {table.name}.n + excluded.n",
        "newest": f"newest = {larger}({table.name}.newest, excluded.newest)",
    }
    replace = table.name == "roll_device"
    updates = ", ".join(
        f"{name} = excluded.{name}" if replace else merge[name]
        for name in names
        if name not in table.primary_key
    )
    conflict = f"ON CONFLICT ({', '.join(table.primary_key)}) DO UPDATE SET {updates}"
    if dialect is Dialect.SQLITE:
        values = f"VALUES ({', '.join('?' * len(names))})"
    else:
        # One statement per batch: arrays in, rows out of unnest (no per-row round trip).
        types = {ColumnType.TEXT: "text[]"}
        arrays = ", ".join(f"?::{types.get(c.type, 'bigint[]')}" for c in table.columns)
        values = f"SELECT * FROM unnest({arrays})"
    return f"INSERT INTO {table.name} ({', '.join(names)}) {values} {conflict}"


def _pg_arrays(rows: Sequence[Row]) -> list[Any]:
    """Rows as one array parameter per column, for ``unnest`` (PostgreSQL).

    Integer columns go as array literals built with ``str.join``: psycopg's list dumper
    escapes element by element (a regex per value), which cost ~5 us per stored row.
    Text columns stay lists for psycopg to escape (JSON, names), but for the common
    all-empty one (a device's slot, cpu or VPN instance where the layout prints none).
    """
    arrays: list[Any] = []
    for column in zip(*rows, strict=True):
        if isinstance(column[0], int):
            arrays.append("{" + ",".join(map(str, column)) + "}")
        elif not any(column):
            arrays.append("{" + ",".join(['""'] * len(column)) + "}")
        else:
            arrays.append(list(column))
    return arrays


class _DayCell:
    """One device's deletions of one UTC day, as ``roll_device`` holds them."""

    __slots__ = ("codes", "n", "newest", "oldest", "peers")

    def __init__(self, n: int, newest: int, oldest: int, codes: int, peers: dict[int, int]) -> None:
        self.n = n
        self.newest = newest
        self.oldest = oldest
        self.codes = codes
        self.peers = peers

    def add(self, peer_id: int, utc: int, bit: int) -> None:
        self.n += 1
        if utc > self.newest:
            self.newest = utc
        elif utc < self.oldest:
            self.oldest = utc
        self.codes |= bit
        self.peers[peer_id] = self.peers.get(peer_id, 0) + 1

    def merge(self, n: int, newest: int, oldest: int, codes: int, peers: str) -> None:
        """Fold in the stored cell of the same day."""
        self.n += n
        self.newest = max(self.newest, newest)
        self.oldest = min(self.oldest, oldest)
        self.codes |= codes
        for key, count in json.loads(peers).items():
            self.peers[int(key)] = self.peers.get(int(key), 0) + int(count)

    def values(self) -> tuple[int, int, int, int, str]:
        return (
            self.n,
            self.newest,
            self.oldest,
            self.codes,
            json.dumps(self.peers, separators=(",", ":")),
        )


_DELETION_COLUMNS = tuple(column.name for column in TABLES["deletions"].columns)
_INSERT_DELETIONS = (
    f"INSERT INTO deletions ({', '.join(_DELETION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_DELETION_COLUMNS))})"
)
_INSERT_DELETIONS_PG = (
    f"INSERT INTO deletions ({', '.join(_DELETION_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(
        "?::text[]" if column.type is ColumnType.TEXT else "?::bigint[]"
        for column in TABLES["deletions"].columns
    )
    + f") ON CONFLICT ({', '.join(DEDUP_KEY)}) DO NOTHING "
    "RETURNING peer_id, reason_id, t_utc, slot, cpu"
)
_INSERTED = itemgetter(
    *(_DELETION_COLUMNS.index(name) for name in ("peer_id", "reason_id", "t_utc", "slot", "cpu"))
)
"""(peer_id, reason_id, t_utc, slot, cpu) of a deletion row, as RETURNING gives them."""
_STORED_KEY = itemgetter(*range(8))
"""The ``Key`` of a row of the overlap scan (its columns in ``Key`` order, then t_utc)."""


def _full_buffers(
    records: Sequence[OfflineRecord],
    declared: int | Mapping[tuple[str | None, str | None], int] | None,
) -> frozenset[Buffer]:
    """The buffers of a snapshot that are full: 200 rows, or the device declared 200.

    Examples:
        >>> rows = [OfflineRecord.build("p", "dpd timeout", 2, _EPOCH, slot="1")] * 200
        >>> sorted(_full_buffers(rows, {("3", None): 200}))
        [('1', ''), ('3', '')]
        >>> sorted(_full_buffers(rows[:5], 200))
        [('1', '')]
    """
    if len(records) < FULL_BUFFER and not declared:
        return frozenset()
    counts = Counter(map(attrgetter("slot", "cpu"), records))
    if isinstance(declared, Mapping):
        counts.update({buffer: n for buffer, n in declared.items() if n >= FULL_BUFFER})
    elif declared is not None and declared >= FULL_BUFFER and len(counts) == 1:
        counts[next(iter(counts))] = declared
    return frozenset(
        (slot or NO_TEXT, cpu or NO_TEXT) for (slot, cpu), n in counts.items() if n >= FULL_BUFFER
    )


def _connect_sqlite(path: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        connection = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        tables = {
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables and "meta" not in tables:  # refused before WAL mode changes their file
            connection.close()
            raise StoreError(_foreign(str(path), tables))
        connection.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a power cut may lose the last commits, never corrupts, and
        # a killed process loses nothing committed (the WAL is in the OS page cache).
        connection.execute("PRAGMA synchronous = NORMAL")
        # A bigger page cache (64 MiB) and memory-mapped reads keep a fleet's b-tree pages
        # hot across devices; temp b-trees of report GROUP BYs stay in memory.
        connection.execute("PRAGMA cache_size = -65536")
        connection.execute("PRAGMA mmap_size = 268435456")
        connection.execute("PRAGMA temp_store = MEMORY")
    except (OSError, sqlite3.Error) as error:
        raise StoreError(f"cannot open the history database {path}: {error}") from None
    return connection


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a PostgreSQL --db needs psycopg: pip install 'collect-ike-offline[postgres]'"
        ) from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreError(f"cannot connect to the history database: {message}") from None


def open_store(
    url_or_path: str | os.PathLike[str] | None = None,
    *,
    keep_raw: bool = False,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    create: bool = True,
) -> Store:
    """Open (and create, if needed and ``create``) the history store.

    Args:
        url_or_path: ``postgresql://user@host/db`` for PostgreSQL, a file path for SQLite,
            or None for the per-user default (:func:`default_db_path`).
        keep_raw: Store each device's raw output (zlib-compressed) for audit.
        busy_timeout: Seconds a SQLite writer waits for another one.
        create: False: never create a schema (readers: ``report``, ``prune``).

    Raises:
        StoreError: the database cannot be opened or reached, is another program's
            (no schema marker of ours), has no history (``create=False``), a URL of an
            unknown scheme, or of a newer schema.
    """
    target = default_db_path() if url_or_path is None else url_or_path
    text = os.fspath(target)
    store: Store
    scheme = _URL_SCHEME.match(text)
    if scheme is not None and not is_postgres_url(text):
        raise StoreError(
            f"--db {scheme.group(1)}://...: unknown database URL scheme {scheme.group(1)!r}"
            " (use postgresql://user@host/db or a SQLite file path)"
        )
    if is_postgres_url(text):
        store = Store(_connect_postgres(text), Dialect.POSTGRES, text, keep_raw=keep_raw)
    else:
        path = Path(text).expanduser()
        store = Store(
            _connect_sqlite(path, busy_timeout), Dialect.SQLITE, str(path), keep_raw=keep_raw
        )
    try:
        store.create_schema(create)
    except Exception as error:
        store.close()
        if isinstance(error, StoreError):
            raise
        raise StoreError(
            f"{store.display_target}: cannot create the history schema: {error}"
        ) from None
    return store
