"""The progress display in a real pseudo-terminal: the collector runs with stderr on a pty of
a given width, against mock devices over SSH, one of them slow. What the terminal receives
is checked: the display is drawn while the run waits for the slow device and names it, every
drawn line fits the width (60 and 200 columns), warnings come out whole above it, and
``TERM=dumb`` gets neither the display nor colour."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from helpers import SCRIPT, collect_argv

from mock_devices.fleet import start_fleet

PASSWORD = "pty-Pw-808"
SPEC = {
    "defaults": {"username": "admin", "records": {"generate": {"count": 5, "seed": 6}}},
    "devices": [
        {"name": "fast-1"},
        {"name": "fast-2", "layout": "firewall"},
        {"name": "closed-1", "faults": ["port_closed"]},
        {"name": "a-rather-slow-firewall-in-shanghai", "latency_ms": 1500},
    ],
}


def run_on_pty(tmp_path: Path, columns: int, term: str = "xterm") -> str:
    """Run collect with stderr on a pty ``columns`` wide; everything the terminal got."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with start_fleet(SPEC, password=PASSWORD, inventory=tmp_path / f"inv-{columns}") as fleet:
        assert fleet.inventory_path is not None
        env = {**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "TERM": term}
        env.pop("NO_COLOR", None)
        process = subprocess.Popen(
            [
                str(SCRIPT),
                *collect_argv(
                    fleet.inventory_path,
                    tmp_path,
                    *("--no-store", "--retries", "0"),
                    *("--output", str(tmp_path / f"report-{columns}.txt")),
                ),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=env,
        )
        os.close(follower)
        received = bytearray()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 1  # closed-1 failed
    return received.decode("utf-8", "replace")


def drawn_lines(text: str) -> list[str]:
    """What each redraw or line put on the screen (erase sequences and line ends split it)."""
    return [part for part in re.split(r"\r\x1b\[K|\r?\n", text) if part]


@pytest.mark.parametrize("columns", [60, 200])
def test_progress_stays_on_screen_and_fits(tmp_path: Path, columns: int) -> None:
    text = run_on_pty(tmp_path, columns)
    lines = drawn_lines(text)
    waiting = [line for line in lines if "1 left: a-rather-slow" in line]
    assert len(waiting) >= 2, text  # redrawn while the run waits for the slow device
    display = [line for line in lines if " devices, " in line and "failed" in line]
    assert display and all(len(line) <= columns for line in display), [
        line for line in display if len(line) > columns
    ]
    if columns >= 200:
        # What it waits for, and for how long: "(login, 2 s)", "('display ike ...', 3 s)".
        assert re.search(r"1 left: a-rather-slow-firewall-in-shanghai \([^,()]+, \d+ s\)", text)
    # The warning scrolled up whole (not cut by the display): the record is one line.
    warning = [line for line in lines if "closed-1: unreachable" in line]
    assert warning and all(line.startswith("collect-ike-offline: ") for line in warning)
    assert "\x1b[33m" in text  # colour on a terminal


def test_term_dumb_gets_no_display_and_no_colour(tmp_path: Path) -> None:
    text = run_on_pty(tmp_path, 80, term="dumb")
    assert "\x1b[" not in text
    assert "left:" not in text and "devices, " not in text
    assert "closed-1: unreachable" in text


def test_tables_fit_the_terminal(tmp_path: Path) -> None:
    """The report on a terminal 100 columns wide: long error messages are wrapped inside
    their cells, so no line of the Devices tables is wider than the terminal; JSON keeps
    the message whole."""
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 3, "seed": 2}}},
        "devices": [{"name": "fine"}, {"name": "garbled", "faults": ["garbage_output"]}],
    }
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        args = [str(SCRIPT), *collect_argv(fleet.inventory_path, tmp_path, "--no-store")]
        env = {**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "COLUMNS": "100"}
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL, env=env
        )
        os.close(follower)
        received = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        process.wait(timeout=120)
        whole = subprocess.run(
            [*args, "--format", "json"], capture_output=True, env=env, timeout=120, check=False
        )
    os.close(leader)
    table = received.decode("utf-8", "replace").replace("\r\n", "\n")
    assert "Devices that could not be read" in table
    lines = [  # the two device tables, title to the blank line after them
        line
        for title in ("Devices\n=======\n", "Devices that could not be read\n")
        for line in table.split(title, 1)[1].split("\n\n", 1)[0].splitlines()
    ]
    assert any("unexpected answer" in line for line in lines)
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    import json

    devices = {d["name"]: d for d in json.loads(whole.stdout)["devices"]}
    message = devices["garbled"]["error"]["message"]
    assert len(message) > 100 and message.startswith("unexpected answer to")
