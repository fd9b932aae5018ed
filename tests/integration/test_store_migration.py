"""Schema version 2 -> 3: a database written by the version 2 collector, opened by this one.

The v2 database is rebuilt from ``fixtures/store_v2/store_v2.json`` (the DDL and every row
the version 2 collector wrote; see ``store_v2_fleet.py``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from store_v2_fleet import FIXTURE, REPORT_AT, fleet_runs, ingest, report_numbers, rows_of

from collector.core.aggregate import FleetReport
from collector.history.report import history_report
from collector.history.schema import NO_TEXT, SCHEMA_VERSION, TABLES, Dialect
from collector.history.store import Store, StoreError, is_postgres_url, open_store


def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def build_v2(target: str, *, before: tuple[str, ...] = ()) -> dict[str, Any]:
    """Create the version 2 database in ``target`` (after running ``before``)."""
    data = _load()
    if is_postgres_url(target):
        import psycopg

        connection: Any = psycopg.connect(target, autocommit=True)
        dialect, mark = Dialect.POSTGRES, "%s"
    else:
        connection = sqlite3.connect(target, isolation_level=None)
        dialect, mark = Dialect.SQLITE, "?"
    try:
        for statement in (*before, *data["ddl"][dialect.value]):
            connection.execute(statement)
        for name, columns, rows in rows_of(data):
            for values in rows:
                connection.execute(
                    f"INSERT INTO {name} ({', '.join(columns)}) "
                    f"VALUES ({', '.join([mark] * len(columns))})",
                    values,
                )
            if dialect is Dialect.POSTGRES and rows and "id" in columns:
                # The rows came with their ids: move the identity on, as v2's inserts did.
                connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}"
                )
    finally:
        connection.close()
    return data


def _fresh_report(tmp_path: Path) -> FleetReport:
    """The same fleet collected into a new (version 3) database."""
    with open_store(str(tmp_path / "fresh.sqlite3")) as fresh:
        ingest(fresh)
        return history_report(fresh, generated_at=REPORT_AT, trend_interval="hour")


def _columns(store: Store) -> dict[str, list[tuple[str, bool]]]:
    """Each table's columns in order, with NOT NULL, as the database has them."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for table in TABLES:
        if store.dialect is Dialect.SQLITE:
            rows = [(r[1], bool(r[3] or r[5])) for r in store.fetch(f"PRAGMA table_info({table})")]
        else:
            rows = [
                (str(name), nullable == "NO")
                for name, nullable in store.fetch(
                    "SELECT column_name, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = ? "
                    "ORDER BY ordinal_position",
                    (table,),
                )
            ]
        found[table] = rows
    return found


