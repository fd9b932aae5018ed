"""``collect-ike-offline report``: the fleet report over a window of the history."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from collector.cli.exitcodes import EXIT_OK, REPORT_EXIT_CODES_HELP
from collector.cli.files import check_outputs, emit, open_history
from collector.cli.guard import CommandError, guarded
from collector.cli.params import (
    count_option,
    db_option,
    report_options,
    verbosity_options,
    window,
    window_options,
)
from collector.core.aggregate import with_local_times
from collector.core.compare import compare, parse_window
from collector.core.incidents import Thresholds, address_book
from collector.history.report import history_report
from collector.inventory.loading import load_inventory
from collector.inventory.model import InventoryError
from collector.output.render import Format
from collector.ssh.credentials import SecretMasker


@click.command("report", epilog=REPORT_EXIT_CODES_HELP)
@db_option
@window_options
@click.option(
    "--group-by",
    type=click.Choice(["device", "site", "group", "reason", "category", "peer"]),
    default=None,
    help="Also break deletions down by this dimension.",
)
@count_option(
    "--flap-threshold",
    2,
    "A peer with at least this many deletions in the window is flapping.",
    least=1,
)
@count_option("--top", 10, "At most this many flapping peers.")
@click.option(
    "--interval",
    type=click.Choice(["hour", "day"]),
    default=None,
    help="Trend buckets (default: hourly up to two days of data, else daily).",
)
@report_options
@click.option(
    "--compare-to",
    "compare_to",
    default=None,
    metavar="previous|SINCE..UNTIL",
    help="Also compare with another window (previous: the same length just before) per "
    "reason, category, site and device; what got worse first.",
)
@click.option(
    "--inventory",
    "-i",
    "inventory_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Inventory whose devices' addresses (hostname, data.addresses) pair both ends of "
    "tunnels; default: the stored hostnames.",
)
@verbosity_options(
    quiet="Errors only.",
    verbose="More detail on stderr (-vv: debug, with the exception detail of an error).",
)
@guarded
def report_command(
    *,
    db: str | None,
    since: str,
    until: str | None,
    group_by: str | None,
    flap_threshold: int,
    top: int,
    interval: str | None,
    fmt: str,
    local_times: bool,
    output: Path | None,
    prometheus: Path | None,
    include_routine: bool,
    thresholds: Thresholds,
    inventory_path: Path | None,
    compare_to: str | None,
    verbose: int,
    quiet: bool,
    masker: SecretMasker,
) -> int:
    """The fleet report over the history: new deletions since the previous run, by reason and
    category, by --group-by, flapping peers, trend per hour/day, gaps, failing devices.

    Times in this report are UTC (each device's offline times converted with its zone);
    --local-times shows each device's own times with their offset.
    """
    now = datetime.now(UTC)
    window_since, window_until = window(since, until, now)
    check_outputs(output, prometheus)
    other_window = None
    if compare_to is not None:
        try:
            other_window = parse_window(compare_to, window_since, window_until, now)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--compare-to") from None
    addresses = None
    if inventory_path is not None:
        try:
            addresses = address_book(load_inventory(inventory_path).devices)
        except InventoryError as error:
            raise CommandError(str(error)) from None
    options: dict[str, Any] = {
        "generated_at": now,
        "flap_threshold": flap_threshold,
        "top": top,
        "trend_interval": interval,
        "include_routine": include_routine,
        "thresholds": thresholds,
        "addresses": addresses,
    }
    with contextlib.closing(open_history(db, must_exist=True)) as store:
        report = history_report(
            store,
            since=window_since,
            until=window_until,
            group_by=group_by,
            series=fmt == Format.HTML.value,
            **options,
        )
        if other_window is not None:
            other = history_report(store, since=other_window[0], until=other_window[1], **options)
            report = dataclasses.replace(report, comparison=compare(report, other))
        if local_times:
            report = with_local_times(report, store.device_zones())
    emit(report, fmt, False, output, prometheus)
    return EXIT_OK
