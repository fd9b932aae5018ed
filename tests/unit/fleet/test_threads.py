"""Before a fork, the threads that ended are gone from the OS too (OpenSSL's exit lock)."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from datetime import UTC, datetime

import pytest

from collector.core.records import Device, DeviceResult, DeviceStatus
from collector.fleet import run
from collector.fleet.run import collect_fleet
from collector.fleet.threads import settle_ended_threads, strays
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.protocol import RunOptions

LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
EXIT_HANDLER_SLEEP_US = 300_000


def _slow_exit_handler_key() -> ctypes.c_uint:
    """A thread-specific key whose destructor is ``usleep(value)``: a thread that sets it
    runs 0.3 s of C exit handlers after its Python part, as OpenSSL's do (briefly) under
    its global lock, so the window a fork must not fall into is wide open."""
    key = ctypes.c_uint()
    usleep = ctypes.cast(LIBC.usleep, ctypes.c_void_p)
    assert LIBC.pthread_key_create(ctypes.byref(key), usleep) == 0
    return key


KEY = _slow_exit_handler_key()


def _thread_with_slow_exit() -> None:
    LIBC.pthread_setspecific.argtypes = [ctypes.c_uint, ctypes.c_void_p]
    assert LIBC.pthread_setspecific(KEY, ctypes.c_void_p(EXIT_HANDLER_SLEEP_US)) == 0


def test_join_returns_before_the_os_thread_is_gone_and_settling_waits_for_it() -> None:
    thread = threading.Thread(target=_thread_with_slow_exit)
    thread.start()
    thread.join()
    assert strays() == {thread.native_id}  # joined, yet still running its exit handlers
    began = time.monotonic()
    settle_ended_threads()
    assert strays() == set()
    assert 0.1 < time.monotonic() - began < 1.0  # waited for it, and no longer


def test_a_native_thread_python_never_saw_does_not_hold_up_the_fork() -> None:
    handle = ctypes.c_ulong()
    # A thread of C code only (sleep(2), its argument passed as the start routine's):
    # it is no Python thread, so it stays a stray until it ends.
    assert LIBC.pthread_create(ctypes.byref(handle), None, LIBC.sleep, ctypes.c_void_p(2)) == 0
    try:
        time.sleep(0.05)
        assert len(strays()) == 1
        began = time.monotonic()
        settle_ended_threads(limit=0.2)
        assert 0.2 <= time.monotonic() - began < 1.5
    finally:
        LIBC.pthread_join(handle, None)
    assert strays() == set()


class _StartedAt:
    """A transport that only says when the (forked) child collected each device."""

    name = "fake"
    known_hosts = None

    def collect(self, device: Device, credentials: Credentials, **_: object) -> DeviceResult:
        return DeviceResult(device, DeviceStatus.OK, started=datetime.now(UTC))


def test_sharded_run_forks_only_once_an_ended_thread_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run, "MIN_DEVICES_PER_PROCESS", 1)
    inventory = [Device(f"r{n}", "127.0.0.1", 22) for n in range(4)]
    credentials = Credentials("admin", Secret("threads-canary-Pw"))
    thread = threading.Thread(target=_thread_with_slow_exit)
    thread.start()
    thread.join()  # its exit handlers run 0.3 s more
    began = datetime.now(UTC)
    results = collect_fleet(inventory, credentials, _StartedAt(), RunOptions(processes=2))
    assert [r.device.name for r in results] == ["r0", "r1", "r2", "r3"]
    first = min(r.started for r in results if r.started is not None)
    assert (first - began).total_seconds() >= 0.2  # the children came after the thread left
