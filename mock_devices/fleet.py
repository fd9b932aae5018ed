"""Start a mock fleet: from Python (a background thread) or as ``mock-huawei-fleet``.

The console script serves every device of a scenario from one asyncio process, writes a Nornir
SimpleInventory for the collector (no password in it), optionally a ``0600`` env-style password
file, prints exactly one ``READY <n> devices`` line on stdout when all devices listen, and stops
cleanly on SIGINT/SIGTERM.

    MOCK_PASSWORD=secret mock-huawei-fleet --count 1000 --inventory /tmp/fleet/hosts.yaml

From Python (tests use the ``mock_fleet`` fixture, which wraps this)::

    with start_fleet("demo", password="pw") as fleet:
        ar = fleet.device("ar-01")
        ar.add_deletions(5)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from mock_devices.device import DeviceState
from mock_devices.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    read_scenario_file,
    scenario_from_dict,
)
from mock_devices.server import BindPlan, Fleet

DEFAULT_PASSWORD_ENV = "MOCK_PASSWORD"
COLLECTOR_PASSWORD_VAR = "IKE_COLLECTOR_PASSWORD"


def inventory_hosts(devices: Sequence[DeviceState]) -> dict[str, Any]:
    """The Nornir SimpleInventory ``hosts.yaml`` content for the devices (no passwords)."""
    hosts: dict[str, Any] = {}
    for device in devices:
        spec = device.spec
        hosts[spec.name] = {
            "hostname": device.host,
            "port": device.port,
            "platform": spec.platform,
            "username": spec.username,
            "groups": [spec.group],
            "data": {
                "site": spec.site,
                **({"timezone": spec.clock.timezone} if spec.inventory_zone else {}),
                "layout": spec.layout,
                "model": spec.model,
                **spec.inventory_data,
            },
        }
    return hosts


INVENTORY_GROUPS: dict[str, Any] = {
    "routers": {"data": {"role": "router"}},
    "firewalls": {"data": {"role": "firewall"}},
}


def write_inventory(path: Path, devices: Sequence[DeviceState]) -> Path:
    """Write ``hosts.yaml`` (and ``groups.yaml`` beside it); returns the hosts file path.

    ``path`` may be a directory (``hosts.yaml`` goes inside) or the hosts file itself.
    """
    hosts_path = path / "hosts.yaml" if path.is_dir() or not path.suffix else path
    hosts_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(hosts_path, yaml.safe_dump(inventory_hosts(devices), sort_keys=False))
    groups_path = hosts_path.with_name("groups.yaml")
    _write_atomic(groups_path, yaml.safe_dump(INVENTORY_GROUPS, sort_keys=False))
    return hosts_path


def write_password_file(path: Path, password: str, variable: str = COLLECTOR_PASSWORD_VAR) -> None:
    """Write ``VARIABLE=password`` to a file only its owner can read (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{variable}={shlex.quote(password)}\n")
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: 1,000 devices need >1,024 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class FleetThread:
    """A fleet served by its own event loop in a background thread (for tests and scripts).

    Device objects (``.devices``, ``.device(name)``) are thread-safe: add deletions and read
    journals from the calling thread while the loop serves sessions.
    """

    def __init__(
        self,
        scenario: Scenario,
        password: str,
        bind: BindPlan | None = None,
        journal_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.password = password
        self.fleet = Fleet(scenario, bind=bind, journal_dir=journal_dir)
        self.inventory_path: Path | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="mock-fleet", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<FleetThread {len(self.fleet.devices)} devices>"

    @property
    def devices(self) -> list[DeviceState]:
        """Every device, in scenario order."""
        return list(self.fleet.devices)

    def device(self, name: str) -> DeviceState:
        """One device by name."""
        return self.fleet.device(name)

    def start(self, timeout: float = 120.0) -> FleetThread:
        """Start serving; returns when every device listens (raises what binding raised)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"mock fleet did not start within {timeout:.0f} s")
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.fleet.start()
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            await self.fleet.stop()
            return
        self._ready.set()
        await self._stop.wait()
        await self.fleet.stop()

    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` (a coroutine function) on the fleet's loop; wait."""
        future = asyncio.run_coroutine_threadsafe(func(*args, **kwargs), self._loop)
        return future.result(timeout=60)

    def update_device(self, name: str, **changes: Any) -> DeviceState:
        """Change a running device's scenario fields (``host_key_seed``, ``faults``, ...)."""
        device: DeviceState = self.call(self.fleet.update_device, name, **changes)
        return device

    def stop(self, timeout: float = 30.0) -> None:
        """Close every session and listener and end the thread."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def write_inventory(self, path: Path) -> Path:
        """Write the collector inventory for this fleet (see ``write_inventory``)."""
        self.inventory_path = write_inventory(path, self.fleet.devices)
        return self.inventory_path

    def __enter__(self) -> FleetThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_fleet(
    scenario: str | Path | Mapping[str, Any] = "demo",
    count: int | None = None,
    password: str | None = None,
    bind: BindPlan | None = None,
    journal_dir: Path | None = None,
    inventory: Path | None = None,
) -> FleetThread:
    """Load a scenario and serve it from a background thread.

    Args:
        scenario: A shipped scenario name (``demo``, ``fleet``, ``faults``), a YAML path or a dict.
        count: Clone the scenario's template this many times.
        password: Password of every device without its own; a random one if ``None``.
        bind: Where to listen; default 127.0.0.1 with a free port per device.
        journal_dir: Also write each device's journal to ``<dir>/<name>.jsonl``.
        inventory: Write the collector inventory here (a directory or a ``hosts.yaml`` path).

    Returns:
        The running fleet; call ``.stop()`` (or use it as a context manager).
    """
    secret = password if password is not None else secrets.token_urlsafe(12)
    loaded = load_scenario(scenario, secret, count)
    runner = FleetThread(loaded, secret, bind=bind, journal_dir=journal_dir).start()
    if inventory is not None:
        runner.write_inventory(inventory)
    return runner


# -- console script ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-huawei-fleet",
        description=(
            "Serve mock Huawei VRP devices over SSH on loopback and write a collector inventory. "
            "Prints 'READY <n> devices' when every device listens; stop with Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--scenario",
        default=None,
        help="scenario YAML file or shipped name (demo, fleet, faults, variants); "
        "default: demo, or fleet with --count",
    )
    parser.add_argument("--count", type=int, default=None, help="clone the template N times")
    parser.add_argument(
        "--inventory",
        type=Path,
        default=None,
        help="write the Nornir hosts.yaml here (file or directory; groups.yaml goes beside it)",
    )
    parser.add_argument(
        "--password-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the devices' password (default: the scenario's "
        f"defaults.password_env, else {DEFAULT_PASSWORD_ENV})",
    )
    parser.add_argument(
        "--password",
        default=None,
        help="DEMO ONLY: password on the command line (visible in ps); prefer --password-env",
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help=f"write '{COLLECTOR_PASSWORD_VAR}=<password>' here (mode 0600); "
        "a random password is generated if none is given",
    )
    parser.add_argument(
        "--password-file-var",
        default=COLLECTOR_PASSWORD_VAR,
        metavar="NAME",
        help="variable name written to --password-file",
    )
    parser.add_argument(
        "--port", type=int, default=22, help="port on each loopback address (default 22)"
    )
    parser.add_argument(
        "--base-address",
        default="127.0.1.1",
        help="first loopback address; device i gets the i-th address after it",
    )
    parser.add_argument(
        "--single-address",
        action="store_true",
        help="put every device on 127.0.0.1 with consecutive ports from --port (0: any free ports)",
    )
    parser.add_argument(
        "--journal-dir", type=Path, default=None, help="write one journal file per device here"
    )
    return parser


def _password(args: argparse.Namespace, variable: str) -> str:
    from_env = os.environ.get(variable)
    if from_env:
        return from_env
    if args.password:
        return str(args.password)
    if args.password_file is not None:
        return secrets.token_urlsafe(12)
    raise ScenarioError(
        f"no password: set ${variable} (or --password-env NAME), "
        "or give --password-file PATH to receive a generated one"
    )


async def _serve_cli(args: argparse.Namespace, scenario: Scenario, password: str) -> int:
    if args.single_address:
        bind = BindPlan(mode="ports", host="127.0.0.1", port=args.port if args.port != 22 else 0)
    else:
        bind = BindPlan(mode="loopback", base_address=args.base_address, port=args.port)
    fleet = Fleet(scenario, bind=bind, journal_dir=args.journal_dir)
    started = time.monotonic()
    await fleet.start()
    if fleet.fell_back:
        print(
            f"mock-huawei-fleet: cannot bind {args.base_address}:{args.port} "
            f"({fleet.fallback_reason}); using 127.0.0.1 with consecutive ports",
            file=sys.stderr,
        )
    if args.inventory is not None:
        path = write_inventory(args.inventory, fleet.devices)
        print(f"mock-huawei-fleet: inventory written to {path}", file=sys.stderr)
    if args.password_file is not None:
        write_password_file(args.password_file, password, args.password_file_var)
        print(f"mock-huawei-fleet: password written to {args.password_file}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"mock-huawei-fleet: {len(fleet.devices)} devices listening "
        f"({time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    print(f"READY {len(fleet.devices)} devices", flush=True)
    await stop.wait()
    await fleet.stop()
    print("mock-huawei-fleet: stopped", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mock-huawei-fleet``."""
    args = _parser().parse_args(argv)
    try:
        data, source = read_scenario_file(args.scenario or ("fleet" if args.count else "demo"))
        defaults = data.get("defaults")
        variable = args.password_env or (
            str(defaults.get("password_env", DEFAULT_PASSWORD_ENV))
            if isinstance(defaults, dict)
            else DEFAULT_PASSWORD_ENV
        )
        password = _password(args, variable)
        scenario = scenario_from_dict(data, password, args.count, source)
    except ScenarioError as exc:
        print(f"mock-huawei-fleet: {exc}", file=sys.stderr)
        return 2
    raise_fd_limit()
    try:
        return asyncio.run(_serve_cli(args, scenario, password))
    except OSError as exc:
        print(f"mock-huawei-fleet: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
