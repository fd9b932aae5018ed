"""The authentication circuit breaker: a wrong password is not tried on the whole fleet.

Fleets log in against one TACACS+/RADIUS account, which locks after a few failures. So,
per user name (the credentials of a run differ only by the user each device logs in as):

* until a login as that user has succeeded, at most ``limit`` devices try it at once, and
  only while fewer than ``limit`` logins as that user have been refused;
* once ``limit`` logins were refused before any succeeded, the breaker is open: the
  devices not tried yet are not tried at all (``skipped-auth``);
* one success proves the credentials: from then on a refused login is that device's
  problem (a local account), counted nowhere, and the user is no longer gated.

What counts as a success is a session that got past authentication: a device read, or one
that failed after login (a refused command, an incomplete or oversized answer).

The state lives in shared memory made before the runner forks its ``--processes`` children
(``multiprocessing`` fork context), so every process and thread of a run shares one breaker:
at most ``limit`` refused logins per user in the whole run.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from collector.core.records import Device, DeviceResult, ErrorKind
from collector.ssh.credentials import Credentials, CredentialsError

__all__ = ["AuthBreaker", "Tripped"]

_PAST_LOGIN = frozenset(
    {ErrorKind.COMMAND_REJECTED, ErrorKind.INCOMPLETE_OUTPUT, ErrorKind.OVERSIZED_OUTPUT}
)
"""Failures that happen only after the device accepted the login."""
POLL = 0.05
"""Seconds between looks at the shared state while a user's logins are gated."""
_POLL = POLL


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

    def acquire(self, device: Device, stop: threading.Event) -> bool:
        """Wait until ``device`` may try to log in; False: its user's breaker is open.

        Returns at once once the user is proven; also False when ``stop`` is set.
        """
        while True:
            allowed = self.try_acquire(device)
            if allowed is not None:
                return allowed
            if stop.wait(_POLL):
                return False

    def try_acquire(self, device: Device) -> bool | None:
        """:meth:`acquire` without waiting: True (may log in), False (breaker open), or
        None (gated now: look again in :data:`POLL` seconds). For an event loop."""
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
        """Count the outcome of an attempt that :meth:`acquire` allowed."""
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

    def tripped(self) -> list[Tripped]:
        """The users whose breaker opened in this run."""
        with self._lock:
            return [
                Tripped(user, self._refused[key])
                for key, user in enumerate(self._users)
                if not self._proven[key] and self._refused[key] >= self.limit
            ]
