"""The clients the fleet benchmark compares, each run in its own process.

``bench.bench_fleet`` starts this module once per method, so each gets its own
interpreter: its CPU (user + system) and peak RSS come from ``os.wait4`` on it, and
nothing one client loads or leaks is charged to another.

    BENCH_FLEET_PASSWORD=... python -m bench.fleet_clients nornir --hosts H --workers 50
    BENCH_FLEET_PASSWORD=... python -m bench.fleet_clients netmiko --hosts H --limit 20
    BENCH_FLEET_PASSWORD=... python -m bench.fleet_clients paramiko --hosts H --limit 20
    BENCH_FLEET_PASSWORD=... python -m bench.fleet_clients probe --hosts H --known-hosts F

Methods:

* ``nornir``: Nornir 3 (threaded runner, ``--workers`` threads) with nornir_netmiko's
  ``netmiko_send_command``, then ``close_connections()`` as a Nornir script ends. The
  inventory is the mock's ``hosts.yaml`` (SimpleInventory); the password goes into the
  inventory defaults in memory only. Nornir's log file is off (it would write
  ``nornir.log`` into the working directory).
* ``netmiko``: a plain sequential loop with stock ``ConnectHandler`` (device_type
  ``huawei``), ``send_command``, ``disconnect()`` over the first ``--limit`` devices.
* ``paramiko``: the SSH library's floor: a bare paramiko ``SSHClient`` per device, one
  after the other over the first ``--limit`` devices (after one warm-up): password login,
  an interactive shell, ``screen-length 0 temporary`` and the command, each read up to
  the prompt, then ``quit``; no netmiko, no parsing, no store. Its client CPU per device
  is what any paramiko-based collector pays at least (the per-connection transport
  thread, key exchange, about 30 SSH messages through paramiko's Python packetizer).
* ``probe``: one device collected ``--repeat`` times in a row with our
  ``NetmikoTransport`` (after one warm-up), to measure one device's round trip.
* ``stages``: where ``collect``'s CPU goes, in process, through the same calls the CLI
  makes (``--transport``, netmiko by default): imports, inventory load, the fan-out
  (``collect_fleet``, ``--workers``), storing
  every result in a fresh SQLite history (one transaction per device), the fleet report
  (``aggregate``), and storing the same results again (the unchanged cron case).

Each prints one JSON object on stdout: the timed section's wall and CPU seconds (from
just before the first connection to just after the last disconnect; interpreter start,
imports and the row check are outside it) and the rows read per device. The password is
read from ``$BENCH_FLEET_PASSWORD``, never from argv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

PASSWORD_ENV = "BENCH_FLEET_PASSWORD"
COMMAND = "display ike offline-info"

# A row of either layout starts with the peer's dotted quad; nothing else in the output
# (title, header, rule, count line, prompt) does.
_ROW = re.compile(r"^[ \t]*\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}[ \t]", re.MULTILINE)


def count_rows(text: str) -> int:
    """Table rows in one device's output (a cheap check, outside the timed section).

    Examples:
        >>> count_rows("Current info Num :2\\n 10.0.0.1  dpd timeout\\n 10.0.0.2  x\\n<ar>")
        2
    """
    return len(_ROW.findall(text))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise SystemExit(f"fleet_clients: set ${PASSWORD_ENV} to the mock fleet's password")
    return password


def _hosts(path: Path) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return hosts


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def run_nornir(hosts_file: Path, password: str, workers: int) -> dict[str, Any]:
    """Nornir + nornir_netmiko over every host of ``hosts_file``."""
    from nornir import InitNornir
    from nornir_netmiko.tasks import netmiko_send_command

    groups_file = hosts_file.with_name("groups.yaml")
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": workers}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(hosts_file),
                "group_file": str(groups_file) if groups_file.exists() else None,
            },
        },
        logging={"enabled": False},
    )
    nr.inventory.defaults.password = password  # in memory only
    cpu = _cpu_seconds()
    began = time.perf_counter()
    result = nr.run(task=netmiko_send_command, command_string=COMMAND)
    nr.close_connections()
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds() - cpu
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name, multi in result.items():
        if multi.failed:
            exc = multi[0].exception
            errors[name] = _error_text(exc) if exc is not None else "failed"
        else:
            counts[name] = count_rows(str(multi[0].result))
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "devices": len(result),
        "counts": counts,
        "errors": errors,
    }


def _sequential(
    hosts: Sequence[tuple[str, dict[str, Any]]], session: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Read ``hosts`` one after the other with ``session`` (host -> output), timed."""
    outputs: dict[str, str] = {}
    errors: dict[str, str] = {}
    cpu = _cpu_seconds()
    began = time.perf_counter()
    for name, host in hosts:
        try:
            outputs[name] = session(host)
        except Exception as exc:  # reported per device, like the other methods
            errors[name] = _error_text(exc)
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds() - cpu
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "devices": len(hosts),
        "counts": {name: count_rows(text) for name, text in outputs.items()},
        "errors": errors,
    }


