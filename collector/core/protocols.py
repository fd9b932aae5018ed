"""Values and interfaces shared across layers: a run's progress snapshot.

The runner (:mod:`collector.fleet.run`) makes :class:`Progress` values, the progress
bar (:mod:`collector.output.progress`) draws them; neither imports the other.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["STRAGGLERS", "Progress", "Straggler", "devices_left"]

STRAGGLERS = 5
"""With this many devices left or fewer, :class:`Progress` names them."""


Straggler = tuple[str, float | None, str | None]
"""A device not done yet: its name, the seconds its current attempt has run (None: not
started) and what it waits for (None: unknown)."""


def devices_left(
    names: Sequence[str],
    done: Container[int],
    flights: Mapping[int, tuple[float, str | None]],
    now: float,
) -> tuple[Straggler, ...]:
    """The devices of ``names`` whose position is not in ``done``, in the fleet's order;
    ``flights`` holds each started one's start (monotonic seconds) and phase.

    Examples:
        >>> devices_left(["a", "b", "c"], {0}, {2: (10.0, "login")}, 12.5)
        (('b', None, None), ('c', 2.5, 'login'))
    """
    left: list[Straggler] = []
    for index, name in enumerate(names):
        if index in done:
            continue
        flight = flights.get(index)
        left.append((name, None, None) if flight is None else (name, now - flight[0], flight[1]))
    return tuple(left)


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, for a progress bar."""

    total: int
    done: int
    failed: int
    elapsed: float
    """Seconds since the run started."""
    left: tuple[Straggler, ...] = ()
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
