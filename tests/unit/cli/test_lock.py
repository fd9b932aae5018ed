"""The run lock: exclusive, non-blocking, released when its process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from collector.cli.exitcodes import EXIT_LOCKED
from collector.cli.lock import LockHeld, RunLock, default_lock_path

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from collector.cli.lock import RunLock
lock = RunLock({path!r})
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def _hold_in_child(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_second_holder_fails_at_once_with_pid(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    child = _hold_in_child(path)
    try:
        with pytest.raises(LockHeld) as info:
            RunLock(path).acquire()
        assert info.value.pid == child.pid
        assert str(child.pid) in str(info.value) and str(path) in str(info.value)
    finally:
        child.kill()
        child.wait()
    assert EXIT_LOCKED == 75


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    child = _hold_in_child(path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with RunLock(path) as lock:
        assert lock.held
        assert path.read_text().strip() == str(os.getpid())
    assert not lock.held


def test_release_lets_the_next_run_in(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.lock"
    first = RunLock(path)
    first.acquire()
    first.acquire()  # idempotent
    second = RunLock(path)
    with pytest.raises(LockHeld):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_default_lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_lock_path(str(tmp_path / "h.sqlite3")) == tmp_path / "h.sqlite3.lock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_lock_path("postgresql://x@db/h") == tmp_path / "collect-ike-offline.lock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_lock_path(None) == tmp_path / "xdg" / "collect-ike-offline" / (
        "history.sqlite3.lock"
    )
