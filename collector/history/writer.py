"""The history written off the collection's path: one thread stores every result.

``collect`` hands each device's result to :meth:`StoreWriter.put` and goes on reading the
fleet; a thread of the writer's own stores them in arrival order, one transaction per
device (:meth:`collector.history.store.Store.record_device`, unchanged), while the
collection's thread parses, counts and spools the next ones (SQLite and PostgreSQL leave
the GIL while they work). What the store said about each device (its
:class:`~collector.history.store.DeviceOutcome`, or why it was not stored) comes back
through :meth:`StoreWriter.stored`, in the same order, for the log, the warnings and the
report. Nothing is acknowledged before its transaction committed; :meth:`close` stores
what was handed over before it returns. After the database itself failed, the results
still handed over are not offered to it (as the collection did without a writer): they
come back with ``skipped`` set, so the report can name them.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from collector.core.records import DeviceResult
from collector.history.store import DeviceOutcome, Store, StoreError

BACKLOG = 64
"""Results handed over and not stored yet, at most: past that :meth:`StoreWriter.put`
waits (a database slower than the fleet slows the collection down instead of holding
every device's records in memory)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of one result handed to the writer."""

    result: DeviceResult
    outcome: DeviceOutcome | None = None
    """Set once its transaction committed."""
    error: Exception | None = None
    """Why it was not stored: a :class:`StoreError` (this device's data, e.g. its zone),
    else the database (or a bug) failed, and nothing more is offered to it."""
    skipped: bool = False
    """Not offered: the database had failed on an earlier result."""


class StoreWriter:
    """Stores one run's results in a thread of its own (see the module docstring)."""

    def __init__(self, store: Store, run_id: int, *, backlog: int = BACKLOG) -> None:
        self._store = store
        self._run_id = run_id
        self._pending: queue.Queue[DeviceResult | None] = queue.Queue(maxsize=max(backlog, 1))
        self._stored: queue.SimpleQueue[Stored] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def put(self, result: DeviceResult) -> None:
        """Hand one result over (waits while :data:`BACKLOG` results are pending)."""
        self._pending.put(result)

    def stored(self) -> list[Stored]:
        """What was stored (or not) since the last call, in the order handed over."""
        done: list[Stored] = []
        while True:
            try:
                done.append(self._stored.get_nowait())
            except queue.Empty:
                return done

    def close(self) -> list[Stored]:
        """Store what was handed over, stop the thread; what :meth:`stored` has left."""
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join()
        return self.stored()

    def _run(self) -> None:
        failed = False
        while True:
            result = self._pending.get()
            if result is None:
                return
            if failed:
                self._stored.put(Stored(result, skipped=True))
                continue
            try:
                outcome = self._store.record_device(self._run_id, result)
            except Exception as error:  # handed back to the collection's thread
                failed = not isinstance(error, StoreError)
                self._stored.put(Stored(result, error=error))
            else:
                self._stored.put(Stored(result, outcome))
