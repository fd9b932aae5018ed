"""Benchmark: collect a mock fleet three ways in one run and compare them.

Starts ``mock-huawei-fleet`` as a subprocess (its CPU is not the client's) with
``--devices`` devices cloned from the shipped ``fleet`` scenario, ``--records`` deletions
each and ``--latency-ms`` added before every command's answer, waits for READY, then:

* **probe**: one device collected 5 times in a row with our ``NetmikoTransport``; the
  median is one device's round trip, and the **ideal** wall time of a run is
  ``ceil(devices / workers) x round trip``;
* **(a) collect**: ``collect-ike-offline collect`` as a subprocess, once per
  ``--transports`` entry (netmiko and asyncssh by default, side by side), store on (a
  fresh SQLite file), ``--workers`` as given (else the collector's default for that
  transport), other settings at their defaults, ``--format csv --output`` (per-device
  status and counts, checked); then once more over the same history and known_hosts, as
  the next cron run would (nothing new; ``--collect-runs 1`` skips it);
* **(b) nornir**: Nornir 3 + nornir_netmiko ``netmiko_send_command``, threaded runner
  with the same worker count, then ``close_connections()``;
* **(c) netmiko loop**: stock netmiko ``ConnectHandler`` one device after the other over
  the first ``--subset`` devices, extrapolated per device to the whole fleet.

Each method runs in its own process (``bench.fleet_clients`` for (b), (c) and the
probe): wall time is that process's, start to exit, so interpreter start and imports
count for (a) and (b) alike; client CPU (user + system) and peak RSS come from
``os.wait4`` on it. For (c) the wall and CPU are the loop's own (measured inside the
process), scaled to the fleet. The mock's CPU during each method is read from
``/proc/<pid>/stat``. Every method must read ``--records`` rows from every device it
visits; if (a) does not, the benchmark exits 1 (after printing the table). The
baselines' own failures (netmiko read timeouts on a loaded machine) are listed as notes.
``--stages`` adds a table of where (a)'s CPU goes (``bench.fleet_clients stages``).

A WAN fleet: ``--login-delay-ms`` makes every mock device wait that long between the
accepted login and its banner and first prompt (a slow device CPU, AAA over the WAN), and
``--hanging-share`` of the devices accept TCP and never send the SSH banner
(``hang_no_banner``); (a) must report each of those as a ``timeout`` (and exits 1), and
read every other device in full. The probe uses a device that answers.

    .venv/bin/python -m bench.bench_fleet --devices 100 --workers 50 --latency-ms 50 --records 200
    .venv/bin/python -m bench.bench_fleet --devices 1000
    .venv/bin/python -m bench.bench_fleet --devices 2000 --latency-ms 300 --login-delay-ms 1000 \
        --hanging-share 0.05 --methods collect --transports asyncssh --collect-runs 1

Prints the machine and a table; writes nothing to the repository unless ``--write-md``
(then the same block is added to the Fleet section of ``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import math
import os
import platform
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

from bench.fleet_clients import PASSWORD_ENV
from collector.core.options import DEFAULT_ASYNC_WORKERS, DEFAULT_WORKERS
from collector.ssh.factory import TRANSPORTS
from mock_devices.fleet import raise_fd_limit
from mock_devices.loadcheck import cpu_seconds
from mock_devices.process import FleetProcess, start_fleet_process
from mock_devices.scenario import SCENARIO_DIR, Fault, load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MD = ROOT / "docs" / "BENCHMARKS.md"
MD_MARKER = "<!-- fleet runs end here: bench_fleet --write-md inserts above this line -->"
COLLECTOR_PASSWORD_ENV = "IKE_COLLECTOR_PASSWORD"
METHODS = ("collect", "nornir", "netmiko", "paramiko")
LIBRARIES = ("netmiko", "paramiko", "cryptography", "nornir", "nornir_netmiko", "asyncssh")


@dataclass
class Measured:
    """One method's figures."""

    label: str
    devices: int
    """Devices this method was asked to read in full (the subset for the netmiko loop; for
    (a), the devices that answer: the hanging ones are expected to time out)."""
    wall_s: float
    """Whole-fleet wall time (extrapolated for the loop)."""
    cpu_ms_per_device: float
    rss_mib: float
    mock_cpu_ms_per_device: float
    rows_ok: int
    """Devices whose row count matched."""
    problems: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ours(self) -> bool:
        """This project's collector (its failures fail the benchmark)."""
        return self.label.startswith("(a)")


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: wall, rusage, exit code, captured output."""

    wall_s: float
    cpu_s: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str
    mock_cpu_s: float


# --- helpers ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name.replace('_', '-'))}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "cpus": str(os.cpu_count() or 0),
        "cpu": model,
        "python": platform.python_version(),
        "libraries": ", ".join(versions),
        "load": load,
    }


def write_scenario(
    path: Path,
    latency_ms: int,
    records: int,
    login_delay_ms: int = 0,
    hanging_share: float = 0.0,
) -> Path:
    """The shipped ``fleet`` scenario with this latency, login delay and record count;
    ``hanging_share`` of the devices accept TCP and never answer (``hang_no_banner``)."""
    data: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "fleet.yaml").read_text("utf-8"))
    defaults = dict(data.get("defaults") or {})
    defaults["latency_ms"] = latency_ms
    if login_delay_ms:
        defaults["login_delay_ms"] = login_delay_ms
    defaults["records"] = {"generate": {"count": records, "seed": 7}}
    defaults["password_env"] = "MOCK_PASSWORD"
    data["defaults"] = defaults
    template = dict(data.get("template") or {})
    template["faulty_fraction"] = hanging_share
    if hanging_share:
        template["fault_pool"] = [Fault.HANG_NO_BANNER.value]
    data["template"] = template
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_child(
    command: Sequence[str], env: dict[str, str], fleet_pid: int, timeout: float
) -> ChildRun:
    """Run one client process to its end; its own rusage via ``os.wait4``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        mock_before = cpu_seconds(fleet_pid)
        began = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = began + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - began
        mock_cpu = cpu_seconds(fleet_pid) - mock_before
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            maxrss_kib=usage.ru_maxrss,
            returncode=process.returncode,
            stdout=out.read(),
            stderr=err.read(),
            mock_cpu_s=mock_cpu,
        )


