"""Export benchmark: peak memory of ``collect-ike-offline export`` over 10,000 to 1,000,000
stored deletions (constant memory is the target), and its speed.

    .venv/bin/python -m bench.bench_export --sizes 10000,100000,1000000 [--format csv]

Each size gets its own SQLite store, filled with ``bench.bench_history``'s synthetic fleet
(200 deletions a device, through the real store API, in a child process). The export
runs as a child process (the real console script, output to a temp file); its peak RSS
comes from ``wait4``'s rusage. The ratio to the smallest size is what matters: RSS that
grew with the rows would show as a ratio near the ratio of the sizes. Writes nothing to
the repository.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.bench_history import ingest
from collector.history.store import open_store

PER_DEVICE = 200


@dataclass(frozen=True)
class Figures:
    rows: int
    exported: int
    seconds: float
    peak_rss_mib: float

    @property
    def rate(self) -> float:
        return self.exported / self.seconds if self.seconds else 0.0


def _command() -> list[str]:
    script = Path(sys.executable).with_name("collect-ike-offline")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from collector.cli.main import main; main()"]


def run_child(args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, lines of stdout) of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read() if process.stderr else b""
        if process.returncode != 0:
            raise RuntimeError(f"{args[0]} exited {process.returncode}: {stderr!r}")
        out.seek(0)
        lines = sum(1 for _ in out)
    # ru_maxrss is KiB on Linux.
    return seconds, usage.ru_maxrss / 1024, lines


def measure(directory: Path, rows: int, fmt: str) -> Figures:
    devices = max(1, rows // PER_DEVICE)
    db = directory / f"export-{rows}.sqlite3"
    # Filled by a child: a parent grown by the ingest would lend the export child its
    # resident pages at fork, and ru_maxrss would count them.
    subprocess.run(
        [sys.executable, "-m", "bench.bench_export", "--fill", str(db), str(devices)], check=True
    )
    seconds, rss, lines = run_child(
        [*_command(), "export", "--db", str(db), "--since", "2000-01-01", "--format", fmt]
    )
    exported = lines - (1 if fmt == "csv" else 0)
    return Figures(devices * PER_DEVICE, exported, seconds, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_export", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    parser.add_argument("--markdown", action="store_true", help="also print machine details")
    parser.add_argument("--fill", nargs=2, metavar=("DB", "DEVICES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        with open_store(args.fill[0]) as store:
            ingest(store, int(args.fill[1]), PER_DEVICE, "realistic")
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    baseline_s, baseline_rss, _ = run_child([*_command(), "--version"])
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as temp:
        for size in sizes:
            results.append(measure(Path(temp), size, args.format))
    smallest = results[0].peak_rss_mib
    print(
        tabulate(
            [
                [
                    f"{f.rows:,}",
                    f"{f.exported:,}",
                    f"{f.seconds:.2f}",
                    f"{f.rate:,.0f}",
                    f"{f.peak_rss_mib:.1f}",
                    f"{f.peak_rss_mib / smallest:.2f}",
                ]
                for f in results
            ],
            headers=[
                "stored",
                f"exported ({args.format})",
                "s",
                "rows/s",
                "peak RSS MiB",
                "RSS vs smallest",
            ],
            tablefmt="github",
        )
    )
    print(f"\n`collect-ike-offline --version` alone: {baseline_rss:.1f} MiB, {baseline_s:.2f} s")
    if args.markdown:
        print(f"\nPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    for figures in results:
        if figures.exported != figures.rows:
            print(f"exported {figures.exported} of {figures.rows} rows", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
