"""Per-device deadlines and the one watchdog thread that enforces them.

A :class:`Deadline` is the point in time by which one device must be done. :func:`watched`
schedules an abort on :data:`WATCHDOG` (one daemon thread for all devices, cheaper than a
``threading.Timer`` each): when the deadline passes, the deadline is marked fired and the
abort runs (the session shuts its socket and paramiko transport), so a hung banner or a
silent device ends in ``timeout`` at the deadline whatever the SSH libraries wait for.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["WATCHDOG", "Deadline", "watched"]

log = logging.getLogger(__name__)


class Deadline:
    """A point in time (monotonic) by which one device must be done."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._fired = threading.Event()

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        """True once the deadline passed (or the watchdog fired)."""
        return self._fired.is_set() or self.remaining() <= 0

    @property
    def fired(self) -> bool:
        """True only if the watchdog fired it (not merely because time went by)."""
        return self._fired.is_set()

    def fire(self) -> None:
        """Mark the deadline as passed (the watchdog calls this before aborting)."""
        self._fired.set()


class _Watchdog:
    """One daemon thread that runs callbacks at deadlines (cheaper than a Timer each)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._pending: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` at monotonic time ``when`` unless cancelled first."""
        with self._cond:
            ident = next(self._ids)
            heapq.heappush(self._heap, (when, ident, callback))
            self._pending.add(ident)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="collector-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return ident

    def cancel(self, ident: int) -> None:
        with self._cond:
            self._pending.discard(ident)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][1] not in self._pending:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        _, ident, callback = heapq.heappop(self._heap)
                        self._pending.discard(ident)
                        break
                    self._cond.wait(delay)
            try:
                callback()
            except Exception:  # one broken abort must not stop the other deadlines
                log.exception("watchdog callback failed")


WATCHDOG = _Watchdog()


@contextlib.contextmanager
def watched(deadline: Deadline, abort: Callable[[], None]) -> Iterator[None]:
    """Call ``abort`` (after marking ``deadline`` fired) if the block outlives the deadline."""

    def fire() -> None:
        deadline.fire()
        abort()

    ident = WATCHDOG.schedule(deadline.end, fire)
    try:
        yield
    finally:
        WATCHDOG.cancel(ident)
