"""Load check: how much a mock fleet costs to start and to serve, measured from outside.

Starts ``mock-huawei-fleet`` as a subprocess (so the client's CPU is not counted), waits for
READY, then logs in to every device with real netmiko from a thread pool, runs
``display ike offline-info`` and disconnects. The fleet's CPU comes from ``/proc/<pid>/stat``
before and after, its memory from ``/proc/<pid>/status``.

    python -m mock_devices.loadcheck --count 1000 --workers 32

Prints one JSON object. Figures for this machine are in docs/BENCHMARKS.md ("Mock fleet").
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from mock_devices.process import start_fleet_process

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (``/proc/<pid>/stat`` fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _session(host: dict[str, Any], password: str, client: str) -> str | None:
    """One login + command + logout; returns an error text or None."""
    try:
        if client == "shell":
            from mock_devices.client import ShellClient

            with ShellClient(host["hostname"], host["port"], host["username"], password) as shell:
                shell.read_until(r"[>\]]$")
                shell.command("screen-length 0 temporary")
                output = shell.command("display ike offline-info")
                shell.send("quit\r")
        else:
            from netmiko import ConnectHandler

            connection = ConnectHandler(
                device_type=host["platform"],
                host=host["hostname"],
                port=host["port"],
                username=host["username"],
                password=password,
                conn_timeout=30,
                banner_timeout=30,
                auth_timeout=30,
            )
            try:
                output = str(connection.send_command("display ike offline-info", read_timeout=60))
            finally:
                connection.disconnect()
    except Exception as exc:  # counted and reported, never fatal for the check
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None if "Current info Num" in output else "no table in output"


def run(count: int, workers: int, client: str, fleet_args: list[str]) -> dict[str, Any]:
    """Start the fleet, serve one session per device, stop it; return the figures."""
    with tempfile.TemporaryDirectory(prefix="mock-loadcheck-") as directory:
        started = time.monotonic()
        fleet = start_fleet_process(Path(directory), ["--count", str(count), *fleet_args])
        ready_s = time.monotonic() - started
        try:
            hosts = list(yaml.safe_load(fleet.inventory_path.read_text()).values())
            idle_rss = rss_kib(fleet.pid)
            cpu_idle = cpu_seconds(fleet.pid)
            time.sleep(5)
            idle_cpu_5s = cpu_seconds(fleet.pid) - cpu_idle
            cpu_before = cpu_seconds(fleet.pid)
            wall = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                errors = list(pool.map(lambda h: _session(h, fleet.password, client), hosts))
            wall = time.monotonic() - wall
            cpu_used = cpu_seconds(fleet.pid) - cpu_before
            busy_rss = rss_kib(fleet.pid)
        finally:
            stop_started = time.monotonic()
            exit_code = fleet.stop(signal.SIGTERM)
            stop_s = time.monotonic() - stop_started
    failures = [error for error in errors if error]
    return {
        "devices": count,
        "client": client,
        "workers": workers,
        "ready_s": round(ready_s, 2),
        "rss_idle_mib": round(idle_rss / 1024, 1),
        "rss_after_sessions_mib": round(busy_rss / 1024, 1),
        "idle_cpu_s_per_5s": round(idle_cpu_5s, 3),
        "sessions": len(errors),
        "failed_sessions": len(failures),
        "first_failures": failures[:5],
        "wall_s": round(wall, 1),
        "fleet_cpu_s": round(cpu_used, 2),
        "fleet_cpu_ms_per_session": round(1000 * cpu_used / max(1, len(errors)), 2),
        "stop_s": round(stop_s, 2),
        "exit_code": exit_code,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m mock_devices.loadcheck``."""
    parser = argparse.ArgumentParser(prog="python -m mock_devices.loadcheck", description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--client", choices=("netmiko", "shell"), default="netmiko")
    parser.add_argument(
        "--fleet-arg",
        action="append",
        default=[],
        help="extra argument for mock-huawei-fleet (repeatable), e.g. --fleet-arg=--single-address",
    )
    args = parser.parse_args(argv)
    result = run(args.count, args.workers, args.client, args.fleet_arg)
    print(json.dumps(result, indent=2))
    return 0 if result["failed_sessions"] == 0 and result["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
