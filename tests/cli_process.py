"""``collect`` in a process of its own against a mock fleet, JSON on stdout, the history and
known_hosts in the test's directory: for tests that need a fresh interpreter (what was
imported) or process limits (``ulimit``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from mock_devices.fleet import FleetThread


def run_collect(
    program: Sequence[str],
    fleet: FleetThread,
    directory: Path,
    password: str,
    *options: str,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``PROGRAM collect --inventory ... --format json OPTIONS``; the password in the
    environment, never on the command line."""
    return subprocess.run(
        [
            *program,
            "collect",
            "--inventory",
            str(fleet.inventory_path),
            "--known-hosts",
            str(directory / "known_hosts"),
            "--db",
            str(directory / "history.sqlite3"),
            "--format",
            "json",
            *options,
        ],
        env={**os.environ, "IKE_COLLECTOR_PASSWORD": password, "NO_COLOR": "1"},
        preexec_fn=preexec_fn,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
