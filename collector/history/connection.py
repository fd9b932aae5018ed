"""The history's connection: SQLite or PostgreSQL, the dialect's SQL, one transaction.

:class:`Connection` is the base of :class:`~collector.history.store.Store`: the only place
the two drivers differ (placeholders, ``executemany``, server-side cursors, batch upserts
of roll-up cells as ``unnest`` arrays), the write transaction (``BEGIN IMMEDIATE`` on
SQLite), and the caches the ingest and the maintenance share (interned peer and reason ids).
:func:`connect_sqlite` and :func:`connect_postgres` open the driver's connection.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NewType, Self

from collector.core.errors import CollectorError
from collector.core.records import (
    UNKNOWN_REASON_CODE,
)
from collector.history.schema import (
    REASON_CODE_BITS,
    TABLES,
    ColumnType,
    Dialect,
    Table,
    placeholders,
)

RunId = NewType("RunId", int)

DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite writer waits for another writer's transaction (WAL allows one writer)."""

EPOCH = datetime(1970, 1, 1)
"""Naive midnight of 1970-01-01: device-local times are stored as seconds since it."""
Row = tuple[Any, ...]
"""One row as the driver returns it."""


class StoreError(CollectorError):
    """The store cannot be opened or used; the message is one line for the operator."""


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def is_database_error(error: BaseException) -> bool:
    """Whether ``error`` came from the database (its driver or server: a server that went
    away, a full disk, a lock), rather than from the collector's own code."""
    if isinstance(error, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def foreign_database(target: str, tables: set[str]) -> str:
    shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
    return (
        f"{target}: not a collect-ike-offline history database (it holds other tables:"
        f" {shown}; no schema marker of ours): point --db at a new file or database"
    )


def to_epoch(moment: datetime) -> float:
    """An aware instant as the store keeps it: POSIX seconds."""
    if moment.tzinfo is None:
        raise ValueError("store times must be aware (UTC)")
    return moment.timestamp()


def from_epoch(seconds: float | None) -> datetime | None:
    """Stored POSIX seconds back to an aware UTC instant (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class Interned:
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


class Connection:
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
        self._interned = Interned()
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- caches and batch writes the ingest and the maintenance share ---------------

    def _existing_tables(self) -> set[str]:
        if self.dialect is Dialect.SQLITE:
            rows = self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(row[0]) for row in rows}

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

    def _upsert(self, table: str, rows: list[Row]) -> None:
        """Write roll-up cells (roll_device: replace; others: add counts, keep newest)."""
        sql = self._upsert_sql.get(table)
        if sql is None:
            sql = self._upsert_sql[table] = _upsert_statement(TABLES[table], self.dialect)
        if self.dialect is Dialect.SQLITE:
            self._conn.executemany(sql, rows)
        else:
            self._conn.execute(self._sql(sql), pg_arrays(rows))


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


def pg_arrays(rows: Sequence[Row]) -> list[Any]:
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


def connect_sqlite(path: Path, busy_timeout: float) -> sqlite3.Connection:
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
            raise StoreError(foreign_database(str(path), tables))
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


def connect_postgres(url: str) -> Any:
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
