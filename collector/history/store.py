"""The history store: runs, devices, every deletion exactly once, gaps; SQLite or PostgreSQL.

:class:`Store` is the one object callers use; :func:`open_store` opens it. It is one
connection and one transaction boundary over one schema, assembled from the modules that
hold each part (mixins over one :class:`~collector.history.connection.Connection`, so every
part shares its connection, dialect and caches without a delegating method):

* :mod:`collector.history.connection`: drivers, dialect SQL, the transaction, caches;
* :mod:`collector.history.ingest`: runs and one device's result (de-dup, gaps, roll-ups);
* :mod:`collector.history.maintenance`: schema and migrations, prune, rebuild, integrity;
* :mod:`collector.history.queries`: the small read-only queries.

The schema is :mod:`collector.history.schema`, the paths :mod:`collector.history.paths`,
the fleet report :mod:`collector.history.report`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from collector.history.connection import (
    DEFAULT_BUSY_TIMEOUT,
    Row,
    RunId,
    StoreError,
    connect_postgres,
    connect_sqlite,
    is_database_error,
    is_postgres_url,
)
from collector.history.ingest import FULL_BUFFER, MAX_OFFSET, DeviceOutcome, Ingest
from collector.history.maintenance import Maintenance
from collector.history.paths import default_db_path
from collector.history.queries import Gap, buffer_label
from collector.history.schema import Dialect

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "FULL_BUFFER",
    "MAX_OFFSET",
    "DeviceOutcome",
    "Gap",
    "Row",
    "RunId",
    "Store",
    "StoreError",
    "buffer_label",
    "default_db_path",
    "is_database_error",
    "is_postgres_url",
    "open_store",
]


class Store(Ingest, Maintenance):
    """One connection to the history database. Not shared between threads."""


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


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
        store = Store(connect_postgres(text), Dialect.POSTGRES, text, keep_raw=keep_raw)
    else:
        path = Path(text).expanduser()
        store = Store(
            connect_sqlite(path, busy_timeout), Dialect.SQLITE, str(path), keep_raw=keep_raw
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
