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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from collector.records import REASONS, Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.store import Store, open_store

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
    ingest_s: float
    full_report_s: float
    since_report_s: float
    since_records: int
    recollect_s: float
    recollect_rows: int

    @property
    def ingest_rate(self) -> float:
        return self.records / self.ingest_s if self.ingest_s else 0.0


def fleet(devices: int, records: int) -> Iterator[DeviceResult]:
    """The same synthetic fleet every time: results built one device at a time."""
    for index in range(devices):
        rng = random.Random(index)
        device = Device(
            f"rt{index:05d}",
            f"10.{index // 250 % 256}.{index % 250}.1",
            groups=(GROUPS[index % len(GROUPS)],),
            data=MappingProxyType({"site": SITES[index % len(SITES)], "timezone": "+08:00"}),
        )
        # Newest first, as the device prints it; spread over the last 7 days (local +08:00).
        local_now = NOW.replace(tzinfo=None) + timedelta(hours=8)
        moment = local_now
        rows = []
        for _ in range(records):
            moment -= timedelta(seconds=rng.randrange(1, 2 * 7 * 86400 // max(records, 1)))
            reason = rng.choices(REASONS, WEIGHTS)[0]
            peer = f"172.{16 + rng.randrange(16)}.{rng.randrange(256)}.{rng.randrange(1, 64)}"
            rows.append(
                OfflineRecord.build(
                    peer, reason.text, rng.choice((1, 2)), moment, port=rng.choice((None, 500))
                )
            )
        yield DeviceResult(
            device, DeviceStatus.OK, tuple(rows), started=NOW, finished=NOW, attempts=1
        )


def ingest(store: Store, devices: int, records: int) -> tuple[float, int]:
    """One run over the fleet; returns (seconds spent in the store API, rows written)."""
    spent = 0.0
    written = 0
    run = store.start_run("bench", None, "bench", started=NOW)
    for result in fleet(devices, records):
        start = time.perf_counter()
        written += store.record_device(run, result).new_records
        spent += time.perf_counter() - start
    start = time.perf_counter()
    store.finish_run(run, finished=NOW)
    spent += time.perf_counter() - start
    return spent, written


def timed(action: object) -> tuple[float, object]:
    start = time.perf_counter()
    value = action()  # type: ignore[operator]
    return time.perf_counter() - start, value


def measure(target: str, backend: str, devices: int, records: int) -> Figures:
    with open_store(target) as store:
        ingest_s, written = ingest(store, devices, records)
        assert written == devices * records, f"{backend}: wrote {written} rows"
        total = store.count_deletions()
        full_s, _ = timed(lambda: store.report(generated_at=NOW))
        since = NOW - timedelta(hours=24)
        since_s, since_report = timed(lambda: store.report(since=since, generated_at=NOW))
        recollect_s, rewritten = ingest(store, devices, records)
        assert rewritten == 0 and store.count_deletions() == total, "re-collection wrote rows"
        return Figures(
            backend,
            total,
            ingest_s,
            full_s,
            since_s,
            since_report.totals.records,  # type: ignore[attr-defined]
            recollect_s,
            rewritten,
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
        "| backend | records | ingest s | records/s | full report s | --since 24h s "
        "(records) | re-collect s (rows written) |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for f in rows:
        lines.append(
            f"| {f.backend} | {f.records:,} | {f.ingest_s:.2f} | {f.ingest_rate:,.0f} | "
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
        "--pg-url", help="an EMPTY PostgreSQL database to use instead of a throwaway cluster"
    )
    parser.add_argument("--markdown", action="store_true", help="also print machine details")
    args = parser.parse_args(argv)
    results: list[Figures] = []
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-history-") as scratch:
            path = str(Path(scratch) / "history.sqlite3")
            results.append(measure(path, "sqlite", args.devices, args.records))
    if args.backend in ("postgres", "both"):
        with postgres_url(args.pg_url) as url:
            results.append(measure(url, "postgres", args.devices, args.records))
    print(table(results))
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
