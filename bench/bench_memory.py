"""Benchmark: the collector's peak memory (and wall, client CPU) per output format.

Starts ``mock-huawei-fleet`` as a subprocess (its memory and CPU are not the collector's),
``--devices`` devices with ``--records`` deletions each and ``--latency-ms`` before every
answer, then runs ``collect-ike-offline collect`` once per ``--formats`` entry at the
defaults (default transport, ``--processes`` auto, store on: a fresh SQLite file each run,
``--output`` a file, ``--quiet``). Wall and client CPU (user + system, forked children
included) come from ``os.wait4``; the peak RSS is the parent's own high-water mark
(``VmHWM`` in ``/proc``, read every 5 ms until it exits: ``ru_maxrss`` would be the
largest of the parent and its forked ``--processes`` children), and the largest child's
is shown beside it.
Every run's report is checked: the number of records it holds is what the fleet serves.

``--baseline DIR`` runs the same with another checkout of the collector (``git archive
main | tar -x -C DIR``) first, in the same run, for a before/after table::

    .venv/bin/python -m bench.bench_memory --devices 1000
    .venv/bin/python -m bench.bench_memory --devices 1000 --baseline /tmp/collector-main

Prints a table; writes nothing to the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.bench_fleet import (
    COLLECTOR_PASSWORD_ENV,
    ROOT,
    byte_compile,
    machine,
    write_scenario,
)
from bench.bench_history import postgres_url
from bench.fleet_clients import PASSWORD_ENV
from mock_devices.process import start_fleet_process

FORMATS = ("table", "json", "ndjson", "csv", "csv-records", "html")
"""``csv-records`` is ``--format csv --records``."""


def _format_options(name: str) -> list[str]:
    if name == "csv-records":
        return ["--format", "csv", "--records"]
    return ["--format", name]


def count_records(path: Path, name: str) -> int | None:
    """How many records the report at ``path`` holds (None: a format that lists none)."""
    if name == "json":
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        return sum(len(device["records"]) for device in data["devices"])
    if name == "ndjson":
        with path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.startswith('{"type": "record"'))
    if name == "csv-records":
        with path.open(encoding="utf-8", newline="") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    if name == "csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return sum(int(row["records"] or 0) for row in csv.DictReader(handle))
    return None


def _high_water_kib(pid: int) -> int:
    """The process's peak RSS so far (``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                pids += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return pids


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    """The collector's CPU, its forked children's included (``os.wait4``)."""
    parent_kib: int
    """The parent's own peak RSS (``VmHWM``, read every 5 ms until it exits)."""
    child_kib: int
    """The largest forked child's peak RSS (``--processes``), 0 without children."""
    returncode: int
    stderr: str


def run_collector(command: Sequence[str], env: dict[str, str]) -> Run:
    """Run one collect to its end, watching its own and its children's peak RSS."""
    with tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT
        )
        parent = child = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            parent = max(parent, _high_water_kib(process.pid))
            for kid in _children(process.pid):
                child = max(child, _high_water_kib(kid))
            time.sleep(0.005)
        wall = time.perf_counter() - began
        err.seek(0)
        return Run(
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            parent_kib=parent,
            child_kib=child,
            returncode=os.waitstatus_to_exitcode(status),
            stderr=err.read(),
        )


def collect_command(hosts: Path, directory: Path, fmt: str, db: str) -> list[str]:
    """The collect run; ``-P`` so that PYTHONPATH, not the working directory, picks the
    checkout."""
    return [
        sys.executable,
        "-P",
        "-c",
        "import sys; from collector.cli.main import main; sys.argv[0] = 'collect-ike-offline';"
        " sys.exit(main())",
        "collect",
        "--inventory",
        str(hosts),
        "--db",
        db,
        "--known-hosts",
        str(directory / "known_hosts"),
        "--output",
        str(directory / f"report.{fmt}"),
        "--quiet",
        *_format_options(fmt),
    ]


