"""One collection run, without the command line: devices in, fleet report out.

:func:`run_collection` is what ``collect-ike-offline collect`` does once it has its
devices, credentials, transport, run lock and history: it reads every device (through
:func:`collector.fleet.run.iter_fleet`), stores each result as it arrives (one
transaction per device), folds it into the fleet report
(:class:`collector.core.aggregate.RunFold`) and may drop its records then
(``keep_records=False``: ``collect`` keeps counts and a spool, not every device's 200
records), adds what the history learnt (new deletions, gaps) and logs the warnings an
operator needs (keys trusted on first use, clock skew, a wrapped buffer). The command
line keeps the edges: options, inventory, credentials, the lock, opening the store,
writing the report and the exit code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from collector.core.aggregate import (
    FleetReport,
    GapSummary,
    ReasonCount,
    RunFold,
    device_zone,
    with_local_times,
)
from collector.core.clock import ZoneError, resolve_zone, session_skew, skew_exceeds
from collector.core.incidents import DEFAULT_THRESHOLDS, Thresholds
from collector.core.options import (
    DEFAULT_MAX_AUTH_FAILURES,
    DEFAULT_WORKERS,
    format_duration,
    plural,
)
from collector.core.records import REASON_BY_CODE, Category, Device, DeviceResult, ErrorKind
from collector.core.terminal import one_line
from collector.fleet.run import auto_processes, iter_fleet
from collector.history.store import DeviceOutcome, Gap, Store, StoreError, is_database_error
from collector.output.progress import ProgressBar
from collector.ssh.breaker import AuthBreaker
from collector.ssh.credentials import Credentials
from collector.ssh.protocol import RunOptions, Transport
from collector.ssh.transport import with_learned_commands

if TYPE_CHECKING:
    from collector.inventory.selection import Shard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Collection:
    """What one run produced."""

    report: FleetReport
    """The fleet report, with the history's new deletions and gaps when a store was given."""
    results: list[DeviceResult]
    """One result per device, in the order the devices were given (without their records
    and raw output when the run was made with ``keep_records=False``)."""
    new_by_reason: dict[str, int]
    """This run's new deletions by reason code (empty without a store)."""
    database_error: str | None = None
    """Why the history failed during the run (None: it did not); the collection went on."""
    unstored: tuple[str, ...] = ()
    """Devices whose result is not in the history (the database failed, or a bad zone), in
    the order the devices were given."""