def _script(name: str, module: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def _child_json(run: ChildRun, what: str) -> dict[str, Any]:
    if run.returncode != 0:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{what} exited {run.returncode}: {tail}")
    out: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def _check_counts(
    expected_names: Sequence[str], out: dict[str, Any], records: int
) -> tuple[int, list[str]]:
    counts: dict[str, int] = out.get("counts", {})
    errors: dict[str, str] = out.get("errors", {})
    problems = [f"{name}: {message}" for name, message in sorted(errors.items())]
    ok = 0
    for name in expected_names:
        if name in errors:
            continue
        got = counts.get(name)
        if got == records:
            ok += 1
        else:
            problems.append(f"{name}: {got} rows, expected {records}")
    return ok, problems


# --- the methods -----------------------------------------------------------------------


def run_client(
    method: str,
    hosts: Path,
    env: dict[str, str],
    fleet: FleetProcess,
    *options: str,
    timeout: float = 3600,
    what: str | None = None,
) -> tuple[ChildRun, dict[str, Any]]:
    """Run ``python -m bench.fleet_clients METHOD --hosts HOSTS OPTIONS``: its run and JSON."""
    command = [sys.executable, "-m", "bench.fleet_clients", method, "--hosts", str(hosts)]
    run = run_child([*command, *options], env, fleet.pid, timeout)
    return run, _child_json(run, what or method)


def run_probe(
    hosts: Path, env: dict[str, str], fleet: FleetProcess, directory: Path, repeat: int
) -> dict[str, Any]:
    """One device's round trip with our transport (median of ``repeat``)."""
    _, out = run_client(
        "probe",
        hosts,
        env,
        fleet,
        "--known-hosts",
        str(directory / "probe_known_hosts"),
        "--repeat",
        str(repeat),
        timeout=300,
    )
    if out["errors"]:
        raise RuntimeError(f"probe failed: {out['errors']}")
    return out


def run_collect(
    hosts: Path,
    names: Sequence[str],
    env: dict[str, str],
    fleet: FleetProcess,
    directory: Path,
    workers: int | None,
    records: int,
    repeat: bool = False,
    processes: str | None = None,
    transport: str = "netmiko",
    hanging: frozenset[str] = frozenset(),
    connect_timeout: float | None = None,
) -> Measured:
    """(a) ``collect-ike-offline collect`` with the store on.

    The first run starts from an empty history and known_hosts file (every record new,
    every host key trusted on first use); a ``repeat`` run keeps both, as cron would:
    the snapshots are unchanged, so no record is new. The ``hanging`` devices (TCP
    accepted, no SSH banner ever) must be reported as ``timeout`` failures, and the run
    then exits 1 (some devices failed).
    """
    report = directory / "collect.csv"
    report.unlink(missing_ok=True)
    new_expected = 0 if repeat else records
    command = [
        *_script("collect-ike-offline", "collector.cli.main"),
        "collect",
        "--inventory",
        str(hosts),
        "--db",
        str(directory / "history.sqlite3"),
        "--known-hosts",
        str(directory / "collect_known_hosts"),
        "--format",
        "csv",
        "--output",
        str(report),
        "--quiet",
        "--transport",
        transport,
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    if processes is not None:
        command += ["--processes", processes]
    if connect_timeout is not None:
        command += ["--connect-timeout", f"{connect_timeout:g}"]
    run = run_child(command, env, fleet.pid, 3600)
    problems: list[str] = []
    if run.returncode != (1 if hanging else 0):
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        problems.append(f"collect exited {run.returncode}: {tail}")
    ok = timed_out = 0
    if report.exists():
        rows = {row["name"]: row for row in csv.DictReader(report.open(encoding="utf-8"))}
        for name in names:
            row = rows.get(name)
            if row is None:
                problems.append(f"{name}: not in the report")
            elif name in hanging:
                if row["status"] != "ok" and row["error_kind"] == "timeout":
                    timed_out += 1
                else:
                    problems.append(f"{name} (hanging): {row['status']} {row['error_kind']}")
            elif row["status"] != "ok":
                problems.append(f"{name}: {row['error_kind']}: {row['error_message']}")
            elif row["records"] != str(records) or row["new_records"] != str(new_expected):
                problems.append(
                    f"{name}: {row['records']} rows ({row['new_records']} new),"
                    f" expected {records} ({new_expected} new)"
                )
            else:
                ok += 1
    n = len(names)
    note = f"{timed_out}/{len(hanging)} hanging devices reported as timeout" if hanging else ""
    label = (
        f"(a) collect again, {transport} (same history and known_hosts: nothing new)"
        if repeat
        else f"(a) collect-ike-offline collect --transport {transport} (store on, first run)"
    )
    return Measured(
        label=label,
        devices=n - len(hanging),
        wall_s=run.wall_s,
        cpu_ms_per_device=1000 * run.cpu_s / n,
        rss_mib=run.maxrss_kib / 1024,
        mock_cpu_ms_per_device=1000 * run.mock_cpu_s / n,
        rows_ok=ok,
        problems=problems,
        note=note,
    )


def run_nornir(
    hosts: Path,
    names: Sequence[str],
    env: dict[str, str],
    fleet: FleetProcess,
    workers: int,
    records: int,
) -> Measured:
    """(b) Nornir + nornir_netmiko at the same worker count."""
    run, out = run_client("nornir", hosts, env, fleet, "--workers", str(workers))
    ok, problems = _check_counts(names, out, records)
    n = len(names)
    return Measured(
        label="(b) Nornir + nornir_netmiko",
        devices=n,
        wall_s=run.wall_s,
        cpu_ms_per_device=1000 * run.cpu_s / n,
        rss_mib=run.maxrss_kib / 1024,
        mock_cpu_ms_per_device=1000 * run.mock_cpu_s / n,
        rows_ok=ok,
        problems=problems,
        note=f"timed section {out['seconds']:.2f} s",
    )


_SEQUENTIAL = {
    # client: (label, warm-up sessions before the timed loop, note)
    "netmiko": ("(c) netmiko sequential loop ({k} devices, extrapolated)", 0, ""),
    "paramiko": (
        "(d) paramiko alone, sequential ({k} devices, extrapolated; the SSH floor)",
        1,
        " (no netmiko, parser or store: what any paramiko-based collector pays at least)",
    ),
}


def run_sequential(
    client: str,
    hosts: Path,
    names: Sequence[str],
    env: dict[str, str],
    fleet: FleetProcess,
    subset: int,
    records: int,
) -> Measured:
    """(c) stock netmiko or (d) bare paramiko, one device after the other, on a subset.

    Wall time is extrapolated to the fleet; CPU is the loop's own, per device.
    """
    label, warm_up, note = _SEQUENTIAL[client]
    run, out = run_client(client, hosts, env, fleet, "--limit", str(subset), what=f"{client} loop")
    visited = names[:subset]
    ok, problems = _check_counts(visited, out, records)
    k = len(visited)
    per_device = out["seconds"] / k
    cpu_ms = 1000 * out["cpu_s"] / k
    return Measured(
        label=label.format(k=k),
        devices=k,
        wall_s=per_device * len(names),
        cpu_ms_per_device=cpu_ms,
        rss_mib=run.maxrss_kib / 1024,
        mock_cpu_ms_per_device=1000 * run.mock_cpu_s / (k + warm_up),
        rows_ok=ok,
        problems=problems,
        note=f"{per_device:.3f} s and {cpu_ms:.1f} ms client CPU per device{note}",
    )


def run_stages(
    hosts: Path,
    names: Sequence[str],
    env: dict[str, str],
    fleet: FleetProcess,
    directory: Path,
    workers: int,
    records: int,
    transport: str = "netmiko",
) -> str:
    """Where collect's time goes, stage by stage (``fleet_clients stages``), as a table."""
    if transport == "asyncssh" and workers == DEFAULT_WORKERS:
        workers = DEFAULT_ASYNC_WORKERS
    run, out = run_client(
        "stages",
        hosts,
        env,
        fleet,
        "--workers",
        str(workers),
        "--workdir",
        str(directory),
        "--transport",
        transport,
    )
    ok, problems = _check_counts(names, out, records)
    n = len(names)
    rows = [
        [
            name,
            f"{figures['cpu_s']:.2f}",
            f"{1000 * figures['cpu_s'] / n:.2f}",
            f"{figures['wall_s']:.2f}",
        ]
        for name, figures in out["stages"].items()
    ]
    rows.append(
        [
            "whole process (wait4, incl. interpreter start)",
            f"{run.cpu_s:.2f}",
            f"{1000 * run.cpu_s / n:.2f}",
            f"{run.wall_s:.2f}",
        ]
    )
    text = tabulate(
        rows,
        ["stage of collect (in process)", "CPU s", "CPU ms/device", "wall s"],
        tablefmt="github",
        disable_numparse=True,
    )
    if problems:
        text += "\n\nstages: " + "; ".join(problems[:5])
    return text + f"\n\nstages: {ok}/{n} devices read in full; mock CPU {run.mock_cpu_s:.2f} s"


# --- output ----------------------------------------------------------------------------


def table(results: Sequence[Measured], fleet_size: int, ideal_s: float) -> str:
    """The results as a GitHub-flavoured markdown table (also readable in a terminal)."""
    nornir = next((m for m in results if m.label.startswith("(b)")), None)
    rows = []
    for m in results:
        versus = "" if nornir is None else f"{nornir.wall_s / m.wall_s:.2f}x"
        rows.append(
            [
                m.label,
                f"{m.wall_s:.2f}",
                f"{fleet_size / m.wall_s:.1f}",
                versus,
                f"{m.wall_s / ideal_s:.2f}",
                f"{m.cpu_ms_per_device:.1f}",
                f"{m.rss_mib:.0f}",
                f"{m.mock_cpu_ms_per_device:.1f}",
                f"{m.rows_ok}/{m.devices}",
            ]
        )
    headers = [
        "method",
        "wall s",
        "devices/s",
        "speed vs (b)",
        "wall / ideal",
        "client CPU ms/device",
        "peak RSS MiB",
        "mock CPU ms/device",
        "devices with all rows",
    ]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


def rounds_table(rounds: Sequence[Sequence[Measured]]) -> str:
    """Each method's wall time, and its speed against (b) of the same round, over rounds.

    The table above shows the last round; this one shows how much the figures move on a
    shared machine (median, then the lowest and highest of the rounds).
    """
    walls: dict[str, list[float]] = {}
    speeds: dict[str, list[float]] = {}
    for measured in rounds:
        nornir = next((m for m in measured if m.label.startswith("(b)")), None)
        for m in measured:
            walls.setdefault(m.label, []).append(m.wall_s)
            if nornir is not None:
                speeds.setdefault(m.label, []).append(nornir.wall_s / m.wall_s)

    def spread(values: Sequence[float], unit: str) -> str:
        return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f}{unit})"

    rows = [
        [label, spread(values, ""), spread(speeds[label], "x") if label in speeds else ""]
        for label, values in walls.items()
    ]
    return tabulate(
        rows,
        [f"method, {len(rounds)} rounds", "wall s: median (range)", "speed vs (b) of its round"],
        tablefmt="github",
        disable_numparse=True,
    )


