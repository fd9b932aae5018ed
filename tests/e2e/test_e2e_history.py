"""History end to end: ``collect`` twice, deletions added by the mock between runs, buffer
wrap -> gap, the run lock, ``--fail-on``, ``--prometheus``, ``report --since``, ``prune``.

The real CLI (click's CliRunner) against mock fleets over real SSH; each test has its own
fleet and its own SQLite history in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import Run, collect, invoke
from prometheus_client.parser import text_string_to_metric_families

from collector.cli.lock import RunLock, default_lock_path
from collector.core.records import normalize_reason
from collector.history.store import open_store
from mock_devices.fleet import FleetThread
from mock_devices.tables import Row

PASSWORD = "canary-Hist-pw-9921"


class History:
    """A fleet, its inventory and one history database."""

    def __init__(self, fleet: FleetThread, directory: Path) -> None:
        self.fleet = fleet
        self.directory = directory
        self.db = directory / "history.sqlite3"
        self.known_hosts = directory / "known_hosts"
        assert fleet.inventory_path is not None
        self.inventory = fleet.inventory_path

    def collect(self, *args: str) -> Run:
        return collect(self.inventory, self.directory, "--format", "json", *args, password=PASSWORD)

    def report(self, *args: str) -> Run:
        return invoke("report", "--db", str(self.db), "--format", "json", *args, password=PASSWORD)

    def stored(self, name: str) -> Counter[tuple[Any, ...]]:
        with open_store(self.db) as store:
            return Counter(
                (r.peer, normalize_reason(r.reason), r.ike_version, r.offline_time)
                for r in store.deletions(name)
            )


def mock_rows(fleet: FleetThread, name: str) -> Counter[tuple[Any, ...]]:
    return Counter(
        (r.peer, normalize_reason(r.reason), r.version, r.time)
        for r in fleet.device(name).records()
    )


SMALL = {
    "defaults": {
        "username": "admin",
        "timezone": "UTC",
        "records": {"generate": {"count": 30, "seed": 5}},
    },
    "devices": [{"name": "ar-1"}, {"name": "fw-1", "layout": "firewall"}],
}


@pytest.fixture
def history(mock_fleet: Any, tmp_path: Path) -> History:
    return History(mock_fleet(SMALL, password=PASSWORD), tmp_path)


def new_records(run: Run) -> dict[str, int]:
    return {device["name"]: device["new_records"] for device in run.json()["devices"]}


def test_unchanged_fleet_adds_nothing_the_second_time(history: History) -> None:
    first = history.collect()
    assert first.code == 0, first.stderr
    assert new_records(first) == {"ar-1": 30, "fw-1": 30}
    second = history.collect()
    assert second.code == 0
    assert new_records(second) == {"ar-1": 0, "fw-1": 0}
    assert second.json()["summary"]["totals"]["new_records"] == 0
    for name in ("ar-1", "fw-1"):
        assert history.stored(name) == mock_rows(history.fleet, name)


def test_deletions_added_between_runs_are_stored_exactly_once(history: History) -> None:
    assert history.collect().code == 0
    ar = history.fleet.device("ar-1")
    added = ar.add_deletions(7)
    # Two identical deletions in the same second are two events, both kept.
    twin = Row(
        peer="192.0.2.9", reason="dpd timeout", version=2, time=ar.now().replace(microsecond=0)
    )
    ar.add_records([twin, twin])
    run = history.collect()
    assert run.code == 0
    assert new_records(run) == {"ar-1": len(added) + 2, "fw-1": 0}
    assert history.stored("ar-1") == mock_rows(history.fleet, "ar-1")
    assert history.stored("ar-1")[("192.0.2.9", "dpd timeout", 2, twin.time)] == 2
    again = history.collect()
    assert new_records(again) == {"ar-1": 0, "fw-1": 0}


def test_buffer_wrap_between_runs_is_reported_as_a_gap(history: History) -> None:
    assert history.collect().code == 0
    history.fleet.device("fw-1").add_deletions(230)  # more than the 200-entry buffer
    run = history.collect("--fail-on", "gaps>0")
    assert run.code == 4
    summary = run.json()["summary"]
    assert summary["totals"]["gaps"] == 1
    assert [gap["device"] for gap in summary["gaps"]] == ["fw-1"]
    assert "fw-1: the device's buffer wrapped since the previous run" in run.stderr
    assert "collect it at least every" in run.stderr
    report = history.report("--since", "7d")
    assert [gap["device"] for gap in report.json()["summary"]["gaps"]] == ["fw-1"]


def test_lock_held_exits_75_without_connecting(history: History) -> None:
    for device in history.fleet.devices:
        device.clear_journal()
    with RunLock(default_lock_path(str(history.db))):
        run = history.collect()
    assert run.code == 75
    assert "holds the lock" in run.stderr
    assert run.stdout == ""
    assert all(device.journal() == [] for device in history.fleet.devices)
    assert history.collect().code == 0  # released: the next run goes ahead


def test_fail_on_counts_new_deletions_of_this_run(history: History) -> None:
    assert history.collect("--fail-on", "new>100").code == 0
    ar = history.fleet.device("ar-1")
    now = ar.now().replace(microsecond=0)
    ar.add_records(
        [Row(peer=f"192.0.2.{n}", reason="dpd-timeout", version=2, time=now) for n in (1, 2, 3)]
    )
    run = history.collect("--fail-on", "dpd_timeout>2", "--fail-on", "new>100")
    assert run.code == 4
    assert "--fail-on dpd_timeout>2 breached: 3" in run.stderr
    assert run.json()["summary"]["totals"]["new_records"] == 3
    # The same deletions are not new any more: no breach.
    assert history.collect("--fail-on", "dpd_timeout>2").code == 0


def test_fail_on_new_ignores_rekeys_unless_include_routine(
    history: History, tmp_path: Path
) -> None:
    assert history.collect().code == 0
    ar = history.fleet.device("ar-1")
    now = ar.now().replace(microsecond=0)
    rekeys = [
        Row(peer="192.0.2.9", reason=reason, version=2, time=now - timedelta(seconds=n))
        for n, reason in enumerate(["phase2 sa replace", "phase1 sa replace"] * 3)
    ]
    ar.add_records([*rekeys, Row(peer="192.0.2.7", reason="dpd timeout", version=2, time=now)])
    metrics_path = tmp_path / "ike.prom"
    run = history.collect("--fail-on", "new>2", "--prometheus", str(metrics_path))
    assert run.code == 0, run.stderr  # 1 disruptive new deletion, 6 rekeys
    totals = run.json()["summary"]["totals"]
    assert (totals["new_records"], totals["new_disruptive"], totals["new_routine"]) == (7, 1, 6)
    metrics = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics_path.read_text())
        for sample in family.samples
        if not sample.labels
    }
    assert metrics["ike_offline_new_disruptive_deletions"] == 1
    assert metrics["ike_offline_new_routine_deletions"] == 6
    assert "192.0.2.9" not in [p["peer"] for p in run.json()["summary"]["top_peers"]]
    ar.add_records(
        [
            Row(peer="192.0.2.8", reason=reason, version=1, time=now)
            for reason in ("phase2 sa replace", "phase1 sa replace", "phase2 sa replace")
        ]
    )
    run = history.collect("--fail-on", "new>2", "--include-routine")
    assert run.code == 4
    assert "--fail-on new>2 breached: 3" in run.stderr
    assert "192.0.2.9" in [p["peer"] for p in run.json()["summary"]["top_peers"]]
    report = history.report("--since", "1d").json()["summary"]
    assert "192.0.2.9" not in [p["peer"] for p in report["top_peers"]]
    routine = sum(item["count"] for item in report["by_category"] if item["routine"])
    assert report["totals"]["routine"] == routine >= 9
    assert report["totals"]["disruptive"] == report["totals"]["records"] - routine


def test_prometheus_textfile_parses(history: History, tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "ike.prom"
    path.parent.mkdir()
    run = history.collect("--prometheus", str(path))
    assert run.code == 0
    metrics = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }
    assert metrics[("ike_offline_devices", (("status", "ok"),))] == 2
    assert metrics[("ike_offline_devices", (("status", "failed"),))] == 0
    assert sum(v for (name, _), v in metrics.items() if name == "ike_offline_new_deletions") == 60
    assert not [name for name, labels in metrics if any(k == "peer" for k, _ in labels)]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_output_file_is_written_atomically(history: History, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    target.write_text("old report\n")
    run = history.collect("--output", str(target))
    assert run.code == 0
    assert run.stdout == ""
    assert json.loads(target.read_text())["summary"]["totals"]["devices"] == 2
    assert sorted(os.listdir(target.parent)) == ["report.json"]  # no temp file left behind
    missing = tmp_path / "no-such-dir" / "report.json"
    failed = history.collect("--output", str(missing))
    assert failed.code == 2
    # Found before collecting (preflight), not after the whole fleet was read and stored.
    assert f"--output {missing}: directory {missing.parent} does not exist" in failed.stderr


def test_temp_files_of_a_killed_write_are_removed_by_the_next(
    history: History, tmp_path: Path
) -> None:
    """SIGKILL a process inside write_atomic (after the temp file is written, before the
    rename): the next collect --output/--prometheus to the same files removes its leftover
    once it is older than a minute, and leaves a young one (a write in progress) and files
    that are not ours alone."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    out.mkdir()
    code = (
        "import os, sys, time\n"
        "from collector.output import atomic\n"
        "def stuck(src, dst):\n"
        "    print('written', flush=True)\n"
        "    time.sleep(600)\n"
        "atomic.os.replace = stuck\n"
        "atomic.write_atomic(sys.argv[1], 'x' * 100000)\n"
    )
    leftovers = []
    for name in ("ike.json", "ike.prom"):
        victim = subprocess.Popen(
            [sys.executable, "-c", code, str(out / name)], stdout=subprocess.PIPE, text=True
        )
        assert victim.stdout is not None and victim.stdout.readline() == "written\n"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        (left,) = out.glob(f".{name}.*.tmp")
        leftovers.append(left)
    stale = time.time() - 120
    for left in leftovers:
        os.utime(left, (stale, stale))
    young = out / ".ike.json.young123.tmp"
    young.write_text("another writer, in progress")
    theirs = out / ".other.json.abc.tmp"
    theirs.write_text("not ours")
    os.utime(theirs, (stale, stale))

    run = history.collect("--output", str(out / "ike.json"), "--prometheus", str(out / "ike.prom"))
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["ike.json", "ike.prom", young.name, theirs.name]
    )
    assert json.loads((out / "ike.json").read_text())["summary"]["totals"]["devices"] == 2


