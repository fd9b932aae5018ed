"""The history's upkeep: schema creation and migration, prune, roll-up rebuild, integrity.

Schema versions: a database of an older version is migrated when it is opened
(``schema.MIGRATIONS``, one transaction, recorded in ``schema_version``). A database that
is not ours (other tables, no schema marker) is refused before anything is written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from collector import PROGRAM
from collector.core.records import (
    classify_reason,
)
from collector.history.connection import Interned, Row, StoreError, foreign_database
from collector.history.ingest import DayCell
from collector.history.queries import Queries
from collector.history.schema import (
    DEDUP_KEY,
    MIGRATIONS,
    ROLLUPS,
    SCHEMA_VERSION,
    TABLES,
    Dialect,
    ddl,
    migration_ddl,
)

APPLICATION = PROGRAM
"""The schema marker: ``meta`` row ``application`` (with ``schema_version``)."""


class Maintenance(Queries):
    """The part of :class:`~collector.history.store.Store` that changes the schema or many rows."""

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
            raise StoreError(foreign_database(self.display_target, existing))
        shared = self.dialect is Dialect.POSTGRES and not existing & set(TABLES)
        if existing and not shared:
            raise StoreError(foreign_database(self.display_target, existing))
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
        self._interned = Interned()
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
            cells: dict[tuple[int, int], DayCell] = {}
            for device_id, day, n, newest, oldest in self.fetch(
                "SELECT device_id, t_utc / 86400 AS day, count(*), max(t_utc), min(t_utc) "
                "FROM deletions GROUP BY device_id, day"
            ):
                cells[(int(device_id), int(day))] = DayCell(int(n), int(newest), int(oldest), 0, {})
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