def run_netmiko_loop(hosts_file: Path, password: str, limit: int) -> dict[str, Any]:
    """Stock netmiko, one device after the other, over the first ``limit`` hosts."""
    from netmiko import ConnectHandler

    def netmiko_session(host: dict[str, Any]) -> str:
        connection = ConnectHandler(
            device_type="huawei",
            host=host["hostname"],
            port=host["port"],
            username=host["username"],
            password=password,
        )
        try:
            return str(connection.send_command(COMMAND))
        finally:
            connection.disconnect()

    return _sequential(list(_hosts(hosts_file).items())[:limit], netmiko_session)


def _paramiko_session(host: dict[str, Any], password: str) -> str:
    """One bare paramiko shell session; the command's output up to the prompt."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host["hostname"],
        port=host["port"],
        username=host["username"],
        password=password,
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
    )
    try:
        channel = client.invoke_shell(width=511, height=1000)
        channel.settimeout(30)

        def until_prompt() -> str:
            data = b""
            while not data.rstrip().endswith((b">", b"]")):
                chunk = channel.recv(65536)
                if not chunk:
                    raise EOFError("the device closed the session")
                data += chunk
            return data.decode("utf-8", "replace")

        until_prompt()
        channel.sendall(b"screen-length 0 temporary\n")
        until_prompt()
        channel.sendall(COMMAND.encode() + b"\n")
        output = until_prompt()
        channel.sendall(b"quit\n")
        return output
    finally:
        client.close()


def run_paramiko_loop(hosts_file: Path, password: str, limit: int) -> dict[str, Any]:
    """The SSH library alone, one device after the other, over the first ``limit`` hosts."""
    hosts = list(_hosts(hosts_file).items())
    _paramiko_session(hosts[-1][1], password)  # warm-up: imports, first connection
    return _sequential(hosts[:limit], lambda host: _paramiko_session(host, password))


def run_probe(hosts_file: Path, password: str, known_hosts: Path, repeat: int) -> dict[str, Any]:
    """One device, ``repeat`` times in a row, with our transport (after one warm-up)."""
    from collector.inventory.loading import load_inventory
    from collector.ssh.credentials import Credentials, Secret
    from collector.ssh.hostkeys import KnownHosts
    from collector.ssh.transport import NetmikoTransport

    device = load_inventory(hosts_file).devices[0]
    transport = NetmikoTransport(KnownHosts(known_hosts))
    credentials = Credentials(username=device.username, password=Secret(password))
    warm = transport.collect(device, credentials)  # host key recorded, imports warm
    if not warm.ok:
        error = warm.error.message if warm.error is not None else "failed"
        return {
            "seconds": [],
            "cpu_s": [],
            "devices": 1,
            "counts": {},
            "errors": {device.name: error},
        }
    seconds: list[float] = []
    cpus: list[float] = []
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for _ in range(repeat):
        cpu = _cpu_seconds()
        began = time.perf_counter()
        result = transport.collect(device, credentials)
        seconds.append(time.perf_counter() - began)
        cpus.append(_cpu_seconds() - cpu)
        if result.ok:
            counts[device.name] = len(result.records)
        else:
            errors[device.name] = result.error.message if result.error is not None else "failed"
    return {
        "seconds": seconds,
        "cpu_s": cpus,
        "median_s": statistics.median(seconds),
        "median_cpu_s": statistics.median(cpus),
        "devices": 1,
        "counts": counts,
        "errors": errors,
    }


def run_stages(
    hosts_file: Path, password: str, workers: int, directory: Path, transport_name: str = "netmiko"
) -> dict[str, Any]:
    """CPU seconds (process, all threads) and wall seconds of each stage of a collection."""
    stages: dict[str, tuple[float, float]] = {}
    cpu, wall = _cpu_seconds(), time.perf_counter()

    def lap(name: str) -> None:
        nonlocal cpu, wall
        now_cpu, now_wall = _cpu_seconds(), time.perf_counter()
        stages[name] = (now_cpu - cpu, now_wall - wall)
        cpu, wall = now_cpu, now_wall

    from datetime import UTC, datetime

    from collector.core.aggregate import aggregate
    from collector.fleet.run import collect_fleet
    from collector.history.store import open_store
    from collector.inventory.loading import load_inventory
    from collector.ssh.credentials import Credentials, Secret
    from collector.ssh.factory import make_transport
    from collector.ssh.hostkeys import KnownHosts
    from collector.ssh.protocol import RunOptions

    known_hosts = KnownHosts(directory / "stages_known_hosts")
    transport = make_transport(transport_name, known_hosts=known_hosts)
    lap(f"imports (collector, the {transport_name} transport)")
    devices = load_inventory(hosts_file).devices
    lap("inventory load")
    credentials = Credentials(password=Secret(password))
    results = collect_fleet(devices, credentials, transport, RunOptions(workers=workers))
    lap(
        f"fan-out: {len(devices)} devices, {workers} workers, {transport_name}"
        " (login, command, parse)"
    )
    store = open_store(str(directory / "stages.sqlite3"))
    run_id = store.start_run(hosts_file, None)
    for result in results:
        store.record_device(run_id, result)
    lap("store, first run (every record new)")
    now = datetime.now(UTC)
    aggregate(results, generated_at=now, run_started=now, run_finished=now)
    lap("fleet report (aggregate)")
    run_id = store.start_run(hosts_file, None)
    for result in results:
        store.record_device(run_id, result)
    lap("store again (unchanged snapshots)")
    store.close()
    counts = {result.device.name: len(result.records) for result in results if result.ok}
    errors = {
        result.device.name: result.error.message for result in results if result.error is not None
    }
    return {
        "stages": {name: {"cpu_s": c, "wall_s": w} for name, (c, w) in stages.items()},
        "devices": len(devices),
        "counts": counts,
        "errors": errors,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_clients", description=__doc__)
    parser.add_argument("method", choices=("nornir", "netmiko", "paramiko", "probe", "stages"))
    parser.add_argument("--hosts", type=Path, required=True, help="the mock's hosts.yaml")
    parser.add_argument("--workers", type=int, default=32, help="nornir: runner threads")
    parser.add_argument(
        "--limit", type=int, default=20, help="netmiko, paramiko: devices in the loop"
    )
    parser.add_argument("--known-hosts", type=Path, default=None, help="probe: known_hosts file")
    parser.add_argument("--workdir", type=Path, default=None, help="stages: where the db goes")
    parser.add_argument("--repeat", type=int, default=5, help="probe: timed collects")
    parser.add_argument(
        "--transport", default="netmiko", help="stages: collect --transport (default netmiko)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one method, print its JSON object."""
    args = _parser().parse_args(argv)
    password = _password()
    if args.method == "nornir":
        from mock_devices.fleet import raise_fd_limit

        raise_fd_limit()  # Nornir keeps every connection open until close_connections()
        out = run_nornir(args.hosts, password, args.workers)
    elif args.method == "netmiko":
        out = run_netmiko_loop(args.hosts, password, args.limit)
    elif args.method == "paramiko":
        out = run_paramiko_loop(args.hosts, password, args.limit)
    elif args.method == "stages":
        from mock_devices.fleet import raise_fd_limit

        raise_fd_limit()
        out = run_stages(
            args.hosts, password, args.workers, args.workdir or args.hosts.parent, args.transport
        )
    else:
        known_hosts = args.known_hosts or args.hosts.with_name("probe_known_hosts")
        out = run_probe(args.hosts, password, known_hosts, max(1, args.repeat))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