DATED = {
    "defaults": {"username": "admin", "timezone": "UTC+08:00"},
    "devices": [
        {
            "name": "ar-dated",
            "site": "beijing",
            "records": [
                {"peer": "10.0.0.1", "reason": "dpd timeout", "time": "2026-01-01 10:00:00"},
                {"peer": "10.0.0.1", "reason": "dpd timeout", "time": "2026-01-01 11:00:00"},
                {"peer": "10.0.0.2", "reason": "peer request", "time": "2026-01-01 12:00:00"},
                {"peer": "10.0.0.1", "reason": "phase1 hard expiry", "time": "2026-01-03 09:00:00"},
                {"peer": "10.0.0.3", "reason": "dpd timeout", "time": "2026-01-03 10:00:00"},
            ],
        }
    ],
}


def test_report_since_until_numbers_and_prune(mock_fleet: Any, tmp_path: Path) -> None:
    history = History(mock_fleet(DATED, password=PASSWORD), tmp_path)
    assert history.collect().code == 0
    # Device time is UTC+8: 2026-01-01 10:00 there is 02:00 UTC.
    day1 = history.report("--since", "2026-01-01T00:00", "--until", "2026-01-02")
    assert day1.code == 0, day1.stderr
    totals = day1.json()["summary"]["totals"]
    assert totals["records"] == 3
    by_reason = {r["reason_code"]: r["count"] for r in day1.json()["summary"]["by_reason"]}
    assert by_reason == {"dpd_timeout": 2, "peer_request": 1}
    both = history.report("--since", "2026-01-01", "--until", "2026-01-04", "--group-by", "peer")
    counts = {c["key"]: c["deletions"] for c in both.json()["summary"]["by_group"]["counts"]}
    assert counts == {"10.0.0.1": 3, "10.0.0.2": 1, "10.0.0.3": 1}
    flapping = both.json()["summary"]["top_peers"]
    assert [(p["peer"], p["deletions"]) for p in flapping] == [("10.0.0.1", 3)]
    early = history.report("--since", "2026-01-01T02:30+00:00", "--until", "2026-01-01T03:30Z")
    assert early.json()["summary"]["totals"]["records"] == 1
    table = invoke(
        "report",
        "--db",
        str(history.db),
        "--since",
        "2026-01-01",
        "--group-by",
        "site",
        password=PASSWORD,
    )
    assert table.code == 0
    assert "Deletions by site" in table.stdout and "beijing" in table.stdout

    before = datetime.now(UTC) - datetime(2026, 1, 2, 12, tzinfo=UTC)
    older = f"{int(before / timedelta(hours=1))}h"  # cuts between the two days
    pruned = invoke("prune", "--db", str(history.db), "--older-than", older, password=PASSWORD)
    assert pruned.code == 0, pruned.stderr
    assert "removed 3 deletions" in pruned.stderr
    after = history.report("--since", "2025-12-01")
    assert after.json()["summary"]["totals"]["records"] == 2
    # The pruned rows are still in the device's buffer: not stored again as new.
    again = history.collect()
    assert new_records(again) == {"ar-dated": 0}
    assert history.report("--since", "2025-12-01").json()["summary"]["totals"]["records"] == 2


