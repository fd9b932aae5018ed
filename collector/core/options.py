"""Values of command-line options that need more than a type: durations, time windows,
``--fail-on`` thresholds.

Pure functions over strings (and a ``now`` passed in), so they are tested without click;
``collector.cli.main`` turns their ``ValueError`` into a usage error (exit 2).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.core.records import REASON_BY_CODE, Category, classify_reason

__all__ = [
    "Threshold",
    "breached",
    "format_duration",
    "parse_duration",
    "parse_moment",
    "parse_threshold",
    "plural",
    "threshold_counts",
]

DEFAULT_WORKERS = 32
"""Devices read at once (``collect --workers``); here so the CLI need not import the runner."""
DEFAULT_CONNECT_TIMEOUT = 10.0
"""``--connect-timeout``: seconds from the start of an attempt to the device's prompt."""
DEFAULT_MAX_AUTH_FAILURES = 3
"""``--max-auth-failures``: refused logins as one user, before any succeeded, that stop the
run from logging in as that user (:mod:`collector.ssh.breaker`)."""
DEFAULT_TRANSPORT = "asyncssh"
"""``collect --transport`` and the API's default: the fastest transport that passes the whole
fault matrix (docs/BENCHMARKS.md); netmiko and napalm stay selectable."""
DEFAULT_ASYNC_WORKERS = 1000
"""Sessions in flight with ``--transport asyncssh`` (shared out between ``--processes``, one
event loop each). A waiting session costs an open socket and no CPU: over a WAN (300 ms a
command, a second to log in) 200 in flight left the CPU idle while sessions waited, and a
device that accepts TCP and never answers holds its session for two connect timeouts;
2,000 such devices took 52.7 s with 200, 34-36 s with 1,000, where the CPU is the limit
(docs/BENCHMARKS.md)."""

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """A duration like ``90m``, ``24h``, ``7d``, ``2w`` (units s, m, h, d, w).

    Examples:
        >>> parse_duration("24h")
        datetime.timedelta(days=1)
        >>> parse_duration("90d").days
        90

    Raises:
        ValueError: not a number followed by one of s, m, h, d, w, or zero.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h, 7d or 2w")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be more than zero")
    return timedelta(seconds=seconds)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, in the plural unless ``count`` is 1.

    Examples:
        >>> plural(1, "peer"), plural(2, "peer"), plural(0, "deletion")
        ('1 peer', '2 peers', '0 deletions')
        >>> plural(3, "process", "processes")
        '3 processes'
    """
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def format_duration(delta: timedelta) -> str:
    """A short human form, rounded down to the largest sensible unit.

    Examples:
        >>> format_duration(timedelta(hours=3, minutes=20))
        '3 h 20 min'
        >>> format_duration(timedelta(seconds=42))
        '42 s'
    """
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def parse_moment(text: str, now: datetime) -> datetime:
    """``--since``/``--until``: a duration back from ``now`` (``24h``) or an ISO date/time.

    An ISO value without a zone is read as UTC (history reports are in UTC).

    Examples:
        >>> now = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
        >>> parse_moment("7d", now).isoformat()
        '2026-01-01T12:00:00+00:00'
        >>> parse_moment("2026-01-05", now).isoformat()
        '2026-01-05T00:00:00+00:00'
        >>> parse_moment("2026-01-05T08:00+08:00", now).isoformat()
        '2026-01-05T00:00:00+00:00'

    Raises:
        ValueError: neither form.
    """
    if _DURATION.fullmatch(text):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration back from now (24h, 7d) nor an ISO date or "
            "time (2026-01-05, 2026-01-05T08:00, 2026-01-05T08:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- --fail-on ----------------------------------------------------------------------------

