"""One device's attempts: the retry decision and the results for a bug or a stuck attempt,
in one place for the thread pool (:mod:`collector.fleet.run`) and the asyncssh fan-out
(:mod:`collector.ssh.async_transport`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from collector.core.records import Device, DeviceResult, ErrorKind

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
"""The longest wait between two attempts at one device (seconds)."""


def _backoff_delay(backoff: float, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1).

    Examples:
        >>> [_backoff_delay(1.0, n) for n in (1, 2, 3)]
        [1.0, 2.0, 4.0]
        >>> _backoff_delay(10.0, 9)
        30.0
    """
    return min(MAX_BACKOFF, backoff * 2.0 ** (attempt - 1))


def retry_delay(
    result: DeviceResult,
    attempt: int,
    *,
    retries: int,
    backoff: float,
    retry_on: frozenset[ErrorKind],
    timed_out_in: set[str],
) -> float | None:
    """Seconds to wait before another attempt at this device, or None when ``result`` is
    final (read, out of attempts, a kind not worth retrying, or a second timeout in the
    same phase: it would time out there again); logs the retry. ``timed_out_in`` holds the
    phases this device timed out in so far (updated)."""
    if result.ok or attempt > retries or result.error is None:
        return None
    if result.error.kind not in retry_on:
        return None
    if result.error.kind is ErrorKind.TIMEOUT and result.error.phase is not None:
        if result.error.phase in timed_out_in:
            log.info(
                "%s: timed out twice during %s; not retried again",
                result.device.name,
                result.error.phase,
            )
            return None
        timed_out_in.add(result.error.phase)
    delay = _backoff_delay(backoff, attempt)
    log.info(
        "%s: %s (attempt %d of %d); retrying in %.1f s",
        result.device.name,
        result.error.kind.value,
        attempt,
        retries + 1,
        delay,
    )
    return delay


def internal_error(device: Device, exc: Exception, started: datetime) -> DeviceResult:
    """The result for a bug in one device's path (logged with its traceback at -v)."""
    log.error("%s: internal error: %s: %s", device.name, type(exc).__name__, exc, exc_info=True)
    return DeviceResult.failure(
        device,
        ErrorKind.PROTOCOL,
        f"internal error: {type(exc).__name__} (see the log at -v)",
        started=started,
        finished=datetime.now(UTC),
    )


def abandoned(device: Device, timeout: float, grace: float, attempts: int) -> DeviceResult:
    """The result for an attempt still busy ``grace`` seconds after its deadline."""
    log.warning("%s: still busy %.0f s after its deadline; abandoning it", device.name, grace)
    return DeviceResult.failure(
        device,
        ErrorKind.TIMEOUT,
        f"no complete answer within {timeout:g} s (stuck; abandoned)",
        finished=datetime.now(UTC),
        attempts=attempts,
    )