def markdown_block(
    args: argparse.Namespace,
    argv: Sequence[str],
    info: dict[str, str],
    text: str,
    notes: Sequence[str],
) -> str:
    """The block ``--write-md`` inserts into docs/BENCHMARKS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join([".venv/bin/python", "-m", "bench.bench_fleet", *argv])
    lines = [
        f"### {args.devices} devices, {args.records} records, {args.latency_ms} ms latency"
        + (f", {args.login_delay_ms} ms login delay" if args.login_delay_ms else "")
        + (f", {args.hanging_share:.0%} hanging" if args.hanging_share else "")
        + f" ({stamp})",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {info['cpus']} cores ({info['cpu']}), Python {info['python']};"
        f" {info['libraries']}. Load average at start: {info['load']}.",
        "",
        text,
        "",
        *[f"- {note}" for note in notes],
        "",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    """Insert ``block`` above the marker in the Fleet section (add the section if absent)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if MD_MARKER in text:
        text = text.replace(MD_MARKER, block + "\n" + MD_MARKER, 1)
    else:
        text = text.rstrip("\n") + "\n\n## Fleet\n\n" + block + "\n" + MD_MARKER + "\n"
    path.write_text(text, encoding="utf-8")


# --- main ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_fleet",
        description="Collect a mock fleet with collect-ike-offline, Nornir + nornir_netmiko "
        "and a plain netmiko loop in one run; print a table.",
    )
    parser.add_argument("--devices", type=int, default=100, help="mock devices (default 100)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"workers for (a) and (b) (default: collect's default, {DEFAULT_WORKERS}; "
        f"{DEFAULT_ASYNC_WORKERS} sessions for (a) with asyncssh)",
    )
    parser.add_argument(
        "--latency-ms", type=int, default=50, help="added before each answer (default 50)"
    )
    parser.add_argument(
        "--records", type=int, default=200, help="deletions per device, 0-200 (default 200)"
    )
    parser.add_argument(
        "--login-delay-ms",
        type=int,
        default=0,
        help="a WAN fleet: the mock's wait between the accepted login and the banner and "
        "first prompt (default 0)",
    )
    parser.add_argument(
        "--hanging-share",
        type=float,
        default=0.0,
        help="share of devices (0-0.5) that accept TCP and never send the SSH banner; "
        "(a) must report each as a timeout (default 0)",
    )
    parser.add_argument(
        "--subset", type=int, default=20, help="devices in the sequential loop (default 20)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {','.join(METHODS)} (default: all)",
    )
    parser.add_argument("--probe-repeat", type=int, default=5, help="one-device collects")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the methods this many times, alternating, and add a table of the spread",
    )
    parser.add_argument(
        "--collect-runs",
        type=int,
        choices=(1, 2),
        default=2,
        help="2 (default): run (a) a second time over the same history and known_hosts",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also break collect's CPU down by stage (in process, one process, the first of"
        " --transports; one more collection)",
    )
    parser.add_argument(
        "--single-address",
        action="store_true",
        help="mock on 127.0.0.1 with free ports (default: one loopback address each, port 22)",
    )
    parser.add_argument(
        "--write-md",
        action="store_true",
        help=f"also add the results to the Fleet section of {DEFAULT_MD.relative_to(ROOT)}",
    )
    parser.add_argument("--md-path", type=Path, default=DEFAULT_MD, help=argparse.SUPPRESS)
    parser.add_argument(
        "--processes", metavar="N|auto", help="collect --processes for (a) (default: collect's)"
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="S",
        help="collect --connect-timeout for (a) (default: collect's)",
    )
    parser.add_argument(
        "--transports",
        default="netmiko,asyncssh",
        help="collect --transport for (a), each in turn (default: netmiko,asyncssh; "
        "napalm too if wanted)",
    )
    return parser