_COMPARISONS: Mapping[str, Callable[[int, int], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
}
_THRESHOLD = re.compile(r"\s*([A-Za-z][A-Za-z0-9 _-]*?)\s*(>=|>|==|=)\s*(\d+)\s*")
TOTAL_KEY = "new"
"""The run's new disruptive deletions (all of them with ``--include-routine``)."""
ROUTINE_KEY = "routine"
"""The run's new routine deletions (rekeys, HA housekeeping)."""
FAILED_KEY = "failed"
"""Devices that could not be read in this run."""
GAPS_KEY = "gaps"
"""Devices whose buffer wrapped since the previous run."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """``--fail-on KEY>N``: breached when the run's count for ``key`` compares true."""

    key: str
    """A reason code, a category, ``new``, ``failed`` or ``gaps``."""
    comparison: str
    limit: int
    text: str
    """As the operator wrote it (for messages)."""

    def breached_by(self, count: int) -> bool:
        return _COMPARISONS[self.comparison](count, self.limit)


def parse_threshold(text: str) -> Threshold:
    """Read one ``--fail-on`` expression.

    The key is a reason code (``dpd_timeout``) or the reason as devices print it
    (``dpd-timeout``, ``dpd timeout``), a category (``liveness``), ``new`` (all new
    deletions), ``failed`` (devices not read) or ``gaps``; the comparison ``>``, ``>=``
    or ``=``; the limit a whole number.

    Examples:
        >>> parse_threshold("dpd-timeout>5")
        Threshold(key='dpd_timeout', comparison='>', limit=5, text='dpd-timeout>5')
        >>> parse_threshold("liveness >= 10").key
        'liveness'

    Raises:
        ValueError: not ``KEY>N`` or an unknown key.
    """
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not KEY>N (e.g. dpd_timeout>5, liveness>=10, new>100, failed>0)"
        )
    name, comparison, limit = match.group(1).strip(), match.group(2), int(match.group(3))
    lowered = name.lower()
    categories = {category.value for category in Category}
    if lowered in (TOTAL_KEY, ROUTINE_KEY, FAILED_KEY, GAPS_KEY, *categories, *REASON_BY_CODE):
        key = lowered
    else:
        code, _ = classify_reason(name)
        if code not in REASON_BY_CODE:
            known = ", ".join(sorted(REASON_BY_CODE))
            raise ValueError(
                f"{text!r}: unknown key {name!r}; use a reason code ({known}), a category "
                f"({', '.join(sorted(categories))}), {TOTAL_KEY}, {ROUTINE_KEY}, {FAILED_KEY} "
                f"or {GAPS_KEY}"
            )
        key = code
    return Threshold(key, comparison, limit, text.strip())


def threshold_counts(
    new_by_reason: Mapping[str, int], *, failed: int, gaps: int, include_routine: bool = False
) -> dict[str, int]:
    """The counts ``--fail-on`` keys look up, from the run's new deletions by reason code.

    ``new`` counts disruptive deletions only (``Category.routine``): a hub that rekeys on
    schedule does not breach ``new>100``; ``include_routine`` counts them too. A reason
    code or category named explicitly (``phase2_sa_replace>50``, ``rekey>50``) always counts.

    Examples:
        >>> new = {"dpd_timeout": 3, "peer_request": 1, "phase2_sa_replace": 40}
        >>> counts = threshold_counts(new, failed=0, gaps=1)
        >>> counts["dpd_timeout"], counts["liveness"], counts["new"], counts["routine"]
        (3, 3, 4, 40)
        >>> threshold_counts(new, failed=0, gaps=1, include_routine=True)["new"]
        44
    """
    counts: dict[str, int] = {code: 0 for code in REASON_BY_CODE}
    counts.update({category.value: 0 for category in Category})
    for code, count in new_by_reason.items():
        reason = REASON_BY_CODE.get(code)
        if reason is None:  # the "unknown" code is also the "unknown" category: count once
            counts[Category.UNKNOWN.value] += count
            continue
        counts[code] += count
        counts[reason.category.value] += count
    routine = sum(
        count
        for code, count in new_by_reason.items()
        if code in REASON_BY_CODE and REASON_BY_CODE[code].category.routine
    )
    counts[ROUTINE_KEY] = routine
    counts[TOTAL_KEY] = sum(new_by_reason.values()) - (0 if include_routine else routine)
    counts[FAILED_KEY] = failed
    counts[GAPS_KEY] = gaps
    return counts


def breached(
    thresholds: Sequence[Threshold], counts: Mapping[str, int]
) -> list[tuple[Threshold, int]]:
    """The thresholds that are breached, each with the count that breached it."""
    return [
        (threshold, counts.get(threshold.key, 0))
        for threshold in thresholds
        if threshold.breached_by(counts.get(threshold.key, 0))
    ]
