"""History benchmark: ingest a synthetic fleet into the store, then time the reports.

    .venv/bin/python -m bench.bench_history --devices 5000 --records 200 --backend both

Per backend: ingest ``devices x records`` deletions through the real store API (one
``record_device`` transaction per device, as ``collect`` does), time the fleet report over
everything stored, a ``--since 24h`` report, and a re-collection of the unchanged fleet
(asserted to write no rows). PostgreSQL: ``--pg-url``, else a throwaway cluster started
like the test suite's (``tests/pg_server.py``). Prints a table; writes nothing to the
repository (``--markdown`` prints a block for docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tabulate import tabulate

from collector.core.aggregate import FleetReport
from collector.core.records import REASONS, Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.history.report import history_report
from collector.history.store import Store, open_store

NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
"""A fixed "now", so every run builds the same data; records span the week before it."""
SITES = ("bj", "sh", "gz", "sz", "cd", "wh", "xa", "hz")
GROUPS = ("core", "edge", "branch", "dc")
# Reason weights: liveness and rekey dominate real buffers.
WEIGHTS = (30, 8, 3, 4, 6, 10, 1, 2, 1, 1, 1, 12, 12, 2, 1, 5, 8)


@dataclass(frozen=True)
class Figures:
    backend: str
    records: int
    peers: int
    ingest_s: float
    ingest_cpu_s: float
    full_report_s: float
    since_report_s: float
    since_records: int
    recollect_s: float
    recollect_rows: int

    @property
    def ingest_rate(self) -> float:
        return self.records / self.ingest_s if self.ingest_s else 0.0


def _hub_count(devices: int) -> int:
    """One hub per ~50 devices (at least one): a hub-and-spoke IPsec fleet."""
    return max(1, devices // 50)


def _address(index: int) -> str:
    return f"10.{index // 250 % 256}.{index % 250}.1"


def _branch_hub_ids(branch: int, hubs: int) -> list[int]:
    rng = random.Random(branch * 7919)
    region = branch % max(1, hubs // 4 or 1)
    members = [hub for hub in range(hubs) if hub // 4 == region] or list(range(hubs))
    return rng.sample(members, min(len(members), rng.randint(2, 4)))


def _branch_hubs(branch: int, hubs: int) -> list[str]:
    return [_address(hub) for hub in _branch_hub_ids(branch, hubs)]


def fleet(devices: int, records: int, peers: str = "realistic") -> Iterator[DeviceResult]:
    """The same synthetic fleet every time: results built one device at a time.

    ``peers="realistic"``: hub and spoke. Devices 0 .. devices/50 - 1 are hubs (regions
    of 4); every other device is a branch with tunnels to 2-4 hubs of its region, and a
    hub's peers are the branches that chose it, so distinct peers ~ number of devices.
    A hub's 200-entry buffer covers its last day (many tunnels), a branch's 7 days.
    ``peers="random"``: the earlier model, each row a random peer out of 262,144
    addresses (about 250,000 distinct peers for 1,000,000 rows; no real fleet).
    """
    hubs = _hub_count(devices)
    hub_branches: dict[int, list[str]] = {}
    if peers == "realistic":
        for branch in range(hubs, devices):
            for hub in _branch_hub_ids(branch, hubs):
                hub_branches.setdefault(hub, []).append(_address(branch))
    for index in range(devices):
        rng = random.Random(index)
        device = Device(
            f"rt{index:05d}",
            _address(index),
            groups=(GROUPS[index % len(GROUPS)],),
            data=MappingProxyType({"site": SITES[index % len(SITES)], "timezone": "+08:00"}),
        )
        if peers == "realistic":
            mine = (
                hub_branches.get(index) or [_address(index + 1)]
                if index < hubs
                else _branch_hubs(index, hubs)
            )
            span = 86400 if index < hubs else 7 * 86400
        else:
            mine = []
            span = 7 * 86400
        # Newest first, as the device prints it; local +08:00.
        local_now = NOW.replace(tzinfo=None) + timedelta(hours=8)
        moment = local_now
        rows = []
        step = max(2, 2 * span // max(records, 1))
        for _ in range(records):
            moment -= timedelta(seconds=rng.randrange(1, step))
            reason = rng.choices(REASONS, WEIGHTS)[0]
            if mine:
                peer = rng.choice(mine)
            else:
                peer = f"172.{16 + rng.randrange(16)}.{rng.randrange(256)}.{rng.randrange(1, 64)}"
            rows.append(
                OfflineRecord.build(
                    peer, reason.text, rng.choice((1, 2)), moment, port=rng.choice((None, 500))
                )
            )
        yield DeviceResult(
            device, DeviceStatus.OK, tuple(rows), started=NOW, finished=NOW, attempts=1
        )


def ingest(store: Store, devices: int, records: int, peers: str) -> tuple[float, float, int]:
    """One run over the fleet: (wall s, this process's CPU s in the store API, rows written).

    The fleet is generated outside the timed calls. CPU time is reported too because the
    machine is shared: wall time includes waiting for a core.
    """
    spent = cpu = 0.0
    written = 0
    run = store.start_run("bench", None, "bench", started=NOW)
    for result in fleet(devices, records, peers):
        start, start_cpu = time.perf_counter(), time.process_time()
        written += store.record_device(run, result).new_records
        spent += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    start, start_cpu = time.perf_counter(), time.process_time()
    store.finish_run(run, finished=NOW)
    spent += time.perf_counter() - start
    cpu += time.process_time() - start_cpu
    return spent, cpu, written


def best_of(repeat: int, action: Callable[[], FleetReport]) -> tuple[float, FleetReport]:
    """The fastest of ``repeat`` runs (the machine is shared) and the report it made."""
    timings = []
    report = None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        report = action()
        timings.append(time.perf_counter() - start)
    assert report is not None
    return min(timings), report


def check(store: Store, report: FleetReport, since: datetime | None) -> None:
    """The report counts what the raw rows hold (roll-ups are not allowed to drift)."""
    where, params = ("WHERE t_utc >= ?", (int(since.timestamp()),)) if since else ("", ())
    records, peers = store.fetch(
        f"SELECT count(*), count(DISTINCT peer_id) FROM deletions {where}", params
    )[0]
    assert (report.totals.records, report.totals.peers) == (records, peers), "report drifted"


def measure(
    target: str, backend: str, devices: int, records: int, peers: str, repeat: int
) -> Figures:
    with open_store(target) as store:
        ingest_s, ingest_cpu, written = ingest(store, devices, records, peers)
        assert written == devices * records, f"{backend}: wrote {written} rows"
        total = store.count_deletions()
        full_s, full = best_of(repeat, lambda: history_report(store, generated_at=NOW))
        check(store, full, None)
        since = NOW - timedelta(hours=24)
        since_s, since_report = best_of(
            repeat, lambda: history_report(store, since=since, generated_at=NOW)
        )
        check(store, since_report, since)
        recollect_s, _, rewritten = ingest(store, devices, records, peers)
        assert rewritten == 0 and store.count_deletions() == total, "re-collection wrote rows"
        return Figures(
            backend,
            total,
            full.totals.peers,
            ingest_s,
            ingest_cpu,
            full_s,
            since_s,
            since_report.totals.records,
            recollect_s,
            rewritten,
        )


class _TimedConnection:
    """A sqlite3 connection that adds up the wall time of each kind of statement."""

    def __init__(self, conn: Any, spent: dict[str, list[float]]) -> None:
        self._conn = conn
        self._spent = spent

    def _timed(self, kind: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return call()
        finally:
            entry = self._spent.setdefault(kind, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    @staticmethod
    def _kind(sql: str) -> str:
        words = sql.replace("(", " ").split()
        if words[:2] == ["INSERT", "INTO"] or words[:1] == ["UPDATE"]:
            return " ".join(words[: 3 if words[0] == "INSERT" else 2])
        if words[:1] == ["SELECT"]:
            table = words[words.index("FROM") + 1] if "FROM" in words else "?"
            return f"SELECT ... FROM {table}"
        return " ".join(words[:2])

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self._kind(sql), lambda: self._conn.execute(sql, *args))

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(
            self._kind(sql) + " (executemany)", lambda: self._conn.executemany(sql, *args)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def breakdown(devices: int, records: int, peers: str) -> str:
    """Where SQLite ingest time goes: wall microseconds per record, per kind of statement."""
    spent: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-history-") as scratch,
        open_store(str(Path(scratch) / "history.sqlite3")) as store,
    ):
        store._conn = _TimedConnection(store._conn, spent)
        total, _, written = ingest(store, devices, records, peers)
    per = 1e6 / max(written, 1)
    rows = [
        [kind, f"{calls:,}", f"{seconds * per:.2f}"]
        for kind, (calls, seconds) in sorted(spent.items(), key=lambda item: -item[1][1])
        if seconds * per >= 0.005
    ]
    sql = sum(seconds for _, seconds in spent.values())
    rows.append(["all SQL statements", "", f"{sql * per:.2f}"])
    rows.append(["Python around them (keys, diff, roll-ups)", "", f"{(total - sql) * per:.2f}"])
    rows.append(["record_device, in all", "", f"{total * per:.2f}"])
    return tabulate(
        rows, ["SQLite ingest, by statement", "calls", "us per record"], tablefmt="github"
    )


@contextlib.contextmanager
def postgres_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import psycopg
    from pg_server import find_pg_bin, running_server

    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise SystemExit("bench_history: no PostgreSQL server binaries; give --pg-url")
    with running_server(pg_bin) as server:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        yield server.url("bench")


def table(rows: list[Figures]) -> str:
    header = (
        "| backend | records | peers | ingest s (CPU s) | records/s | full report s "
        "| --since 24h s (records) | re-collect s (rows written) |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in rows:
        lines.append(
            f"| {f.backend} | {f.records:,} | {f.peers:,} | {f.ingest_s:.2f} "
            f"({f.ingest_cpu_s:.2f}) | {f.ingest_rate:,.0f} | "
            f"{f.full_report_s:.3f} | {f.since_report_s:.3f} ({f.since_records:,}) | "
            f"{f.recollect_s:.2f} ({f.recollect_rows}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_history", description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument(
        "--peers",
        choices=("realistic", "random"),
        default="realistic",
        help="realistic: hub and spoke, distinct peers ~ devices; random: ~250k for 1M rows",
    )
    parser.add_argument("--repeat", type=int, default=3, help="report timings: best of N")
    parser.add_argument(
        "--pg-url", help="an EMPTY PostgreSQL database to use instead of a throwaway cluster"
    )
    parser.add_argument("--markdown", action="store_true", help="also print machine details")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also ingest once more into SQLite with every statement timed (by kind)",
    )
    args = parser.parse_args(argv)
    results: list[Figures] = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-history-") as scratch:
            path = str(Path(scratch) / "history.sqlite3")
            results.append(
                measure(path, "sqlite", args.devices, args.records, args.peers, args.repeat)
            )
    if args.backend in ("postgres", "both"):
        with postgres_url(args.pg_url) as url:
            results.append(
                measure(url, "postgres", args.devices, args.records, args.peers, args.repeat)
            )
    print(table(results))
    if args.breakdown:
        print()
        print(breakdown(args.devices, args.records, args.peers))
    if args.markdown:
        import sqlite3

        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        print(
            f"\nMachine: {cpu}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