BUFFERS = {
    "defaults": {"username": "admin", "timezone": "Asia/Shanghai"},
    "devices": [
        {
            "name": "ne-1",
            "layout": "ne40e",
            "slots": [1, 3],
            "vpn_instances": ["vpna", "vpnb"],
            "records": {"generate": {"count": 200, "seed": 31, "same_across_buffers": 3}},
        },
        {
            "name": "fw-spu",
            "layout": "firewall",
            "spus": ["1/0", "1/1"],
            "records": {"generate": {"count": 40, "seed": 32}},
            "inventory_data": {"ike_spus": ["1/0", "1/1"]},
        },
    ],
}


def buffer_rows(fleet: FleetThread, name: str) -> Counter[tuple[Any, ...]]:
    """What the mock holds, as the store should keep it: per buffer, with the VPN."""
    return Counter(
        (
            r.peer,
            normalize_reason(r.reason),
            r.time,
            None if r.slot is None else str(r.slot),
            None if r.cpu is None else str(r.cpu),
            r.vpn,
        )
        for r in fleet.device(name).records()
    )


def stored_buffer_rows(db: Path, name: str) -> Counter[tuple[Any, ...]]:
    with open_store(db) as store:
        return Counter(
            (r.peer, normalize_reason(r.reason), r.offline_time, r.slot, r.cpu, r.vpn_instance)
            for r in store.deletions(name)
        )