def fresh_database(admin_url: str) -> str:
    """An empty database on the cluster (the one of the previous run dropped)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS bench_run WITH (FORCE)")
        admin.execute("CREATE DATABASE bench_run")
    return admin_url.rsplit("/", 1)[0] + "/bench_run"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_memory", description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    parser.add_argument("--baseline", type=Path, help="another checkout to run first")
    parser.add_argument(
        "--checkout",
        type=Path,
        default=ROOT,
        help="the checkout measured as 'this' (default: this working tree)",
    )
    parser.add_argument("--extra", default="", help="more collect options, space-separated")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the history in a throwaway PostgreSQL cluster (a fresh database each run)",
    )
    args = parser.parse_args(argv)
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"--formats: unknown {unknown} (use {','.join(FORMATS)})")
    byte_compile()
    info = machine()
    print(f"machine: {info['cpus']} cores, {info['cpu']}, Python {info['python']}", flush=True)
    password = secrets.token_urlsafe(12)
    checkouts: list[tuple[str, Path]] = []
    if args.baseline is not None:
        checkouts.append(("baseline", args.baseline.resolve()))
    checkouts.append(("this", args.checkout.resolve()))
    rows: list[list[object]] = []
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        admin_url = None
        if args.postgres:
            admin_url = stack.enter_context(postgres_url(None)).rsplit("/", 1)[0] + "/postgres"
        temp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-memory-"))
        directory = Path(temp)
        scenario = write_scenario(directory / "scenario.yaml", args.latency_ms, args.records)
        fleet = start_fleet_process(
            directory / "fleet",
            ["--scenario", str(scenario), "--count", str(args.devices)],
            password=password,
        )
        try:
            hosts = fleet.inventory_path
            for fmt in formats:
                for label, checkout in checkouts:
                    for stale in directory.glob("history.sqlite3*"):
                        stale.unlink()
                    (directory / "known_hosts").unlink(missing_ok=True)
                    output = directory / f"report.{fmt}"
                    output.unlink(missing_ok=True)
                    env = {
                        **os.environ,
                        PASSWORD_ENV: password,
                        COLLECTOR_PASSWORD_ENV: password,
                        "PYTHONPATH": str(checkout),
                    }
                    env.pop("IKE_COLLECTOR_DB", None)
                    db = str(directory / "history.sqlite3")
                    if admin_url is not None:
                        db = fresh_database(admin_url)
                    command = collect_command(hosts, directory, fmt, db)
                    command += args.extra.split()
                    print(f"running {label} {fmt} ...", flush=True)
                    run = run_collector(command, env)
                    held = count_records(output, fmt) if output.exists() else -1
                    expected = args.devices * args.records
                    if run.returncode != 0 or (held is not None and held != expected):
                        tail = " | ".join(run.stderr.strip().splitlines()[-2:])
                        problems.append(
                            f"{label} {fmt}: exit {run.returncode}, {held} records "
                            f"(expected {expected}) {tail}"
                        )
                    rows.append(
                        [
                            fmt,
                            label,
                            f"{run.wall_s:.1f}",
                            f"{1000 * run.cpu_s / args.devices:.1f}",
                            f"{run.parent_kib / 1024:.0f}",
                            f"{run.child_kib / 1024:.0f}" if run.child_kib else "-",
                            f"{output.stat().st_size / 1e6:.0f}" if output.exists() else "-",
                        ]
                    )
        finally:
            fleet.stop(signal.SIGTERM)
    print()
    print(
        f"{args.devices} devices x {args.records} records, {args.latency_ms} ms per command, "
        f"collect at defaults (store on{', PostgreSQL' if args.postgres else ', SQLite'})"
        f"{' ' + args.extra if args.extra else ''}"
    )
    print(
        tabulate(
            rows,
            headers=[
                "format",
                "collector",
                "wall s",
                "CPU ms/device",
                "peak RSS MiB",
                "largest child MiB",
                "report MB",
            ],
            tablefmt="github",
        )
    )
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
