"""The auth breaker's gate, without SSH: when an attempt takes a slot, what it counts, what a
waiting session shows, and how a wait ends (the SSH paths are in
``tests/e2e/test_e2e_auth_breaker.py``)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind
from collector.ssh.breaker import AuthBreaker, LoginGate
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.errors import DeadlinePassed, SessionError
from collector.ssh.protocol import Stage

DEVICES = [Device(f"r{number}", "192.0.2.1") for number in range(4)]
REFUSED = DeviceResult.failure(DEVICES[0], ErrorKind.AUTH, "authentication failed")
SILENT = DeviceResult.failure(DEVICES[0], ErrorKind.TIMEOUT, "no SSH banner")
OPEN_MESSAGE = (
    "not tried: 1 logins as 'admin' were refused before any succeeded (--max-auth-failures)"
)


def breaker(limit: int = 1) -> AuthBreaker:
    return AuthBreaker(DEVICES, Credentials("admin", Secret("pw")), limit)


def test_a_gate_never_entered_takes_no_slot_and_counts_nothing() -> None:
    """An attempt that ended before authenticating (no banner) leaves the slot to others."""
    run = breaker(limit=1)
    silent = LoginGate(run, DEVICES[0])
    other = LoginGate(run, DEVICES[1])
    other.enter(Stage())  # the only slot, while the silent device still waits for a banner
    assert other.taken
    silent.release(SILENT)
    assert not silent.taken
    other.release(REFUSED)
    assert run.is_open(DEVICES[2])
    assert [(t.username, t.refused) for t in run.tripped()] == [("admin", 1)]


def test_entering_twice_takes_one_slot() -> None:
    """asyncssh may ask for the keys, then the password: one attempt, one slot."""
    run = breaker(limit=2)
    gate = LoginGate(run, DEVICES[0])
    gate.enter(Stage())
    gate.enter(Stage())
    LoginGate(run, DEVICES[1]).enter(Stage())  # the second slot is still free
    assert run.try_acquire(DEVICES[2]) is None


def test_the_breaker_open_at_the_gate_ends_the_attempt_skipped_auth() -> None:
    run = breaker(limit=1)
    first = LoginGate(run, DEVICES[0])
    first.enter(Stage())
    first.release(REFUSED)
    stage = Stage("SSH negotiation and login")
    with pytest.raises(SessionError) as raised:
        LoginGate(run, DEVICES[1]).enter(stage)
    assert (raised.value.kind, raised.value.message) == (ErrorKind.SKIPPED_AUTH, OPEN_MESSAGE)
    assert run.skipped(DEVICES[1]).error is not None
    assert run.skipped(DEVICES[1]).error.message == OPEN_MESSAGE  # type: ignore[union-attr]


def test_a_waiting_session_shows_the_wait_then_goes_on() -> None:
    """The phase names the wait (progress line, a timeout's message) and comes back once
    the user is proven."""
    run = breaker(limit=1)
    holder = LoginGate(run, DEVICES[0])
    holder.enter(Stage())
    stage = Stage("SSH negotiation and login")
    seen: list[str] = []
    waiter = threading.Thread(target=LoginGate(run, DEVICES[1]).enter, args=(stage,))
    waiter.start()
    for _ in range(500):  # until the waiter shows its wait (or gave up: the test fails)
        if stage.phase != "SSH negotiation and login" or not waiter.is_alive():
            seen.append(stage.phase)
            break
        threading.Event().wait(0.01)
    holder.release(DeviceResult(DEVICES[0], DeviceStatus.OK))
    waiter.join(5)
    assert not waiter.is_alive()
    assert seen == ["waiting for a login as 'admin' to succeed"]
    assert stage.phase == "SSH negotiation and login"


def test_a_wait_ends_at_the_deadline_and_when_the_run_stops() -> None:
    run = breaker(limit=1)
    LoginGate(run, DEVICES[0]).enter(Stage())
    aborted = threading.Event()
    aborted.set()  # the watchdog fired (the deadline or --connect-timeout)
    stage = Stage()
    with pytest.raises(DeadlinePassed):
        LoginGate(run, DEVICES[1]).enter(stage, aborted)
    assert stage.phase == "waiting for a login as 'admin' to succeed"  # for the message
    stop = threading.Event()
    stop.set()
    with pytest.raises(SessionError) as raised:
        LoginGate(run, DEVICES[1], stop).enter(Stage())
    assert raised.value.kind is ErrorKind.SKIPPED_AUTH


def test_an_ended_attempt_never_takes_a_slot_afterwards() -> None:
    """A session abandoned by its runner may still reach the gate: it must not take a slot
    nobody will release."""
    run = breaker(limit=1)
    late = LoginGate(run, DEVICES[0])
    late.release(SILENT)
    with pytest.raises(DeadlinePassed):
        late.enter(Stage())
    assert run.try_acquire(DEVICES[1]) is True


def test_the_event_loop_gate_waits_without_blocking_the_loop() -> None:
    run = breaker(limit=1)
    holder = LoginGate(run, DEVICES[0])
    holder.enter(Stage())
    stage = Stage()

    async def main() -> list[str]:
        waiter = asyncio.create_task(LoginGate(run, DEVICES[1]).enter_async(stage))
        await asyncio.sleep(0.2)  # the loop runs meanwhile
        phases = [stage.phase]
        holder.release(REFUSED)  # opens the breaker (limit 1)
        with pytest.raises(SessionError):
            await waiter
        return phases

    assert asyncio.run(main()) == ["waiting for a login as 'admin' to succeed"]


def test_a_proven_user_is_not_gated() -> None:
    run = breaker(limit=1)
    gate = LoginGate(run, DEVICES[0])
    gate.enter(Stage())
    gate.release(DeviceResult(DEVICES[0], DeviceStatus.OK))
    for device in DEVICES[1:]:
        LoginGate(run, device).enter(Stage())  # all at once, no slot needed
    assert not run.is_open(DEVICES[1])
