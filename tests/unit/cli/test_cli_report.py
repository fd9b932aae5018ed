"""``report`` and ``prune`` through click's CliRunner, over a history written with the store's
own API (no SSH: the end-to-end history tests are in test_e2e_history.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers import Run, invoke, on_a_terminal
from prometheus_client.parser import text_string_to_metric_families

from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind, OfflineRecord
from collector.history.store import open_store
from collector.output.machine import DEVICE_CSV_FIELDS

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def device(name: str, site: str) -> Device:
    return Device(
        name,
        f"{name}.example.net",
        groups=("core",),
        data=MappingProxyType({"site": site, "timezone": "UTC"}),
    )


def rec(hours_ago: float, peer: str, reason: str = "dpd timeout") -> OfflineRecord:
    return OfflineRecord.build(peer, reason, 2, NOW - timedelta(hours=hours_ago))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two runs: r1 (3 deletions in the last day, 1 a week ago), r2 failing on the second."""
    path = tmp_path / "history.sqlite3"
    with open_store(path) as store:
        run = store.start_run("inventory.yaml")
        store.record_device(
            run,
            DeviceResult(
                device("r1", "par1"),
                DeviceStatus.OK,
                records=(
                    rec(1, "10.0.0.1"),
                    rec(2, "10.0.0.1"),
                    rec(3, "10.0.0.2", "peer request"),
                    rec(24 * 7, "10.0.0.3"),
                ),
                started=datetime.now(UTC),
                finished=datetime.now(UTC),
            ),
        )
        store.record_device(
            run,
            DeviceResult.failure(device("r2", "lyo1"), ErrorKind.AUTH, "authentication failed"),
        )
        store.finish_run(run)
    return path


def report(db: Path, *args: str) -> Run:
    return invoke("report", "--db", str(db), *args)


def test_json_numbers_over_the_last_day(db: Path) -> None:
    result = report(db, "--since", "24h", "--format", "json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["totals"]["records"] == 3
    assert summary["totals"]["devices_failed"] == 1
    assert [f["name"] for f in summary["failing"]] == ["r2"]
    assert {r["reason_code"]: r["count"] for r in summary["by_reason"]} == {
        "dpd_timeout": 2,
        "peer_request": 1,
    }
    assert [(p["peer"], p["deletions"]) for p in summary["top_peers"]] == [("10.0.0.1", 2)]
    week = json.loads(report(db, "--since", "8d", "--format", "json").stdout)
    assert week["summary"]["totals"]["records"] == 4


def test_group_by_site_table_and_csv(db: Path) -> None:
    table = report(db, "--since", "7d", "--group-by", "site", "--flap-threshold", "3")
    assert table.code == 0
    assert "Deletions by site" in table.stdout
    assert "Flapping peers (at least 3 disruptive deletions)" in table.stdout
    rows = list(csv.reader(io.StringIO(report(db, "--format", "csv").stdout)))
    assert tuple(rows[0]) == DEVICE_CSV_FIELDS
    assert sorted(row[0] for row in rows[1:]) == ["r1", "r2"]


def test_output_and_prometheus_files(db: Path, tmp_path: Path) -> None:
    out, prom = tmp_path / "report.ndjson", tmp_path / "ike.prom"
    result = report(db, "--format", "ndjson", "--output", str(out), "--prometheus", str(prom))
    assert result.code == 0 and result.stdout == ""
    assert json.loads(out.read_text().splitlines()[-1])["type"] == "summary"
    names = {family.name for family in text_string_to_metric_families(prom.read_text())}
    assert {"ike_offline_devices", "ike_offline_deletions", "ike_offline_gaps"} <= names


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", "yesterday"], "neither a duration"),
        (["--since", "1d", "--until", "2d"], "--until must be after --since"),
        (["--group-by", "planet"], "--group-by"),
        (["--flap-threshold", "0"], "--flap-threshold"),
    ],
)
def test_bad_report_options_exit_2(db: Path, args: list[str], words: str) -> None:
    result = report(db, *args)
    assert result.code == 2
    assert words in result.stderr


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    result = report(missing)
    assert result.code == 2
    assert "no history database" in result.stderr and str(missing) in result.stderr
    assert not missing.exists()


def test_prune(db: Path) -> None:
    result = invoke("prune", "--db", str(db), "--older-than", "3d")
    assert result.code == 0, result.stderr
    assert "removed 1 deletion older than" in result.stderr
    summary = json.loads(report(db, "--since", "30d", "--format", "json").stdout)["summary"]
    assert summary["totals"]["records"] == 3
    bad = invoke("prune", "--db", str(db), "--older-than", "soon")
    assert bad.code == 2 and "--older-than" in bad.stderr
    quiet = invoke("prune", "--db", str(db), "--older-than", "90d", "-q")
    assert quiet.code == 0 and quiet.stderr == ""


def stored_total(db: Path) -> int:
    summary = json.loads(report(db, "--since", "3650d", "--format", "json").stdout)["summary"]
    return int(summary["totals"]["records"])


def test_prune_dry_run_changes_nothing(db: Path) -> None:
    before = stored_total(db)
    result = invoke("prune", "--db", str(db), "--older-than", "3d", "--dry-run")
    assert result.code == 0, result.stderr
    assert "would remove 1 deletion older than " in result.stderr
    assert result.stderr.rstrip().endswith("(dry run)")
    assert stored_total(db) == before


def prune_on_a_terminal(db: Path, answer: bytes, *args: str) -> tuple[int, str]:
    """``prune`` with its stdin on a real pseudo-terminal (as an operator runs it)."""
    code, _, stderr = on_a_terminal(
        "prune", "--db", str(db), "--older-than", "3d", *args, typed=answer
    )
    return code, stderr


def test_prune_asks_on_a_terminal(db: Path) -> None:
    before = stored_total(db)
    code, stderr = prune_on_a_terminal(db, b"n\n")
    assert code == 1, stderr
    assert "Remove 1 deletion older than " in stderr
    assert "cancelled; nothing removed" in stderr
    assert stored_total(db) == before
    code, stderr = prune_on_a_terminal(db, b"y\n")
    assert code == 0, stderr
    assert "removed 1 deletion" in stderr
    assert stored_total(db) == before - 1


def test_prune_yes_does_not_ask(db: Path) -> None:
    before = stored_total(db)
    code, stderr = prune_on_a_terminal(db, b"", "--yes")
    assert code == 0, stderr
    assert "Remove " not in stderr
    assert stored_total(db) == before - 1
