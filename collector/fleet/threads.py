"""Before a fork: wait until the threads that have ended are gone from the OS as well.

``Thread.join()`` returns when the thread's Python part is over; the OS thread then still
runs the C libraries' thread-exit handlers. OpenSSL's (the copy inside ``cryptography``,
which paramiko and asyncssh use) take OpenSSL's global thread-event write lock. A fork in
that moment gives the child the lock as held by a thread it does not have, and the child's
first thread that uses OpenSSL waits for it forever. Seen in a test that ran an asyncssh
fleet in its own process and then a sharded one: the child hung in
``Ed25519PublicKey.from_public_bytes`` on a write lock whose owner (``__cur_writer``, read
with gdb) was the tid of the earlier run's event-loop thread, joined before the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

_TASKS = "/proc/self/task"

SETTLE_LIMIT = 1.0
"""Seconds to wait at most. An ending thread is gone within microseconds, milliseconds on
a loaded machine; a thread still there after this is a native one that Python never saw
(a C library's own), which does not end, and the fork goes ahead."""


def strays() -> set[int]:
    """OS threads of this process that are not live Python threads (empty if there is no
    ``/proc``: nothing to wait for that we can see)."""
    try:
        tasks = {int(name) for name in os.listdir(_TASKS)}
    except OSError:
        return set()
    return tasks - {thread.native_id for thread in threading.enumerate()}


def settle_ended_threads(limit: float = SETTLE_LIMIT) -> None:
    """Return once every OS thread of this process is a live Python thread, or after
    ``limit`` seconds (then the strays are logged at debug level)."""
    deadline = time.monotonic() + limit
    left = strays()
    while left and time.monotonic() < deadline:
        time.sleep(0.001)
        left = strays()
    if left:
        log.debug("forking beside %d native thread(s) Python does not know", len(left))
