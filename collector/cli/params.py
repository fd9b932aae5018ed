"""The options several commands share, and the callbacks that read option values.

A bad value is a usage error (exit 2) that names the option, before anything connects or
opens the history: the callbacks parse with :mod:`collector.core.options` and friends and
turn their ``ValueError`` into ``click.BadParameter``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from collector.core.commands import validate_peer
from collector.core.incidents import DEFAULT_THRESHOLDS
from collector.core.options import parse_duration, parse_moment, parse_threshold
from collector.inventory.selection import parse_shard, parse_where
from collector.output.render import REPORT_FORMATS, Format

Parsed = TypeVar("Parsed")
"""What an option callback parses a value into."""


def verbosity_options(
    quiet: str, verbose: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-q/--quiet`` and ``-v/--verbose`` with the help text of one command."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option("-q", "--quiet", is_flag=True, help=quiet)(func)
        return click.option("-v", "--verbose", count=True, help=verbose)(func)

    return decorate


_FILE = click.Path(dir_okay=False, path_type=Path)


def count_option(
    name: str, default: int, help_text: str, *, least: int = 0, **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An integer option of at least ``least``, its default shown in ``--help``."""
    return click.option(
        name,
        type=click.IntRange(min=least),
        default=default,
        show_default=True,
        help=help_text,
        **extra,
    )


def file_option(
    *declarations: str, help_text: str, **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A file path option (not a directory), None when not given."""
    return click.option(*declarations, type=_FILE, default=None, help=help_text, **extra)


db_option = click.option(
    "--db",
    metavar="URL|PATH",
    envvar="IKE_COLLECTOR_DB",
    show_envvar=True,
    default=None,
    help="History database: a SQLite file or postgresql://user@host/db "
    "(default: ~/.local/share/collect-ike-offline/history.sqlite3).",
)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default=Format.TABLE.value,
    show_default=True,
    help="Report format (json: {schema_version, generated_at, window, devices, summary};"
    " html: one self-contained page with charts).",
)


local_times_option = click.option(
    "--local-times",
    is_flag=True,
    help="Show each device's times in its own zone, with the offset (default: UTC).",
)


def incident_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--incident-gap``, ``--spread-share`` and the ``--*-min`` counts (see incidents.py),
    passed to ``command`` as one ``thresholds`` (:class:`Thresholds`)."""
    defaults = DEFAULT_THRESHOLDS

    @functools.wraps(command)
    def bundled(
        *,
        incident_gap: timedelta | None,
        burst_min: int,
        spread_min: int,
        hub_min: int,
        spread_share: float,
        **options: Any,
    ) -> Any:
        thresholds = dataclasses.replace(
            defaults,
            gap=incident_gap or defaults.gap,
            burst_min=burst_min,
            spread_min=spread_min,
            hub_min=hub_min,
            spread_share=spread_share,
        )
        return command(thresholds=thresholds, **options)

    func: Callable[..., Any] = bundled
    for name, default, help_text in reversed(
        (
            (
                "--burst-min",
                defaults.burst_min,
                "Incident: at least this many peers down on one device within the gap.",
            ),
            (
                "--spread-min",
                defaults.spread_min,
                "Incident: one peer down on at least this many devices within the gap.",
            ),
            (
                "--hub-min",
                defaults.hub_min,
                "Incident: a hub when at least this many devices lose their tunnel to one peer.",
            ),
        )
    ):
        func = count_option(name, default, help_text, least=1)(func)
    func = click.option(
        "--spread-share",
        type=click.FloatRange(min=0, max=1),
        default=defaults.spread_share,
        show_default=True,
        help="Incident: a peer or hub incident also needs this share of the devices that lost "
        "a tunnel to that peer in the window.",
    )(func)
    return click.option(
        "--incident-gap",
        default=f"{defaults.gap.total_seconds():.0f}s",
        show_default=True,
        metavar="60s",
        callback=duration_value,
        help="Disruptive deletions further apart than this are different incidents.",
    )(func)


include_routine_option = click.option(
    "--include-routine",
    is_flag=True,
    help="Count routine deletions (rekeys, HA housekeeping) in the totals, flapping "
    "peers and --fail-on new; by default only disruptive ones (tunnels that went down).",
)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = file_option(
        "--prometheus",
        metavar="FILE",
        help_text="Also write node_exporter textfile metrics here (atomically).",
    )(func)
    return file_option(
        "--output",
        "-o",
        metavar="FILE",
        help_text="Write the report here (atomically: temp file + rename) instead of stdout.",
    )(func)


def report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What a command printing a fleet report takes: ``--format``, ``--local-times``,
    ``--output``, ``--prometheus``, ``--include-routine`` and the incident thresholds."""
    for option in (
        incident_options,
        include_routine_option,
        output_options,
        local_times_option,
        format_option,
    ):
        func = option(func)
    return func


# --- option callbacks: bad values are usage errors (exit 2) before anything connects --------


def _usage_parse(parse: Callable[[str], Parsed], value: str) -> Parsed:
    """``parse(value)``; a ValueError it raises is a usage error naming the option."""
    try:
        return parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _parsed_by(
    parse: Callable[[str], Parsed],
) -> Callable[[click.Context, click.Parameter, str | None], Parsed | None]:
    """A click callback: no value stays None, else ``parse(value)`` (see :func:`_usage_parse`)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Parsed | None:
        return None if value is None else _usage_parse(parse, value)

    return callback


def _each_parsed_by(
    parse: Callable[[str], Parsed],
) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], tuple[Parsed, ...]]:
    """:func:`_parsed_by` for a repeatable option: every value parsed."""

    def callback(
        ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
    ) -> tuple[Parsed, ...]:
        return tuple(_usage_parse(parse, value) for value in values)

    return callback


peer_value = _parsed_by(validate_peer)
shard_value = _parsed_by(parse_shard)
duration_value = _parsed_by(parse_duration)
where_values = _each_parsed_by(parse_where)
threshold_values = _each_parsed_by(parse_threshold)


def processes_value(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """``--processes``: a count >= 1, or ``auto`` (None: decided from the fleet's size)."""
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise click.BadParameter(f"{value!r}: give a number of processes (1 or more) or 'auto'")
    return count


def window_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--since`` and ``--until`` (read by :func:`window`)."""
    func = click.option(
        "--until", default=None, metavar="24h|7d|ISO", help="Window end (default: now)."
    )(func)
    return click.option(
        "--since",
        default="24h",
        show_default=True,
        metavar="24h|7d|ISO",
        help="Window start: a duration back from now or an ISO date/time (no zone: UTC).",
    )(func)


def window(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime | None]:
    try:
        window_since = parse_moment(since, now)
        window_until = None if until is None else parse_moment(until, now)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since/--until") from None
    if window_until is not None and window_until <= window_since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    return window_since, window_until
