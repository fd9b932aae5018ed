"""Run ``mock-huawei-fleet`` as a subprocess and wait for its ``READY`` line.

Used by the CLI tests, the load check and anything that must not share a process (or a GIL)
with the fleet, e.g. to measure the fleet's CPU separately from the client's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FleetProcess:
    """A ``mock-huawei-fleet`` subprocess that printed READY."""

    process: subprocess.Popen[str]
    inventory_path: Path
    password: str = field(repr=False)
    ready_line: str = ""
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The fleet's process id."""
        return self.process.pid

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the process and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _fleet_command() -> list[str]:
    script = Path(sys.executable).with_name("mock-huawei-fleet")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "mock_devices.fleet"]


def start_fleet_process(
    directory: Path,
    args: list[str],
    password: str = "mock-password",
    timeout: float = 120.0,
) -> FleetProcess:
    """Start ``mock-huawei-fleet ARGS --inventory DIR/hosts.yaml`` and wait for ``READY``.

    The password goes through ``MOCK_PASSWORD`` in the environment, never argv.
    """
    inventory = directory / "hosts.yaml"
    env = {**os.environ, "MOCK_PASSWORD": password}
    process = subprocess.Popen(
        [*_fleet_command(), *args, "--inventory", str(inventory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    handle = FleetProcess(process=process, inventory_path=inventory, password=password)

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            handle.stderr_lines.append(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    result: list[str] = []

    def wait_ready() -> None:
        assert process.stdout is not None
        result.append(process.stdout.readline())

    reader = threading.Thread(target=wait_ready, daemon=True)
    reader.start()
    reader.join(timeout)
    line = result[0].strip() if result else ""
    if not line.startswith("READY"):
        handle.stop(signal.SIGKILL)
        raise RuntimeError(
            f"mock-huawei-fleet did not print READY (got {line!r}); stderr: "
            + " | ".join(handle.stderr_lines[-5:])
        )
    handle.ready_line = line
    return handle