def run_collection(
    devices: Sequence[Device],
    credentials: Credentials,
    transport: Transport,
    *,
    store: Store | None,
    inventory_path: Path | str,
    shard: Shard | None = None,
    workers: int = DEFAULT_WORKERS,
    processes: int | None = None,
    timeout: float = 30.0,
    retries: int = 1,
    peer: str | None = None,
    clock_from_device: bool = False,
    keep_raw: bool = False,
    show_progress: bool | None = None,
    local_times: bool = False,
    include_routine: bool = False,
    thresholds: Thresholds | None = None,
    series: bool = False,
    max_auth_failures: int = DEFAULT_MAX_AUTH_FAILURES,
    keep_records: bool = True,
    on_records: Callable[[DeviceResult], None] | None = None,
) -> Collection:
    """Read every device, store each result as it arrives, and make the fleet report.

    Args:
        devices: The selected devices.
        credentials: How to log in (secrets already registered with the log masker).
        transport: A netmiko or NAPALM transport (its ``known_hosts``, if any, is asked
            which keys were trusted on first use).
        store: The history, or None (``--no-store``). The caller opens and closes it.
        inventory_path: Recorded with the run in the history.
        shard: Recorded with the run (``--shard``).
        workers, processes, timeout, retries, peer, clock_from_device, keep_raw: As the
            ``collect`` options of the same names; ``processes`` None picks by fleet size.
        show_progress: The progress bar: None when stderr is a terminal, False never.
        local_times: Device-level times in each device's own zone (``--local-times``);
            otherwise every time in the report is UTC.
        include_routine: ``--include-routine``: routine deletions count among flapping peers.
        thresholds: When disruptive deletions make an incident (None: the defaults).
        series: Count deletions per bucket by category and device (``--format html``).
        max_auth_failures: Refused logins as one user, before any succeeded, after which
            the devices not tried yet are skipped (``skipped-auth``); 0: never stop.
        keep_records: Keep each device's records (and raw output) in ``results`` and in
            the report's listing; False: they are stored, counted and handed to
            ``on_records``, then dropped, so memory does not grow with the fleet.
        on_records: Called with each result once it is stored and counted (the report's
            record spool, :class:`collector.output.spool.RecordSpool`).

    Returns:
        The report, the per-device results and the new deletions by reason.
    """

    run_started = datetime.now(UTC)
    failure: list[str] = []
    """The history's first failure: from then on results are no longer offered to it."""
    unstored: list[str] = []

    def database_failed(error: Exception, doing: str) -> None:
        if not is_database_error(error):
            raise error
        log.debug("history database error while %s", doing, exc_info=True)
        failure.append(one_line(error, 200) or type(error).__name__)

    run_id = None
    slow: set[str] = set()
    """Devices that timed out in their latest run: started first (see :func:`slow_first`)."""
    if store is not None:
        try:
            devices = with_learned_commands(devices, store.known_commands())
            slow = store.timed_out_last()
            run_id = store.start_run(inventory_path, None if shard is None else str(shard))
        except Exception as error:
            database_failed(error, "starting the run")
    outcomes: dict[str, DeviceOutcome] = {}
    bar = ProgressBar(enabled=show_progress)
    breaker = (
        AuthBreaker(devices, credentials, max_auth_failures) if max_auth_failures > 0 else None
    )

    fold = RunFold(
        include_routine=include_routine,
        thresholds=DEFAULT_THRESHOLDS if thresholds is None else thresholds,
        series=series,
        listing=keep_records,
    )
    rank = {device.name: index for index, device in enumerate(devices)}
    kept: list[DeviceResult | None] = [None] * len(devices)
    gapped: dict[str, DeviceResult] = {}
    """Devices whose buffer wrapped, with their records (for the gap warning's advice)."""

    def on_result(result: DeviceResult) -> None:
        outcome = None
        if store is not None and (run_id is None or failure):
            unstored.append(result.device.name)
        elif store is not None and run_id is not None:
            try:
                outcome = store.record_device(run_id, result)
            except StoreError as error:
                log.error("%s: not stored: %s", result.device.name, error)
                unstored.append(result.device.name)
            except Exception as error:  # the database itself: keep collecting, store no more
                database_failed(error, f"storing {result.device.name}")
                unstored.append(result.device.name)
            else:
                outcomes[result.device.name] = outcome
        _log_result(result, outcome)
        index = rank[result.device.name]
        fold.add(result, index)
        if on_records is not None:
            on_records(result)
        if outcome is not None and outcome.gaps:
            gapped[result.device.name] = result
        kept[index] = result if keep_records else dataclasses.replace(result, records=(), raw=None)

    log.info(
        "collecting from %s (%s, %s transport)",
        plural(len(devices), "device"),
        plural(min(workers, len(devices)), "worker"),
        transport.name,
    )
    try:
        options = RunOptions(
            workers=workers,
            processes=auto_processes(len(devices)) if processes is None else processes,
            timeout=timeout,
            retries=retries,
            peer=peer,
            clock=clock_from_device,
            keep_raw=keep_raw,
            breaker=breaker,
        )
        run = iter_fleet(
            slow_first(devices, slow), credentials, transport, options, on_progress=bar
        )
        with contextlib.closing(run):  # closing it stops the run (and its children)
            for result in run:
                on_result(result)
    finally:
        bar.close()
    results = [result for result in kept if result is not None]
    run_finished = datetime.now(UTC)
    report = fold.report(
        generated_at=run_finished, run_started=run_started, run_finished=run_finished
    )
    new_by_reason: dict[str, int] = {}
    if store is not None and run_id is not None and not failure:
        try:
            store.finish_run(run_id, finished=run_finished)
            new_by_reason = store.new_by_reason(run_id)
        except Exception as error:
            database_failed(error, "finishing the run")
    if store is not None and run_id is not None:
        report = _with_history(report, outcomes, _new_reason_counts(new_by_reason), run_started)
    if local_times:
        report = with_local_times(report, {r.device.name: device_zone(r) for r in results})
    _warn_trusted(transport)
    if breaker is not None:
        _warn_tripped(breaker, results, credentials)
    for result in results:
        warn_skew(result, outcomes.get(result.device.name))
    for outcome in outcomes.values():
        for gap in outcome.gaps:
            warn_gap(gap, gapped.get(outcome.device))
    return Collection(
        report,
        results,
        new_by_reason,
        database_error=failure[0] if failure else None,
        unstored=tuple(unstored),
    )


def slow_first(devices: Sequence[Device], slow: Container[str]) -> list[Device]:
    """The start order: the devices that timed out last time first, then the rest, each
    part in inventory order. A silent device holds a session for the whole connect timeout
    (twice with a retry); started late, it alone would set the end of the run. It holds no
    auth breaker slot meanwhile (the gate is taken at authentication), so nothing waits
    for it. The report keeps the inventory's order whatever the start order.

    Examples:
        >>> from collector.core.records import Device
        >>> [d.name for d in slow_first([Device(n, "192.0.2.1") for n in "abcd"], {"c"})]
        ['c', 'a', 'b', 'd']
    """
    early = [device for device in devices if device.name in slow]
    return early + [device for device in devices if device.name not in slow]


def _warn_tripped(
    breaker: AuthBreaker, results: Sequence[DeviceResult], credentials: Credentials
) -> None:
    """One error line per user whose logins were stopped (not one per skipped device)."""
    skipped = sum(
        1 for r in results if r.error is not None and r.error.kind is ErrorKind.SKIPPED_AUTH
    )
    for tripped in breaker.tripped():
        what = "password" if credentials.password is not None else "key"
        log.error(
            "%d logins as '%s' were refused before any succeeded: stopped logging in as '%s'"
            " (%d %s not tried, skipped-auth) so the account does not get locked; check the"
            " %s and the account (locked? expired?), then run again",
            tripped.refused,
            tripped.username,
            tripped.username,
            skipped,
            "device" if skipped == 1 else "devices",
            what,
        )


