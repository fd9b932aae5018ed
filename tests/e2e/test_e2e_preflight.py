"""Preflight, end to end through the CLI: settings that would fail a run are refused before
any device is contacted (exit 2, one line naming the option, path or line), and a database
that is not ours is never written to."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Run, collect, invoke

from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "preflight-Pw-31"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    directory = tmp_path_factory.mktemp("preflight")
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 3, "seed": 5}}},
        "devices": [{"name": "only"}],
    }
    with start_fleet(spec, password=PASSWORD, inventory=directory / "inv") as running:
        yield running


def run(fleet: FleetThread, tmp_path: Path, *args: str, command: str = "collect") -> Run:
    fleet.device("only").clear_journal()
    if command != "collect":
        return invoke(command, *args, password=PASSWORD)
    return collect(fleet.inventory_path, tmp_path, *args, password=PASSWORD, timeout=20)


def untouched(fleet: FleetThread) -> bool:
    return fleet.device("only").journal() == []


def test_output_into_a_missing_directory(fleet: FleetThread, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "ike.json"
    result = run(fleet, tmp_path, "--output", str(target))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"collect-ike-offline: error: --output {target}: directory {target.parent} does not"
        " exist: create it first"
    ]
    assert untouched(fleet)
    assert not (tmp_path / "history.sqlite3").exists()


def test_prometheus_into_a_directory(fleet: FleetThread, tmp_path: Path) -> None:
    result = run(fleet, tmp_path, "--prometheus", str(tmp_path))
    assert result.code == 2
    assert "'--prometheus'" in result.stderr and "is a directory" in result.stderr
    assert untouched(fleet)


def foreign_sqlite(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE devices (id INTEGER PRIMARY KEY, owner TEXT)")
        connection.execute("INSERT INTO devices (owner) VALUES ('another program')")
    connection.close()
    return path.read_bytes()


def test_foreign_sqlite_file_is_refused_and_left_alone(fleet: FleetThread, tmp_path: Path) -> None:
    db = tmp_path / "theirs.sqlite3"
    before = foreign_sqlite(db)
    result = run(fleet, tmp_path, "--db", str(db))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"collect-ike-offline: error: {db}: not a collect-ike-offline history database (it"
        " holds other tables: devices; no schema marker of ours): point --db at a new file or"
        " database"
    ]
    assert db.read_bytes() == before  # not even its journal mode changed
    assert untouched(fleet)
    for command in ("report", "prune"):
        extra = ["--older-than", "90d"] if command == "prune" else []
        result = run(fleet, tmp_path, "--db", str(db), *extra, command=command)
        assert result.code == 2, result.stderr
        assert "not a collect-ike-offline history database" in result.stderr
        assert db.read_bytes() == before


def test_report_and_prune_never_create_a_schema(fleet: FleetThread, tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite3"
    sqlite3.connect(db).close()  # an existing, empty SQLite file
    for args in (["report"], ["prune", "--older-than", "90d"]):
        result = run(fleet, tmp_path, "--db", str(db), *args[1:], command=args[0])
        assert result.code == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"collect-ike-offline: error: {db}: no collect-ike-offline history there yet: run"
            " 'collect-ike-offline collect' first, or point --db at the history"
        ]
        with sqlite3.connect(db) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
        connection.close()
        assert tables == []
    # A history made by collect is then read by report.
    assert run(fleet, tmp_path, "--db", str(db), "--quiet").code == 0
    assert run(fleet, tmp_path, "--db", str(db), command="report").code == 0


def test_unknown_url_scheme(
    fleet: FleetThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(fleet, tmp_path, "--db", "mysql://ike@db.example/ike")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "collect-ike-offline: error: --db mysql://...: unknown database URL scheme 'mysql'"
        " (use postgresql://user@host/db or a SQLite file path)"
    ]
    assert not (tmp_path / "mysql:").exists()
    assert untouched(fleet)


def test_known_hosts_with_a_bad_line(fleet: FleetThread, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        "# ours\n"
        "10.0.0.1 ssh-ed25519"
        " AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
        "this is not a known_hosts line at all\n"
    )
    result = run(fleet, tmp_path, "--known-hosts", str(known))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"collect-ike-offline: error: --known-hosts {known}:3: unknown key type 'is': fix or"
        " remove the line (OpenSSH format: host[,host...] key-type base64-key)"
    ]
    assert untouched(fleet)
    known.write_bytes(b"\x00\xff\xfe garbage\n")
    result = run(fleet, tmp_path, "--known-hosts", str(known))
    assert result.code == 2
    assert f"--known-hosts {known}:1: not text (binary data)" in result.stderr
