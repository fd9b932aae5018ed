"""The authentication circuit breaker: a wrong password is not tried on the whole fleet.

Fleets log in against one TACACS+/RADIUS account, which locks after a few failures. So,
per user name (the credentials of a run differ only by the user each device logs in as):

* until a login as that user has succeeded, at most ``limit`` devices try to log in as it
  at once, and only while fewer than ``limit`` logins as that user have been refused;
* once ``limit`` logins were refused before any succeeded, the breaker is open: the
  devices not tried yet are not tried at all (``skipped-auth``);
* one success proves the credentials: from then on a refused login is that device's
  problem (a local account), counted nowhere, and the user is no longer gated.

What counts as a success is a session that got past authentication: a device read, or one
that failed after login (a refused command, an incomplete or oversized answer).

Where the gate stands: an attempt takes its slot (a :class:`LoginGate`) right before its
first authentication request, after the TCP connect, the SSH banner, the key exchange and
the host-key check, and gives it back when the attempt ends. A device that accepts TCP and
never sends a banner sent no password: it holds no slot while it times out, so it neither
delays the other devices' logins nor counts as a refused one. A device that reaches the
gate once the breaker is open ends its attempt there (``skipped-auth``, no password sent);
one whose user is known open before its attempt starts is not connected to at all
(:meth:`AuthBreaker.is_open`). Every transport takes the gate the same way
(:meth:`LoginGate.enter` in a thread, :meth:`LoginGate.enter_async` in an event loop).

The state lives in shared memory made before the runner forks its ``--processes`` children
(``multiprocessing`` fork context), so every process and thread of a run shares one breaker:
at most ``limit`` refused logins per user in the whole run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from collector.core.records import Device, DeviceResult, ErrorKind
from collector.ssh.credentials import Credentials, CredentialsError
from collector.ssh.errors import DeadlinePassed, SessionError

__all__ = ["AuthBreaker", "LoginGate", "Tripped"]

_PAST_LOGIN = frozenset(
    {ErrorKind.COMMAND_REJECTED, ErrorKind.INCOMPLETE_OUTPUT, ErrorKind.OVERSIZED_OUTPUT}
)
"""Failures that happen only after the device accepted the login."""
POLL = 0.05
"""Seconds between looks at the shared state while a user's logins are gated."""


class Phased(Protocol):
    """Where a session stands (:class:`collector.ssh.protocol.Stage`)."""

    phase: str


@dataclass(frozen=True, slots=True)
class Tripped:
    """One user whose logins were stopped."""

    username: str
    refused: int
    """Logins refused before the breaker opened."""


