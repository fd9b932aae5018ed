"""``make demo``: a mock fleet over real SSH, one collection from it, the fleet report.

Starts ``mock-huawei-fleet`` with the ``demo`` scenario (routers and firewalls at three
sites, an HA firewall, one with a clock 95 s ahead, and a few faulty devices) on loopback
as a subprocess, waits for its ``READY`` line, runs ``collect-ike-offline collect``
against the inventory it wrote, with the password in the environment (never argv), into
a throw-away history database, and stops the fleet cleanly.

The demo's faulty devices make ``collect`` exit 1 ("some devices could not be read");
that is the expected outcome, so the demo prints the code and its meaning and exits 0.
It exits non-zero only when the demo itself breaks (the fleet does not start, or
``collect`` exits with anything but 0 or 1).

    python -m mock_devices.demo [--keep DIR] [--format json] [-- extra collect options]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mock_devices.process import start_fleet_process

EXPECTED = {0, 1}
"""Exit codes of ``collect`` that mean the demo worked (1: the faulty devices failed)."""
MEANINGS = {
    0: "every device was read",
    1: "some devices could not be read: the demo's faulty devices, as intended",
    2: "usage or configuration error",
    3: "every device failed",
    4: "a --fail-on threshold was breached",
    70: "internal error",
    75: "another run holds the lock",
}


def _collector_command() -> list[str]:
    script = Path(sys.executable).with_name("collect-ike-offline")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from collector.cli.main import main; main()"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mock_devices.demo",
        description="Start the demo mock fleet, collect from it, print the fleet report.",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the inventory, known_hosts and history database in DIR (default: a temp dir)",
    )
    parser.add_argument("--scenario", default="demo", help="mock fleet scenario (default: demo)")
    parser.add_argument(
        "collect_args", nargs="*", help="extra options for collect (after --), e.g. --format json"
    )
    return parser


def run_demo(directory: Path, scenario: str, extra: Sequence[str]) -> tuple[int, bool]:
    """Run the demo in ``directory``.

    Returns:
        collect's exit code, and whether it got as far as writing its report (the
        Prometheus textfile is written right after the report: a crash that also
        exits 1 writes none).
    """
    metrics = directory / "ike_offline.prom"
    password = secrets.token_urlsafe(12)
    print(f"demo: starting the mock fleet ({scenario} scenario) on 127.0.0.1 ...", file=sys.stderr)
    started = time.monotonic()
    fleet = start_fleet_process(
        directory / "fleet",
        ["--scenario", scenario, "--single-address", "--port", "0"],
        password=password,
        timeout=60.0,
    )
    try:
        print(
            f"demo: {fleet.ready_line.removeprefix('READY ').strip()} ready "
            f"({time.monotonic() - started:.1f} s); collecting ...",
            file=sys.stderr,
        )
        env = {**os.environ, "IKE_COLLECTOR_PASSWORD": password}
        env.pop("IKE_COLLECTOR_DB", None)
        command = [
            *_collector_command(),
            "collect",
            "--inventory",
            str(fleet.inventory_path),
            "--db",
            str(directory / "history.sqlite3"),
            "--known-hosts",
            str(directory / "known_hosts"),
            "--timeout",
            "10",
            "--retries",
            "0",
            "--clock-from-device",
            "--prometheus",
            str(metrics),
            *extra,
        ]
        shown = ["collect-ike-offline", *command[command.index("collect") :]]
        print("demo: $ IKE_COLLECTOR_PASSWORD=... " + " ".join(shown), file=sys.stderr)
        print(file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        code = subprocess.run(command, env=env, check=False).returncode
    finally:
        fleet.stop(signal.SIGTERM, timeout=20)
    return code, metrics.exists()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mock_devices.demo`` (``make demo``)."""
    args = _parser().parse_args(argv)
    began = time.monotonic()
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            code, reported = run_demo(args.keep, args.scenario, args.collect_args)
        else:
            with tempfile.TemporaryDirectory(prefix="ike-demo-") as temp:
                code, reported = run_demo(Path(temp), args.scenario, args.collect_args)
    except (RuntimeError, OSError) as error:
        print(f"demo: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    meaning = MEANINGS.get(code, "unexpected")
    if not reported:
        meaning = "collect stopped before its report: see the error above"
    print(
        f"\ndemo: collect exited {code} ({meaning}); fleet stopped; "
        f"{time.monotonic() - began:.1f} s in all",
        file=sys.stderr,
    )
    if code in EXPECTED and reported:
        return 0
    return code or 1


if __name__ == "__main__":
    sys.exit(main())
