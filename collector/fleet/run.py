"""The fan-out: collect many devices at once, with deadlines, retries and progress.

A fixed number of worker threads take devices from a queue and call
``transport.collect`` for each. The transport enforces each device's deadline itself (a
watchdog closes the socket); as a second line of defence, the runner reports a device as
``timeout`` once ``timeout + grace`` seconds have passed on one attempt, whatever its
thread is still stuck in, and starts a replacement worker so the pool keeps its width.
Workers are daemon threads, so an abandoned one never holds up the end of the run.

Retries: a failed attempt whose error kind is in ``retry_on`` (by default connection
failures: ``unreachable``, ``timeout``) is tried again after ``backoff * 2**(n-1)``
seconds (capped at :data:`collector.core.retry.MAX_BACKOFF`), but not after a second
timeout in the same phase (TCP connect, login, a command: it will time out there again);
authentication, host-key, refused-command and protocol failures are never retried
(retrying them cannot help and may lock the account).
With an :class:`~collector.ssh.breaker.AuthBreaker`, an attempt whose user is stopped
already (too many refused logins) is not started (``skipped-auth``); every other attempt
gets a :class:`~collector.ssh.breaker.LoginGate` that the transport takes right before
authenticating (gated until a login as that user succeeded), released when it ends.
One device's failure never affects another: every exception is turned into that device's
result.

Processes: one Python process uses at most about one core (paramiko is pure Python around
its crypto and the GIL serialises it), so with ``processes > 1`` and at least
:data:`MIN_DEVICES_PER_PROCESS` devices per process, the devices are split round-robin
into shards and one child per shard is FORKED (so the credentials, whose
:class:`~collector.ssh.credentials.Secret` refuses to be pickled, the transport and the
host-key store are inherited, never pickled) before the parent starts any thread. Each
child runs the thread pool above over its shard with ``workers // processes`` workers
(deadlines and retries stay in the child) and sends every result back over a pipe as soon
as it is done (without its :class:`Device`, whose mappings do not pickle: the parent puts
its own back), with the host keys it trusted on first use, so the parent yields results in
completion order, keeps the one store writer and the ``trusted`` summary right. A child
that dies has its remaining devices reported ``protocol`` failures; when the parent stops
(Ctrl-C, an exception, the consumer closing the iterator) it terminates the children, and
a child whose parent died exits by itself.

Size: over 500 lines because the thread pool and the forked-process fan-out share the retry,
deadline and progress handling and the child-death rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait

from collector.core.commands import validate_peer
from collector.core.options import DEFAULT_WORKERS, plural
from collector.core.protocols import STRAGGLERS, Progress, Straggler, devices_left
from collector.core.records import Device, DeviceResult, ErrorKind
from collector.core.retry import abandoned, internal_error, retry_delay
from collector.fleet.threads import settle_ended_threads
from collector.ssh.breaker import AuthBreaker, LoginGate
from collector.ssh.credentials import Credentials
from collector.ssh.protocol import DEFAULT_RETRY_ON, RunOptions, Transport, current_phase

__all__ = [
    "DEFAULT_RETRY_ON",
    "DEFAULT_WORKERS",
    "MIN_DEVICES_PER_PROCESS",
    "auto_processes",
    "collect_fleet",
    "iter_fleet",
]

log = logging.getLogger("collector.fleet.run")

MIN_DEVICES_PER_PROCESS = 25
"""Fewer devices per process than this and a run stays in one process (forking a child
and its pipe costs more than the CPU it would spread)."""
MAX_AUTO_PROCESSES = 4


def auto_processes(devices: int) -> int:
    """The ``--processes auto`` rule: 1 for a small fleet, else one per core (at most 4).

    Small means fewer than ``2 x`` :data:`MIN_DEVICES_PER_PROCESS` devices.
    """
    if devices < 2 * MIN_DEVICES_PER_PROCESS:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_PROCESSES))


def _effective_processes(processes: int, workers: int, devices: int) -> int:
    """Processes actually used: never more than workers, nor than the fleet justifies.

    Examples:
        >>> _effective_processes(2, 32, 1000), _effective_processes(2, 32, 30)
        (2, 1)
        >>> _effective_processes(4, 2, 1000), _effective_processes(1, 32, 1000)
        (2, 1)
    """
    return max(1, min(processes, workers, devices // MIN_DEVICES_PER_PROCESS))


@dataclass(slots=True)
class _InFlight:
    """One device being worked on (written by its worker, read by the runner)."""

    started: float
    """Monotonic start of the current attempt."""
    attempt: int
    thread: int = 0
    """The worker thread reading it (for :func:`~collector.ssh.transport.current_phase`)."""
    waiting: bool = False
    """Sleeping between attempts (not overdue, whatever the clock says)."""


class _Fleet:
    """The state of one run: queue, workers, in-flight table, results."""

    def __init__(
        self,
        devices: Sequence[Device],
        collect_one: Callable[[Device, LoginGate | None], DeviceResult],
        *,
        workers: int,
        timeout: float,
        retries: int,
        backoff: float,
        retry_on: frozenset[ErrorKind],
        grace: float,
        breaker: AuthBreaker | None = None,
    ) -> None:
        self.devices = devices
        self.breaker = breaker
        self.collect_one = collect_one
        self.width = max(1, min(workers, len(devices)))
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.retry_on = retry_on
        self.grace = grace
        self.todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[int, DeviceResult]] = queue.SimpleQueue()
        self.in_flight: dict[int, _InFlight] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._names = iter(range(1, 1_000_000))

    def start(self) -> None:
        for index in range(len(self.devices)):
            self.todo.put(index)
        for _ in range(self.width):
            self.spawn()

    def spawn(self) -> None:
        thread = threading.Thread(
            target=self.work, name=f"collector-{next(self._names)}", daemon=True
        )
        thread.start()

    def work(self) -> None:
        while not self.stop.is_set():
            try:
                index = self.todo.get_nowait()
            except queue.Empty:
                return
            result = self.with_retries(index)
            with self.lock:
                self.in_flight.pop(index, None)
            self.results.put((index, result))

    def with_retries(self, index: int) -> DeviceResult:
        device = self.devices[index]
        attempt = 0
        breaker = self.breaker
        timed_out_in: set[str] = set()
        while True:
            if breaker is not None and breaker.is_open(device):
                return breaker.skipped(device)
            attempt += 1
            with self.lock:
                self.in_flight[index] = _InFlight(time.monotonic(), attempt, threading.get_ident())
            # The transport takes the gate before authenticating (not before connecting).
            gate = None if breaker is None else LoginGate(breaker, device, self.stop)
            result = self.attempt(device, gate)
            if gate is not None:
                gate.release(result)
            if self.stop.is_set():
                break
            delay = retry_delay(
                result,
                attempt,
                retries=self.retries,
                backoff=self.backoff,
                retry_on=self.retry_on,
                timed_out_in=timed_out_in,
            )
            if delay is None:
                break
            with self.lock:
                self.in_flight[index].waiting = True
            if self.stop.wait(delay):
                break
        return dataclasses.replace(result, attempts=attempt)

    def attempt(self, device: Device, gate: LoginGate | None) -> DeviceResult:
        started = datetime.now(UTC)
        try:
            return self.collect_one(device, gate)
        except Exception as exc:  # a bug in one device's path must not end the run
            return internal_error(device, exc, started)

    def overdue(self, emitted: set[int]) -> list[tuple[int, _InFlight]]:
        """Attempts stuck past deadline + grace (their threads are abandoned)."""
        limit = self.timeout + self.grace
        now = time.monotonic()
        with self.lock:
            stuck = [
                (index, flight)
                for index, flight in self.in_flight.items()
                if not flight.waiting and now - flight.started > limit and index not in emitted
            ]
            for index, _ in stuck:
                del self.in_flight[index]
        return stuck

    def stragglers(self, emitted: set[int]) -> tuple[Straggler, ...]:
        """The devices not done yet: how long their current attempt has run, its phase."""
        with self.lock:
            flights = {
                index: (
                    flight.started,
                    "waiting to retry" if flight.waiting else current_phase(flight.thread),
                )
                for index, flight in self.in_flight.items()
            }
        return devices_left(
            [device.name for device in self.devices], emitted, flights, time.monotonic()
        )

    def next_check(self) -> float:
        """Seconds until the earliest in-flight attempt could become overdue."""
        limit = self.timeout + self.grace
        now = time.monotonic()
        with self.lock:
            starts = [f.started for f in self.in_flight.values() if not f.waiting]
        if not starts:
            return 1.0
        return max(0.05, min(1.0, min(starts) + limit - now))


def _iter_indexed(
    devices: Sequence[Device],
    credentials: Credentials,
    transport: Transport,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
) -> Generator[tuple[int, DeviceResult], None, None]:
    """The run itself: ``(position in devices, result)`` in completion order (the peer and
    the timeout are checked once, by :func:`_iter_run`, before any child exists)."""
    peer, timeout = options.peer, options.timeout
    device_list = devices
    total = len(device_list)
    if total == 0:
        return
    fan_out = getattr(transport, "iter_indexed", None)
    if fan_out is not None:  # a transport with its own fan-out (asyncssh: one event loop)
        yield from fan_out(device_list, credentials, options, on_progress)
        return

    def collect_one(device: Device, gate: LoginGate | None) -> DeviceResult:
        return transport.collect(
            device,
            credentials,
            peer=peer,
            timeout=timeout,
            clock=options.clock,
            keep_raw=options.keep_raw,
            login_gate=gate,
        )

    fleet = _Fleet(
        device_list,
        collect_one,
        workers=options.workers,
        timeout=timeout,
        retries=options.retries,
        backoff=options.backoff,
        retry_on=options.retry_on,
        grace=options.grace,
        breaker=options.breaker,
    )
    began = time.monotonic()
    emitted: set[int] = set()
    failed = 0
    fleet.start()
    try:
        while len(emitted) < total:
            ready: list[tuple[int, DeviceResult]] = []
            with contextlib.suppress(queue.Empty):
                ready.append(fleet.results.get(timeout=fleet.next_check()))
                while True:  # and whatever else finished meanwhile
                    ready.append(fleet.results.get_nowait())
            left = total - len(emitted)
            if not ready and on_progress is not None and left <= STRAGGLERS:
                # Waiting for stragglers: a fresh look at what they are doing, every second.
                progress = Progress(
                    total, len(emitted), failed, time.monotonic() - began, fleet.stragglers(emitted)
                )
                on_progress(progress)
            for index, flight in fleet.overdue(emitted):
                device = device_list[index]
                ready.append((index, abandoned(device, timeout, fleet.grace, flight.attempt)))
                fleet.spawn()  # keep the pool at its width
            for index, result in ready:
                if index in emitted:
                    continue  # an abandoned attempt that returned after all
                emitted.add(index)
                if not result.ok:
                    failed += 1
                yield index, result
                if on_progress is not None:
                    on_progress(
                        Progress(
                            total,
                            len(emitted),
                            failed,
                            time.monotonic() - began,
                            fleet.stragglers(emitted) if total - len(emitted) <= STRAGGLERS else (),
                        )
                    )
    finally:
        fleet.stop.set()


# --- more than one process ------------------------------------------------------------


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(DeviceResult) if f.name != "device")


@dataclass(slots=True)
class _Child:
    """One forked collector process, as the parent sees it."""

    number: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    pending: set[int]
    """Positions (in the parent's device list) not reported yet."""


def _exit_with_parent() -> None:
    """In a child: exit at once when the parent dies (its sentinel pipe closes)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="collector-parent-watch", daemon=True).start()


def _child_main(
    conn: Connection,
    positions: list[int],
    devices: list[Device],
    credentials: Credentials,
    transport: Transport,
    options: RunOptions,
) -> None:
    """A child's whole life: collect its shard, send each result, exit without cleanup.

    ``os._exit`` at the end: the child shares the parent's open store, run lock and
    sockets, and must not run their finalizers or atexit hooks.
    """
    code = 0
    try:
        # Ctrl-C reaches the whole process group: the parent alone decides (and terminates
        # us); SIGTERM (the parent's terminate()) ends us at once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # No lock can be held by another thread at the fork: the CLI forks before starting
        # any; an earlier run's threads have ended, in the OS too (settle_ended_threads);
        # an idle transport watchdog thread waits with its lock released, and the child
        # starts its own (a thread's copy is never alive).
        _exit_with_parent()
        known = transport.known_hosts
        trusted: list[tuple[str, str, str]] = [] if known is None else known.trusted
        seen = len(trusted)  # the parent's own, inherited: not ours to report
        for shard_index, result in _iter_indexed(
            [devices[position] for position in positions],
            credentials,
            transport,
            options,
            on_progress=None,
        ):
            parts = tuple(getattr(result, name) for name in _RESULT_FIELDS)
            new, seen = trusted[seen:], len(trusted)
            conn.send((positions[shard_index], parts, new))
    except BaseException as exc:
        log.error("collector process failed: %s: %s", type(exc).__name__, exc)
        code = 1
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _iter_processes(
    devices: Sequence[Device],
    credentials: Credentials,
    transport: Transport,
    *,
    processes: int,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
) -> Generator[tuple[int, DeviceResult], None, None]:
    """Like :func:`_iter_indexed`, the devices split over ``processes`` forked children."""
    context = multiprocessing.get_context("fork")
    settle_ended_threads()  # an earlier run's threads may still be in OpenSSL's exit
    child_options = dataclasses.replace(options, workers=max(1, options.workers // processes))
    known = transport.known_hosts
    trusted: list[tuple[str, str, str]] | None = None if known is None else known.trusted
    total = len(devices)
    children: list[_Child] = []
    began = time.monotonic()
    try:
        for number in range(processes):
            positions = list(range(number, total, processes))  # round-robin: similar mixes
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=_child_main,
                args=(writer, positions, devices, credentials, transport, child_options),
                name=f"collector-process-{number + 1}",
                daemon=True,
            )
            process.start()
            writer.close()  # the child's copy alone: its end of life is our EOF
            children.append(_Child(number + 1, process, reader, set(positions)))
        log.info(
            "collecting in %s of %s",
            plural(processes, "process", "processes"),
            plural(child_options.workers, "worker"),
        )
        done = failed = 0
        open_children = {child.conn: child for child in children}
        while open_children:
            for conn in wait(list(open_children)):
                child = open_children[conn]  # type: ignore[index]
                ready: list[tuple[int, DeviceResult]] = []
                try:
                    while True:  # whatever this child has sent meanwhile
                        position, parts, new = child.conn.recv()
                        result = DeviceResult(devices[position], *parts)
                        if trusted is not None:
                            trusted.extend(new)
                        ready.append((position, result))
                        if not child.conn.poll():
                            break
                except (EOFError, OSError):  # OSError: it died in the middle of a message
                    del open_children[conn]  # type: ignore[arg-type]
                    child.conn.close()
                    ready.extend(_lost(child, devices, ready))
                for position, result in ready:
                    child.pending.discard(position)
                    done += 1
                    if not result.ok:
                        failed += 1
                    yield position, result
                    if on_progress is not None:
                        left: tuple[tuple[str, float | None, str | None], ...] = ()
                        if total - done <= STRAGGLERS:
                            left = tuple(
                                (devices[p].name, None, None)
                                for c in children
                                for p in sorted(c.pending)
                            )
                        on_progress(Progress(total, done, failed, time.monotonic() - began, left))
    finally:
        _stop_children(children)
        if known is not None and trusted and known.record and hasattr(known, "reload"):
            # The children appended keys this process's index has never seen: read the
            # file again before any later connection (else they would be new again).
            known.reload()


def _lost(
    child: _Child, devices: Sequence[Device], ready: list[tuple[int, DeviceResult]]
) -> list[tuple[int, DeviceResult]]:
    """Failures for the devices a child that ended never reported."""
    child.process.join(timeout=5)
    left = sorted(child.pending - {position for position, _ in ready})
    if not left:
        return []
    code = child.process.exitcode
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    log.error(
        "collector process %d ended (%s) with %d devices not read",
        child.number,
        how,
        len(left),
    )
    now = datetime.now(UTC)
    return [
        (
            position,
            DeviceResult.failure(
                devices[position],
                ErrorKind.PROTOCOL,
                f"not read: collector process {child.number} ended ({how}); run again",
                finished=now,
            ),
        )
        for position in left
    ]


def _stop_children(children: list[_Child]) -> None:
    """Terminate the children still running (the parent is stopping) and reap them all."""
    for child in children:
        if child.process.is_alive():
            child.process.terminate()
    for child in children:
        child.process.join(timeout=5)
        if child.process.is_alive():
            child.process.kill()
            child.process.join(timeout=5)
        with contextlib.suppress(Exception):
            child.conn.close()


def _iter_run(
    devices: Sequence[Device],
    credentials: Credentials,
    transport: Transport,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
) -> Generator[tuple[int, DeviceResult], None, None]:
    """One process (threads) or several (forked shards), by ``options.processes`` and
    fleet size."""
    if options.peer is not None:
        validate_peer(options.peer)  # before any child exists
    if options.timeout <= 0:
        raise ValueError("timeout must be positive")
    count = _effective_processes(options.processes, options.workers, len(devices))
    if count > 1:
        return _iter_processes(
            devices,
            credentials,
            transport,
            processes=count,
            options=options,  # the breaker is shared memory: the children inherit it
            on_progress=on_progress,
        )
    return _iter_indexed(devices, credentials, transport, options, on_progress)


def iter_fleet(
    devices: Iterable[Device],
    credentials: Credentials,
    transport: Transport,
    options: RunOptions | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Generator[DeviceResult, None, None]:
    """Collect every device, yielding each result as soon as that device is done.

    Args:
        devices: The devices to read (names should be unique).
        credentials: The run's credentials.
        transport: ``NetmikoTransport`` or ``NapalmTransport`` (anything with ``collect``).
        options: Workers, processes, timeout, retries, peer, ... (:class:`RunOptions`;
            None: its defaults). ``processes`` splits the fleet over forked processes
            only if there are at least :data:`MIN_DEVICES_PER_PROCESS` devices per
            process and ``workers`` allows.
        on_progress: Called in the consuming thread after every result.

    Raises:
        InvalidPeer: ``peer`` is not a dotted-decimal IPv4 address (before any connection).

    Yields:
        One :class:`DeviceResult` per device, in completion order, ``attempts`` set.
    """
    run = _iter_run(list(devices), credentials, transport, options or RunOptions(), on_progress)
    with contextlib.closing(run):  # closing this iterator stops the run (and its children)
        for _, result in run:
            yield result


def collect_fleet(
    devices: Iterable[Device],
    credentials: Credentials,
    transport: Transport,
    options: RunOptions | None = None,
    *,
    on_result: Callable[[DeviceResult], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[DeviceResult]:
    """Collect every device; the results in the order of ``devices``.

    Same arguments as :func:`iter_fleet`, plus ``on_result``, called with each result as
    it completes (in the calling thread), e.g. to store it at once.
    """
    device_list = list(devices)
    results: list[DeviceResult | None] = [None] * len(device_list)
    run = _iter_run(device_list, credentials, transport, options or RunOptions(), on_progress)
    with contextlib.closing(run):
        for index, result in run:
            if on_result is not None:
                on_result(result)
            results[index] = result
    return [result for result in results if result is not None]