class AuthBreaker:
    """Shared by every worker of one run (threads and forked processes).

    Args:
        devices: The run's devices (their user names are the breaker's keys).
        credentials: The run's credentials (``username_for`` gives each device's user).
        limit: Refused logins per user, before any success, that open the breaker (>= 1).
    """

    def __init__(self, devices: Iterable[Device], credentials: Credentials, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._key_of: dict[str, int] = {}
        users: dict[str, int] = {}
        for device in devices:
            try:
                user = credentials.username_for(device.username)
            except CredentialsError:
                continue  # the transport reports it; nothing to count
            self._key_of[device.name] = users.setdefault(user, len(users))
        self._users = list(users)
        context = multiprocessing.get_context("fork")
        size = max(1, len(users))
        self._lock = context.Lock()
        self._refused = context.RawArray("i", size)
        self._busy = context.RawArray("i", size)
        self._proven = context.RawArray("b", size)

    def __getstate__(self) -> None:
        raise TypeError("AuthBreaker is shared by forking, never pickled")

    def is_open(self, device: Device) -> bool:
        """Whether ``device``'s user is stopped (too many refused logins before any
        success): the attempt is not started at all. Takes no slot."""
        key = self._key_of.get(device.name)
        if key is None:
            return False
        with self._lock:
            return not self._proven[key] and self._refused[key] >= self.limit

    def try_acquire(self, device: Device) -> bool | None:
        """Whether ``device`` may log in now: True (may log in; a slot is taken unless the
        user is proven), False (breaker open), or None (gated now: look again in
        :data:`POLL` seconds). :class:`LoginGate` waits on it."""
        key = self._key_of.get(device.name)
        if key is None:
            return True
        with self._lock:
            if self._proven[key]:
                return True
            if self._refused[key] >= self.limit:
                return False
            if self._refused[key] + self._busy[key] < self.limit:
                self._busy[key] += 1
                return True
        return None

    def release(self, device: Device, result: DeviceResult) -> None:
        """Count the outcome of an attempt that :meth:`try_acquire` allowed."""
        key = self._key_of.get(device.name)
        if key is None:
            return
        kind = None if result.error is None else result.error.kind
        with self._lock:
            if self._proven[key]:
                return
            self._busy[key] = max(0, self._busy[key] - 1)
            if result.ok or kind in _PAST_LOGIN:
                self._proven[key] = 1
            elif kind is ErrorKind.AUTH:
                self._refused[key] += 1

    def skipped(self, device: Device) -> DeviceResult:
        """The result of a device not tried because its user's breaker is open."""
        key = self._key_of[device.name]
        return DeviceResult.failure(
            device,
            ErrorKind.SKIPPED_AUTH,
            f"not tried: {self._refused[key]} logins as '{self._users[key]}' were refused"
            " before any succeeded (--max-auth-failures)",
            attempts=0,
        )

    def username(self, device: Device) -> str | None:
        """The user ``device`` logs in as (None: it has none, nothing is gated)."""
        key = self._key_of.get(device.name)
        return None if key is None else self._users[key]

    def tripped(self) -> list[Tripped]:
        """The users whose breaker opened in this run."""
        with self._lock:
            return [
                Tripped(user, self._refused[key])
                for key, user in enumerate(self._users)
                if not self._proven[key] and self._refused[key] >= self.limit
            ]


class LoginGate:
    """One attempt's passage through the breaker, taken right before its first
    authentication request (see the module doc); made by the runner for each attempt and
    handed to the transport (:attr:`collector.ssh.base.Request.login_gate`).

    Args:
        breaker: The run's breaker.
        device: The device this attempt logs in to.
        stop: The run's stop event (a thread runner's): set, the wait ends as if the
            breaker were open.
    """

    def __init__(
        self, breaker: AuthBreaker, device: Device, stop: threading.Event | None = None
    ) -> None:
        self.breaker = breaker
        self.device = device
        self.stop = stop if stop is not None else threading.Event()
        self.taken = False
        """The breaker let this attempt log in (a slot, unless the user was proven)."""
        self._ended = False
        self._before = ""
        """The stage's phase before it showed the wait."""

    @property
    def phase(self) -> str:
        """What a device waiting here waits for (the progress line, a timeout's message)."""
        return f"waiting for a login as '{self.breaker.username(self.device)}' to succeed"

    def enter(self, stage: Phased, aborted: threading.Event | None = None) -> None:
        """Wait, blocking, until this attempt may authenticate (at once after the first
        call). ``stage`` shows :attr:`phase` while it waits.

        Raises:
            SessionError: ``skipped-auth``: the breaker is open (or the run stops); the
                attempt ends without authenticating.
            DeadlinePassed: ``aborted`` was set (the attempt's deadline passed), or the
                attempt has ended already.
        """
        allowed = self._look(stage)
        while allowed is None:
            if aborted is not None and aborted.is_set():
                raise DeadlinePassed
            # The run stops: as if the breaker were open.
            allowed = False if self.stop.wait(POLL) else self._look(stage)
        self._admit(allowed, stage)

    async def enter_async(self, stage: Phased) -> None:
        """:meth:`enter` for an event loop: the deadline is the caller's (cancellation)."""
        allowed = self._look(stage)
        while allowed is None:
            await asyncio.sleep(POLL)
            allowed = self._look(stage)
        self._admit(allowed, stage)

    def release(self, result: DeviceResult) -> None:
        """The attempt ended with ``result``: count it if the gate was taken; the gate
        stays shut from now on (an abandoned session never takes a slot afterwards)."""
        self._ended = True
        if self.taken:
            self.taken = False
            self.breaker.release(self.device, result)

    def _look(self, stage: Phased) -> bool | None:
        if self._ended:
            raise DeadlinePassed
        if self.taken:
            return True
        allowed = self.breaker.try_acquire(self.device)
        if allowed:
            self.taken = True
        elif allowed is None and stage.phase != self.phase:
            self._before = stage.phase
            stage.phase = self.phase
        return allowed

    def _admit(self, allowed: bool, stage: Phased) -> None:
        if not allowed:
            error = self.breaker.skipped(self.device).error
            assert error is not None
            raise SessionError(ErrorKind.SKIPPED_AUTH, error.message)
        if stage.phase == self.phase:
            stage.phase = self._before