def byte_compile() -> None:
    """Compile our packages' bytecode before timing, as a regular install does.

    A development checkout (``pip install -e``) has no ``.pyc`` files until a first
    import writes them, and none at all under ``PYTHONDONTWRITEBYTECODE``: every timed
    run would then compile ~10,000 lines of the collector (~0.1-0.2 s of CPU), which an
    installed collector never does.
    """
    for package in ("collector", "mock_devices", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.records <= 200:
        parser.error("--records must be 0-200 (a VRP device keeps the latest 200)")
    if args.latency_ms < 0 or args.login_delay_ms < 0:
        parser.error("--latency-ms and --login-delay-ms must not be negative")
    if not 0 <= args.hanging_share <= 0.5:
        parser.error("--hanging-share must be 0-0.5")
    if args.connect_timeout is not None and args.connect_timeout <= 0:
        parser.error("--connect-timeout must be more than 0")
    if args.subset < 1 or args.probe_repeat < 1 or args.rounds < 1:
        parser.error("--subset, --probe-repeat and --rounds must be at least 1")
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods: unknown {unknown} (use {','.join(METHODS)})")
    transports = [name.strip() for name in args.transports.split(",") if name.strip()]
    unknown = sorted(set(transports) - set(TRANSPORTS))
    if unknown or not transports:
        parser.error(f"--transports: unknown {unknown} (use {','.join(TRANSPORTS)})")
    args.transport_list = transports
    return methods


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m bench.bench_fleet``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    methods = _validate(parser, args)
    workers = args.workers if args.workers is not None else DEFAULT_WORKERS
    if args.workers is None and methods == ["collect"] and args.transport_list == ["asyncssh"]:
        workers = DEFAULT_ASYNC_WORKERS  # the ideal run at asyncssh's sessions in flight
    byte_compile()
    raise_fd_limit()  # the children inherit it: Nornir keeps every connection open
    info = machine()
    print(
        f"machine: {info['cpus']} cores, {info['cpu']}, Python {info['python']}; "
        f"load {info['load']}\nlibraries: {info['libraries']}",
        flush=True,
    )
    password = secrets.token_urlsafe(12)
    env = {**os.environ, PASSWORD_ENV: password, COLLECTOR_PASSWORD_ENV: password}
    env.pop("IKE_COLLECTOR_DB", None)
    results: list[Measured] = []
    rounds: list[list[Measured]] = []
    stages: str | None = None
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as temp:
        directory = Path(temp)
        scenario = write_scenario(
            directory / "scenario.yaml",
            args.latency_ms,
            args.records,
            login_delay_ms=args.login_delay_ms,
            hanging_share=args.hanging_share,
        )
        hanging = frozenset(
            spec.name
            for spec in load_scenario(scenario, password, args.devices).devices
            if spec.has(Fault.HANG_NO_BANNER)
        )
        fleet_args = ["--scenario", str(scenario), "--count", str(args.devices)]
        if args.single_address:
            fleet_args += ["--single-address", "--port", "0"]
        started = time.monotonic()
        fleet = start_fleet_process(directory / "fleet", fleet_args, password=password)
        try:
            print(
                f"mock fleet: {fleet.ready_line} in {time.monotonic() - started:.1f} s "
                f"({args.records} records, {args.latency_ms} ms per command)",
                flush=True,
            )
            hosts = fleet.inventory_path
            inventory = yaml.safe_load(hosts.read_text(encoding="utf-8"))
            names = list(inventory)
            probe_hosts = hosts.with_name("probe_hosts.yaml")  # one device that answers
            answering = next(name for name in names if name not in hanging)
            probe_hosts.write_text(yaml.safe_dump({answering: inventory[answering]}), "utf-8")
            probe = run_probe(probe_hosts, env, fleet, directory, args.probe_repeat)
            round_trip = float(probe["median_s"])
            ideal = math.ceil(args.devices / workers) * round_trip
            print(
                f"one device with our transport: {round_trip:.3f} s median of "
                f"{args.probe_repeat} ({1000 * probe['median_cpu_s']:.1f} ms client CPU); "
                f"ideal = ceil({args.devices}/{workers}) x {round_trip:.3f} = {ideal:.2f} s",
                flush=True,
            )
            for round_index in range(args.rounds):
                results = []
                rounds.append(results)
                for method in methods:
                    print(f"running {method} (round {round_index + 1}) ...", flush=True)
                    if method == "collect":
                        for transport in args.transport_list:
                            # Each first run starts from an empty history and known_hosts.
                            for stale in directory.glob("history.sqlite3*"):
                                stale.unlink()
                            (directory / "collect_known_hosts").unlink(missing_ok=True)
                            for run_index in range(args.collect_runs):
                                results.append(
                                    run_collect(
                                        hosts,
                                        names,
                                        env,
                                        fleet,
                                        directory,
                                        args.workers,
                                        args.records,
                                        repeat=run_index > 0,
                                        processes=args.processes,
                                        transport=transport,
                                        hanging=hanging,
                                        connect_timeout=args.connect_timeout,
                                    )
                                )
                    elif method == "nornir":
                        results.append(run_nornir(hosts, names, env, fleet, workers, args.records))
                    else:
                        results.append(
                            run_sequential(
                                method, hosts, names, env, fleet, args.subset, args.records
                            )
                        )
            if args.stages:
                print("running stages ...", flush=True)
                stages = run_stages(
                    hosts,
                    names,
                    env,
                    fleet,
                    directory,
                    workers,
                    args.records,
                    transport=args.transport_list[0],
                )
        finally:
            fleet.stop(signal.SIGTERM)
    text = table(results, args.devices, ideal)
    if len(rounds) > 1:
        text += "\n\n" + rounds_table(rounds)
    if stages is not None:
        text += "\n\n" + stages
    notes = [
        f"{args.devices} devices, {workers} workers for (a) and (b)"
        + (
            ""
            if args.workers is not None or "asyncssh" not in args.transport_list
            else f" ({DEFAULT_ASYNC_WORKERS} sessions in flight for (a) with asyncssh)"
        )
        + f", {args.latency_ms} ms"
        f" per command, {args.records} records per device"
        + (f", {args.login_delay_ms} ms login delay" if args.login_delay_ms else "")
        + (f", {len(hanging)} hanging (no SSH banner)" if hanging else "")
        + "; ideal"
        f" = ceil({args.devices}/{workers}) x {round_trip:.3f} s = {ideal:.2f} s"
        f" (one device with our transport: median of {args.probe_repeat},"
        f" {1000 * probe['median_cpu_s']:.1f} ms client CPU each)",
        *[f"{m.label}: {m.note}" for m in results if m.note],
    ]
    print()
    print(text)
    print()
    for note in notes:
        print(f"- {note}")
    # Our collector must read every row; the baselines' own failures (netmiko read
    # timeouts on a loaded machine) are findings, shown but not fatal.
    every = [m for measured in rounds for m in measured]
    problems = [f"{m.label}: {problem}" for m in every for problem in m.problems if m.ours]
    findings = [f"{m.label}: {problem}" for m in every for problem in m.problems if not m.ours]
    for problem in problems[:20]:
        print(f"PROBLEM {problem}", file=sys.stderr)
    for finding in findings[:5]:
        notes.append(f"failed in the baseline: {finding}")
        print(f"- failed in the baseline: {finding}")
    if len(findings) > 5:
        notes.append(f"... and {len(findings) - 5} more baseline failures")
        print(f"- ... and {len(findings) - 5} more baseline failures")
    if args.write_md:
        write_markdown(args.md_path, markdown_block(args, argv, info, text, notes))
        print(f"results added to {args.md_path}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
