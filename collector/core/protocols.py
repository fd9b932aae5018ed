"""Values and interfaces shared across layers: a run's progress snapshot.

The runner (:mod:`collector.fleet.run`) makes :class:`Progress` values, the progress
bar (:mod:`collector.output.progress`) draws them; neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STRAGGLERS", "Progress"]

STRAGGLERS = 5
"""With this many devices left or fewer, :class:`Progress` names them."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, for a progress bar."""

    total: int
    done: int
    failed: int
    elapsed: float
    """Seconds since the run started."""
    left: tuple[tuple[str, float | None, str | None], ...] = ()
    """When at most :data:`STRAGGLERS` devices are left: each one's name, the seconds its
    current attempt has run and what it waits for (None: unknown, e.g. another process)."""

    @property
    def ok(self) -> int:
        return self.done - self.failed

    @property
    def rate(self) -> float:
        """Devices finished per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first device finishes)."""
        if self.done == 0 or self.rate == 0:
            return None
        return (self.total - self.done) / self.rate