def _warn_trusted(transport: Transport) -> None:
    known_hosts = transport.known_hosts
    if known_hosts is None or not known_hosts.trusted:
        return
    trusted = known_hosts.trusted
    names = ", ".join(device for device, _, _ in trusted[:5])
    more = f" and {len(trusted) - 5} more" if len(trusted) > 5 else ""
    log.warning(
        "trusted the host keys of %s on first use (%s%s) and recorded them "
        "in %s; -v lists the fingerprints, --strict-host-keys refuses unknown devices",
        plural(len(trusted), "new device"),
        names,
        more,
        known_hosts.path,
    )


def _new_reason_counts(new_by_reason: Mapping[str, int]) -> tuple[ReasonCount, ...]:
    """The run's new deletions by reason code (from the store) as the report's values.

    ``devices`` stays 0: the store counts new deletions per reason, not per device.
    """
    counts = []
    for code, count in new_by_reason.items():
        reason = REASON_BY_CODE.get(code)
        category = Category.UNKNOWN if reason is None else reason.category
        counts.append(ReasonCount(code, category, count, code if reason is None else reason.text))
    counts.sort(key=lambda item: (-item.count, item.reason_code))
    return tuple(counts)


def _with_history(
    report: FleetReport,
    outcomes: Mapping[str, DeviceOutcome],
    new_by_reason: tuple[ReasonCount, ...],
    run_started: datetime,
) -> FleetReport:
    """The run's report with what the store learnt: new deletions per device, gaps."""
    devices = tuple(
        dataclasses.replace(
            device,
            new_records=outcomes[device.name].new_records if device.name in outcomes else 0,
        )
        for device in report.devices
    )
    gaps = tuple(
        GapSummary(gap.device, gap.missing_since, gap.missing_until, run_started, gap.buffer)
        for outcome in outcomes.values()
        for gap in outcome.gaps
    )
    totals = dataclasses.replace(
        report.totals,
        new_records=sum(outcome.new_records for outcome in outcomes.values()),
        new_routine=sum(item.count for item in new_by_reason if item.category.routine),
        gaps=len(gaps),
    )
    return dataclasses.replace(
        report, devices=devices, totals=totals, gaps=gaps, new_by_reason=new_by_reason
    )


def warn_gap(gap: Gap, result: DeviceResult | None) -> None:
    since = gap.missing_since_local or "-"
    until = gap.missing_until_local or "-"
    advice = "collect more often"
    times = [
        record.offline_time
        for record in (() if result is None else result.records)
        if record.buffer == (gap.slot, gap.cpu)
    ]
    if len(times) > 1:
        span = max(times) - min(times)
        if span > timedelta(0):
            advice = (
                f"its 200-deletion buffer holds about {format_duration(span)} of deletions: "
                f"collect it at least every {format_duration(span / 2)}"
            )
    log.warning(
        "%s: the device's buffer%s wrapped since the previous run: deletions between %s and %s "
        "(device time) may be lost; %s",
        gap.device,
        "" if gap.buffer is None else f" ({gap.buffer})",
        since,
        until,
        advice,
    )


def warn_skew(result: DeviceResult, outcome: DeviceOutcome | None) -> None:
    """Warn when the device clock is off; the skew the store computed when it stored it."""
    if outcome is not None:
        skew = outcome.skew
    else:
        zone_text = result.device.data.get("timezone")
        try:
            zone, _ = resolve_zone(
                None if zone_text is None else str(zone_text), result.device_clock
            )
        except ZoneError:
            return
        skew = session_skew(result.device_clock, zone, result.started, result.finished)
    if skew is None or result.device_clock is None:
        return
    if skew_exceeds(skew):
        direction = "ahead of" if skew > timedelta(0) else "behind"
        log.warning(
            "%s: device clock is %s %s this host's (device says %s): its offline times are "
            "off by as much; check NTP on the device",
            result.device.name,
            f"{abs(skew).total_seconds():.0f} s",
            direction,
            result.device_clock.text,
        )


def _log_result(result: DeviceResult, outcome: DeviceOutcome | None) -> None:
    if result.ok:
        new = "" if outcome is None else f", {outcome.new_records} new"
        log.info("%s: ok, %d deletions%s", result.device.name, len(result.records), new)
    elif result.error is not None and result.error.kind is ErrorKind.HOST_KEY_CHANGED:
        log.error("%s: %s: %s", result.device.name, result.error.kind.value, result.error.message)
    elif result.error is not None and result.error.kind is ErrorKind.SKIPPED_AUTH:
        log.info("%s: %s: %s", result.device.name, result.error.kind.value, result.error.message)
    elif result.error is not None:
        log.warning("%s: %s: %s", result.device.name, result.error.kind.value, result.error.message)
