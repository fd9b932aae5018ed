"""A one-line progress display on stderr, for a person watching a terminal.

Shown only when stderr is a terminal, ``TERM`` is not ``dumb`` and the run is not
``--quiet``: under cron, in a pipe or in a test, it writes nothing at all, so the report
and the warnings are the whole output. No colour.

The line stays on screen: it is redrawn in place (``\\r``, erase to the end of the line),
cut to the terminal's width, and a log line (a warning, ``-v``) is written above it: the
stderr log handler erases it, writes the record and draws it again
(:meth:`ProgressBar.above`). While the run waits for slow devices it is redrawn every half
second, and once few are left it names them:
``3 left: fw-sh-02 (login, 12 s), ar-bj-07 (9 s), ...``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TextIO

from collector.core.options import format_duration
from collector.core.protocols import Progress
from collector.output.logs import set_overlay

__all__ = ["ProgressBar", "progress_line"]

_WIDTH = 24
_TICK = 0.5
"""Seconds between redraws while nothing finishes (the clock and the stragglers move on)."""
_ERASE = "\r\x1b[K"


def progress_line(
    progress: Progress, width: int = _WIDTH, columns: int | None = None, waited: float = 0.0
) -> str:
    """The bar and its numbers for one moment of the run, at most ``columns`` wide.

    ``waited``: seconds since ``progress`` was made (added to the stragglers' times).

    Examples:
        >>> progress_line(Progress(total=40, done=10, failed=2, elapsed=5.0), width=8)
        '[##......] 10/40 devices, 2 failed, 2.0/s, ETA 15 s'
        >>> progress_line(Progress(total=4, done=0, failed=0, elapsed=0.5), width=4)
        '[....] 0/4 devices, 0 failed, 0.0/s, ETA -'
        >>> p = Progress(5, 3, 0, 9.0, (("fw-sh-02", 12.2, "login"), ("ar-bj-07", None, None)))
        >>> progress_line(p, width=4)
        '[##..] 3/5 devices, 0 failed, 2 left: fw-sh-02 (login, 12 s), ar-bj-07'
        >>> progress_line(p, width=4, columns=40)
        '3/5 devices, 0 failed, 2 left: fw-sh-02…'
    """
    counts = f"{progress.done}/{progress.total} devices, {progress.failed} failed"
    if progress.left:
        names = ", ".join(
            _straggler(name, seconds, phase, waited) for name, seconds, phase in progress.left
        )
        rest = f"{counts}, {len(progress.left)} left: {names}"
    else:
        eta = progress.eta
        eta_text = "-" if eta is None else format_duration_seconds(eta)
        rest = f"{counts}, {progress.rate:.1f}/s, ETA {eta_text}"
    if columns is not None:  # a narrow terminal: the bar shrinks (or goes) before the words
        width = max(0, min(width, columns - len(rest) - 3))
    line = rest
    if width >= 4:
        filled = 0 if progress.total == 0 else width * progress.done // progress.total
        line = f"[{'#' * filled}{'.' * (width - filled)}] {rest}"
    if columns is not None and len(line) > columns:
        line = line[: max(0, columns - 1)] + "…"
    return line


def _straggler(name: str, seconds: float | None, phase: str | None, waited: float) -> str:
    """``fw-sh-02 (login, 12 s)``: what a device left waits for, and for how long."""
    shown = [
        part for part in (phase, None if seconds is None else f"{seconds + waited:.0f} s") if part
    ]
    return f"{name} ({', '.join(shown)})" if shown else name


def format_duration_seconds(seconds: float) -> str:
    """Seconds as ``format_duration`` prints them (rounded up: an ETA of 0.4 s is 1 s)."""
    return format_duration(timedelta(seconds=int(seconds + 0.999)))


def _terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM", "") != "dumb"


class ProgressBar:
    """Call with each :class:`~collector.fleet.run.Progress`; ``close()`` at the end of the run.

    Args:
        stream: Where to draw; stderr when None.
        enabled: Force on or off; default: only on a terminal whose ``TERM`` is not dumb.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _terminal(self.stream) if enabled is None else enabled
        self._lock = threading.RLock()
        self._progress: Progress | None = None
        self._at = 0.0
        self._shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._progress, self._at = progress, time.monotonic()
            self._draw()
        self._start()

    def _start(self) -> None:
        if self._ticker is None:
            set_overlay(self)
            self._ticker = threading.Thread(
                target=self._tick, name="collector-progress", daemon=True
            )
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(_TICK):
            with self._lock:
                if self.enabled and self._progress is not None:
                    self._draw()

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
            return shutil.get_terminal_size().columns

    def _draw(self) -> None:
        assert self._progress is not None
        waited = time.monotonic() - self._at
        line = progress_line(self._progress, columns=self._columns() - 1, waited=waited)
        self.stream.write(_ERASE + line)
        self.stream.flush()
        self._shown = True

    @contextlib.contextmanager
    def above(self) -> Iterator[None]:
        """Write something (a log line) above the display: erased before, drawn after."""
        with self._lock:
            if self.enabled and self._shown:
                self.stream.write(_ERASE)
                self.stream.flush()
            try:
                yield
            finally:
                if self.enabled and self._progress is not None:
                    self._draw()

    def clear(self) -> None:
        """Erase the display (it comes back with the next progress or tick)."""
        with self._lock:
            if self.enabled and self._shown:
                self.stream.write(_ERASE)
                self.stream.flush()
                self._shown = False

    def close(self) -> None:
        """Erase the display for good."""
        self._stop.set()
        with self._lock:
            self.clear()
            self.enabled = False
        if self._ticker is not None:
            set_overlay(None)
        if self._ticker is not None:
            self._ticker.join(timeout=2)