def test_history_per_slot_and_spu_over_ssh(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet(BUFFERS, password=PASSWORD)
    history = History(fleet, tmp_path)
    first = history.collect()
    assert first.code == 0, first.stderr
    # NE40E: two full slots of 200, three rows printed identically in both: 400 deletions.
    assert new_records(first) == {"ne-1": 400, "fw-spu": 80}
    for name in ("ne-1", "fw-spu"):
        assert stored_buffer_rows(history.db, name) == buffer_rows(fleet, name)
    with open_store(history.db) as store:
        assert store.known_commands() == {
            "ne-1": "display ike offline history",
            "fw-spu": "display ike offline-info",
        }
        ne = store.deletions("ne-1")
        assert {r.ike_version for r in ne} == {None} and {r.slot for r in ne} == {"1", "3"}
        # The stored UTC instants are the mock's true ones (Asia/Shanghai).
        truth = sorted(int(moment.timestamp()) for moment in fleet.device("ne-1").records_utc())
        utcs = store.fetch(
            "SELECT d.t_utc FROM deletions d JOIN devices v ON v.id = d.device_id "
            "WHERE v.name = 'ne-1' ORDER BY d.t_utc"
        )
        assert [int(t) for (t,) in utcs] == truth
    again = history.collect()
    assert new_records(again) == {"ne-1": 0, "fw-spu": 0}
    # Slot 3 wraps (more than 200 new deletions); slot 1 gets a few: one gap, slot 3's.
    fleet.device("ne-1").add_deletions(230, buffer="3")
    fleet.device("ne-1").add_deletions(5, buffer="1")
    wrapped = history.collect("--fail-on", "gaps>0")
    assert wrapped.code == 4, wrapped.stderr
    assert new_records(wrapped) == {"ne-1": 205, "fw-spu": 0}
    gaps = wrapped.json()["summary"]["gaps"]
    assert [(gap["device"], gap["buffer"]) for gap in gaps] == [("ne-1", "slot 3")]
    assert "ne-1: the device's buffer (slot 3) wrapped since the previous run" in wrapped.stderr
    # Every row the device holds is stored, and so are those its buffers dropped.
    stored, held = stored_buffer_rows(history.db, "ne-1"), buffer_rows(fleet, "ne-1")
    assert held - stored == Counter()
    assert Counter(row[3] for row in (stored - held).elements()) == {"3": 200, "1": 5}
    report = history.report("--since", "30d")
    assert [(g["device"], g["buffer"]) for g in report.json()["summary"]["gaps"]] == [
        ("ne-1", "slot 3")
    ]