def test_v2_database_is_carried_forward(db_target: str, tmp_path: Path) -> None:
    data = build_v2(db_target)
    v2 = {name: (columns, rows) for name, columns, rows in rows_of(data)}
    with open_store(db_target) as store:
        # The migration recorded itself, and the tables are those of a new database.
        assert [v for (v,) in store.fetch("SELECT version FROM schema_version ORDER BY 1")] == [
            2,
            3,
        ]
        assert store.fetch("SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]
        assert SCHEMA_VERSION == 3
        expected_columns = {
            name: [
                (c.name, c.not_null or c.name == "id" or c.name in table.primary_key)
                for c in table.columns
            ]
            for name, table in TABLES.items()
        }
        assert _columns(store) == expected_columns
        assert store._existing_tables() - {"sqlite_sequence"} == set(TABLES)  # no leftovers
        # Every row survives, as it was; deletions of one buffer and no VPN.
        columns, rows = v2["deletions"]
        kept = store.fetch(f"SELECT {', '.join(columns)}, vpn_instance, slot, cpu FROM deletions")
        assert sorted(kept) == sorted((*row, NO_TEXT, NO_TEXT, NO_TEXT) for row in rows)
        assert len(kept) == 411
        for name in ("runs", "devices", "device_groups", "peers", "gaps", "roll_reason"):
            columns, rows = v2[name]
            assert sorted(store.fetch(f"SELECT {', '.join(columns)} FROM {name}")) == sorted(
                tuple(row) for row in rows
            ), name
        assert store.fetch("SELECT DISTINCT slot, cpu FROM gaps") == [(None, None)]
        assert store.fetch("SELECT DISTINCT ike_command FROM devices") == [(None,)]
        # Reasons v2 stored as unknown have their codes now; the rest kept theirs.
        reasons = {
            text: (code, category)
            for text, code, category in store.fetch(
                "SELECT reason, reason_code, category FROM reasons"
            )
        }
        assert reasons == {
            "Receive backup delete info": ("backup_delete_info", "ha"),
            "dpd timeout": ("dpd_timeout", "liveness"),
            "hardware-timeout": ("hardware_timeout", "hardware"),
            "kick old sa with same flow": ("kick_old_sa_same_flow", "rekey"),
            "tunnel fell over": ("unknown", "unknown"),
            "peer request": ("peer_request", "administrative"),
            "phase2 sa replace": ("phase2_sa_replace", "rekey"),
        }
        assert store.integrity_check() == []

        # The report: the numbers v2 printed, with the unknown split into its new codes.
        report = history_report(store, generated_at=REPORT_AT, trend_interval="hour")
        expected = copy.deepcopy(data["report"])
        assert expected["by_reason"].pop("unknown") == [6, 1]
        expected["by_reason"].update(
            {
                "hardware_timeout": [3, 1],
                "kick_old_sa_same_flow": [1, 1],
                "backup_delete_info": [1, 1],
                "unknown": [1, 1],
            }
        )
        expected["unknown_reasons"] = 1
        expected["unknown_texts"] = {"tunnel fell over": 1}
        assert report_numbers(report) == expected
        # ... and exactly what collecting the same fleet into a new database reports,
        # down to the devices per reason of the latest run (v2's bit sets rebuilt).
        assert report == _fresh_report(tmp_path)
        assert [(r.reason_code, r.count, r.devices) for r in report.new_by_reason] == [
            ("dpd_timeout", 200, 1),
            ("hardware_timeout", 1, 1),
        ]

        # Collecting on: the last run again adds nothing,
        # and a new run gets a new id.
        run = store.start_run()
        assert run == 3
        again = [store.record_device(run, result) for result in fleet_runs()[-1]]
        assert sum(outcome.new_records for outcome in again) == 0
        assert store.count_deletions() == 411
    # Opening it again migrates nothing more.
    with open_store(db_target) as store:
        assert store.fetch("SELECT count(*) FROM schema_version") == [(2,)]


def test_failed_migration_leaves_the_v2_database_as_it_was(db_target: str) -> None:
    # A leftover table where the migration builds the new deletions: its copy fails.
    data = build_v2(db_target, before=("CREATE TABLE deletions_v3 (unrelated TEXT)",))
    with pytest.raises(
        StoreError, match="cannot migrate the history from schema version 2 to 3"
    ) as info:
        open_store(db_target)
    assert "\n" not in str(info.value) and "the database is unchanged" in str(info.value)
    if is_postgres_url(db_target):
        import psycopg

        connection: Any = psycopg.connect(db_target, autocommit=True)
    else:
        connection = sqlite3.connect(db_target)
    try:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchall() == [(2,)]
        count = connection.execute("SELECT count(*) FROM deletions").fetchall()[0][0]
        assert count == len(data["tables"]["deletions"]["rows"])
        reasons = connection.execute(
            "SELECT reason_code FROM reasons WHERE reason = 'hardware-timeout'"
        ).fetchall()
        assert reasons == [("unknown",)]
    finally:
        connection.close()


def test_collectors_opening_one_v2_database_at_once_migrate_it_once(db_target: str) -> None:
    build_v2(db_target)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            with open_store(db_target) as store:
                store.record_device(store.start_run(), fleet_runs()[-1][0])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with open_store(db_target) as store:
        assert [v for (v,) in store.fetch("SELECT version FROM schema_version ORDER BY 1")] == [
            2,
            3,
        ]
        assert store.count_deletions() == 411 and store.integrity_check() == []
