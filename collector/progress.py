"""A one-line progress bar on stderr, for a person watching a terminal.

Shown only when stderr is a terminal (and not ``--quiet``): under cron, in a pipe or in
a test, it writes nothing at all, so the report and the warnings are the whole output.
No colour (so ``NO_COLOR`` has nothing to turn off); the line is redrawn with ``\\r``
at most a few times a second and cleared at the end.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import TextIO

from collector.options import format_duration
from collector.run import Progress

__all__ = ["ProgressBar", "progress_line"]

_WIDTH = 24
_REDRAW_EVERY = 0.2
"""Seconds between redraws (a fleet of thousands finishes many devices per second)."""


def progress_line(progress: Progress, width: int = _WIDTH) -> str:
    """The bar and its numbers for one moment of the run.

    Examples:
        >>> progress_line(Progress(total=40, done=10, failed=2, elapsed=5.0), width=8)
        '[##......] 10/40 devices, 2 failed, 2.0/s, ETA 15 s'
        >>> progress_line(Progress(total=4, done=0, failed=0, elapsed=0.5), width=4)
        '[....] 0/4 devices, 0 failed, 0.0/s, ETA -'
    """
    filled = 0 if progress.total == 0 else width * progress.done // progress.total
    bar = "#" * filled + "." * (width - filled)
    eta = progress.eta
    eta_text = "-" if eta is None else format_duration_seconds(eta)
    return (
        f"[{bar}] {progress.done}/{progress.total} devices, {progress.failed} failed, "
        f"{progress.rate:.1f}/s, ETA {eta_text}"
    )


def format_duration_seconds(seconds: float) -> str:
    """Seconds as ``format_duration`` prints them (rounded up: an ETA of 0.4 s is 1 s)."""
    return format_duration(timedelta(seconds=int(seconds + 0.999)))


class ProgressBar:
    """Call with each :class:`~collector.run.Progress`; ``close()`` at the end of the run.

    Args:
        stream: Where to draw; stderr when None.
        enabled: Force on or off; default: only when the stream is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._last_draw = 0.0
        self._drawn = 0

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if progress.done < progress.total and now - self._last_draw < _REDRAW_EVERY:
            return
        self._last_draw = now
        line = progress_line(progress)
        padding = " " * max(0, self._drawn - len(line))
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()
        self._drawn = len(line)

    def clear(self) -> None:
        """Erase the bar (before a log line, and at the end) so text starts on a clean line."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

    def close(self) -> None:
        """Erase the bar for good."""
        self.clear()
        self.enabled = False
