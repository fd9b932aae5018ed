"""The ``collect-ike-offline`` command line: options in, calls out, exit codes.

No logic lives here that a test would want to call without click: option values are
read by :mod:`collector.core.options`, a collection run by :mod:`collector.fleet.collect` (over
:mod:`collector.fleet.run`), the history by :mod:`collector.history.store`, the report by
:mod:`collector.core.aggregate` and :mod:`collector.output.render`.

Data goes to stdout (or ``--output``), messages to stderr. Every failure ends in one
line on stderr and a documented exit code, never a traceback (``-vv`` adds detail).

Size: over 500 lines because it is every click command with its options and help texts,
which read best side by side; the logic is in the packages below (exit codes in
:mod:`collector.cli.exitcodes`). Imports inside the command bodies are deliberate:
``--help``, ``--version`` and ``parse`` start without loading netmiko, paramiko, asyncssh or
the store.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from collector import __version__
from collector.cli.exitcodes import (
    EXIT_ALL_FAILED,
    EXIT_CODES_HELP,
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_THRESHOLD,
    EXIT_USAGE,
    EXPORT_EXIT_CODES_HELP,
    PRUNE_EXIT_CODES_HELP,
    REPORT_EXIT_CODES_HELP,
    exit_code_for,
)
from collector.cli.lock import LockHeld, RunLock, default_lock_path
from collector.core.aggregate import with_local_times
from collector.core.clock import ZoneError, parse_zone
from collector.core.commands import (
    InvalidDeviceSetting,
    check_device_settings,
    validate_peer,
)
from collector.core.compare import compare, parse_window
from collector.core.errors import CollectorError
from collector.core.incidents import DEFAULT_THRESHOLDS, Thresholds, address_book
from collector.core.options import (
    DEFAULT_ASYNC_WORKERS,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_AUTH_FAILURES,
    DEFAULT_TRANSPORT,
    DEFAULT_WORKERS,
    Threshold,
    breached,
    parse_duration,
    parse_moment,
    parse_threshold,
    threshold_counts,
)
from collector.core.parse import ParseError, Problem, parse
from collector.core.records import ErrorKind, OfflineRecord
from collector.history.report import history_report
from collector.history.store import Store, StoreError, default_db_path, is_postgres_url, open_store
from collector.inventory.loading import load_inventory
from collector.inventory.model import InventoryError
from collector.inventory.selection import parse_shard, parse_where, select
from collector.output.atomic import open_atomic, remove_stale_temps
from collector.output.export import write_export
from collector.output.logs import PROGRAM, cli_logging
from collector.output.machine import RecordText
from collector.output.preflight import PreflightError, check_output_file
from collector.output.prometheus import render_prometheus
from collector.output.render import FORMATS, REPORT_FORMATS, Format, render_records, write_report
from collector.output.spool import RecordSpool, lists_records
from collector.ssh.credentials import (
    DEFAULT_PASSWORD_ENV,
    CredentialsError,
    SecretMasker,
    load_credentials,
    scrub_environment,
)

if TYPE_CHECKING:
    from collector.core.aggregate import FleetReport
    from collector.inventory.selection import Shard

log = logging.getLogger("collector.cli.main")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collect-ike-offline")
def main() -> None:
    """Collect and report Huawei VRP deleted IPsec tunnels (display ike offline-info)."""


@dataclass(frozen=True, slots=True)
class _FileProblem:
    """A parser problem with the file it came from (``parse`` with several files)."""

    source: str
    problem: Problem

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, **self.problem.to_dict()}


def _read_input(name: str) -> str:
    """The text of FILE, or of stdin for ``-``; undecodable bytes become U+FFFD."""
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    return data.decode("utf-8", errors="replace")


def _problem_warning(source: str, problem: Problem) -> str:
    where = source if problem.line is None else f"{source}:{problem.line}"
    text = "" if problem.text is None else f": {problem.text.strip()!r}"
    return f"{where}: warning: {problem.kind.value}: {problem.message}{text}"


@main.command(
    "parse",
    epilog="Exit codes: 0 parsed (problems such as a truncated table are printed as warnings, "
    "or listed under 'problems' in json); 1 a device refused the command or a file is not "
    "display ike offline-info output; 2 a file cannot be read, or a usage error; 130 "
    "interrupted.",
)
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=Format.TABLE.value,
    show_default=True,
    help="Output format. json: {records, problems}; ndjson: one record per line.",
)
def parse_command(files: tuple[str, ...], fmt: str) -> None:
    """Parse saved `display ike offline-info` outputs (FILE, or - / nothing for stdin).

    Records of all files are printed together, in file order. A file the parser
    refuses (device error, not this command's output) is named on stderr and skipped.
    """
    sources = files or ("-",)
    if "-" in sources and sys.stdin.isatty():
        click.echo(
            "collect-ike-offline: reading display ike offline-info output from the terminal;"
            " end with Ctrl-D (or give a FILE)",
            err=True,
        )
    texts: list[tuple[str, str]] = []
    for name in sources:
        label = "<stdin>" if name == "-" else name
        try:
            texts.append((label, _read_input(name)))
        except OSError as exc:
            click.echo(f"collect-ike-offline: cannot read {label}: {exc.strerror or exc}", err=True)
            sys.exit(2)
    records: list[OfflineRecord] = []
    problems: list[_FileProblem | Problem] = []
    parsed = 0
    for label, text in texts:
        try:
            result = parse(text)
        except ParseError as exc:
            # CommandRejected prints as "device refused the command: Error: ...".
            click.echo(f"{label}: {exc}", err=True)
            continue
        parsed += 1
        records.extend(result.records)
        for problem in result.problems:
            problems.append(_FileProblem(label, problem) if len(texts) > 1 else problem)
            if fmt != Format.JSON.value:
                click.echo(_problem_warning(label, problem), err=True)
    if parsed:
        # Nothing at all when every file failed: an empty table would read as "0 records".
        click.echo(render_records(records, problems, fmt), nl=False)
    if parsed < len(texts):
        sys.exit(1)


# --- shared plumbing for collect, report and prune -------------------------------------------


class CommandError(CollectorError):
    """Ends a command with one line on stderr and ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


F = TypeVar("F", bound=Callable[..., int])
Parsed = TypeVar("Parsed")
"""What an option callback parses a value into."""


def _say_error(message: str) -> None:
    click.echo(f"{PROGRAM}: error: {message}", err=True)


def guarded(func: F) -> Callable[..., NoReturn]:
    """Run a command body with logging set up; turn every outcome into an exit code.

    The body gets ``masker`` (add secrets to it as soon as they are known) and returns
    its exit code. ``CommandError`` prints its line; any other exception is an internal
    error: one masked line (the traceback only at ``-vv``), exit 70.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> NoReturn:
        with cli_logging(kwargs.get("verbose", 0), kwargs.get("quiet", False)) as masker:
            try:
                code = func(*args, masker=masker, **kwargs)
            except CommandError as error:
                _say_error(masker.mask(str(error)))
                code = error.code
            except CollectorError as error:  # one no command turned into its own line
                _say_error(masker.mask(" ".join(str(error).split())))
                code = exit_code_for(error)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt:
                _say_error("interrupted")
                code = EXIT_INTERRUPTED
            except Exception as error:
                log.debug("internal error", exc_info=True)
                text = " ".join(str(error).split())[:300]
                hint = "traceback above" if kwargs.get("verbose", 0) >= 2 else "-vv for detail"
                _say_error(
                    masker.mask(f"internal error: {type(error).__name__}: {text}")
                    + f" ({hint}; please report it)"
                )
                code = EXIT_INTERNAL
        sys.exit(code)

    return wrapper


def verbosity_options(
    quiet: str, verbose: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-q/--quiet`` and ``-v/--verbose`` with the help text of one command."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option("-q", "--quiet", is_flag=True, help=quiet)(func)
        return click.option("-v", "--verbose", count=True, help=verbose)(func)

    return decorate


_FILE = click.Path(dir_okay=False, path_type=Path)


def _count_option(
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


def _file_option(
    *declarations: str, help_text: str, **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A file path option (not a directory), None when not given."""
    return click.option(*declarations, type=_FILE, default=None, help=help_text, **extra)


_db_option = click.option(
    "--db",
    metavar="URL|PATH",
    envvar="IKE_COLLECTOR_DB",
    show_envvar=True,
    default=None,
    help="History database: a SQLite file or postgresql://user@host/db "
    "(default: ~/.local/share/collect-ike-offline/history.sqlite3).",
)


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default=Format.TABLE.value,
    show_default=True,
    help="Report format (json: {schema_version, generated_at, window, devices, summary};"
    " html: one self-contained page with charts).",
)


_local_times_option = click.option(
    "--local-times",
    is_flag=True,
    help="Show each device's times in its own zone, with the offset (default: UTC).",
)


def _incident_options(command: Callable[..., Any]) -> Callable[..., Any]:
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
        func = _count_option(name, default, help_text, least=1)(func)
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
        callback=_duration_value,
        help="Disruptive deletions further apart than this are different incidents.",
    )(func)


_include_routine_option = click.option(
    "--include-routine",
    is_flag=True,
    help="Count routine deletions (rekeys, HA housekeeping) in the totals, flapping "
    "peers and --fail-on new; by default only disruptive ones (tunnels that went down).",
)


def _output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = _file_option(
        "--prometheus",
        metavar="FILE",
        help_text="Also write node_exporter textfile metrics here (atomically).",
    )(func)
    return _file_option(
        "--output",
        "-o",
        metavar="FILE",
        help_text="Write the report here (atomically: temp file + rename) instead of stdout.",
    )(func)


def _report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What a command printing a fleet report takes: ``--format``, ``--local-times``,
    ``--output``, ``--prometheus``, ``--include-routine`` and the incident thresholds."""
    for option in (
        _incident_options,
        _include_routine_option,
        _output_options,
        _local_times_option,
        _format_option,
    ):
        func = option(func)
    return func


def _emit(
    report: FleetReport,
    fmt: str,
    records: bool,
    output: Path | None,
    prometheus: Path | None,
    listing: RecordText | None = None,
) -> None:
    """The report to stdout or ``--output`` (streamed; each device's records from
    ``listing``, a spool, when given), and the textfile to ``--prometheus``."""
    width = None
    if output is None and sys.stdout.isatty():  # a person reads it: fit their terminal
        width = shutil.get_terminal_size().columns
    for path in (output, prometheus):
        if path is None:
            continue
        try:
            with open_atomic(path) as handle:
                if path is output:
                    write_report(report, handle, fmt, records=records, listing=listing)
                else:
                    handle.write(render_prometheus(report))
        except OSError as error:
            raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    if output is None:
        write_report(report, sys.stdout, fmt, records=records, width=width, listing=listing)
        sys.stdout.flush()


def _record_spool(fmt: str, records: bool, output: Path | None) -> RecordSpool | None:
    """Where ``collect`` puts each device's records until the report is written (None: the
    format lists none): beside ``--output``, else in $TMPDIR."""
    if not lists_records(fmt, records):
        return None
    directory = None if output is None else output.parent
    try:
        return RecordSpool(fmt, directory)
    except OSError as error:
        raise CommandError(f"cannot write {output or 'a temp file'}: {error}") from None


def _open_store(db: str | None, *, keep_raw: bool = False, must_exist: bool = False) -> Store:
    if must_exist and not (db and is_postgres_url(db)):
        path = Path(db).expanduser() if db else default_db_path()
        if not path.exists():
            raise CommandError(
                f"no history database at {path}: run 'collect-ike-offline collect' first, "
                "or point --db at one"
            )
    try:
        return open_store(db, keep_raw=keep_raw, create=not must_exist)
    except StoreError as error:
        raise CommandError(str(error)) from None


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


_peer_value = _parsed_by(validate_peer)
_shard_value = _parsed_by(parse_shard)
_duration_value = _parsed_by(parse_duration)
_where_values = _each_parsed_by(parse_where)
_threshold_values = _each_parsed_by(parse_threshold)


def _processes_value(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
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


# --- collect -----------------------------------------------------------------------------


@main.command("collect", epilog=EXIT_CODES_HELP)
@click.option(
    "--inventory",
    "-i",
    "inventory_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Nornir inventory (directory or hosts.yaml, groups.yaml/defaults.yaml beside it) "
    "or a CSV file.",
)
@click.option("--host", "hosts", multiple=True, metavar="GLOB", help="Device names (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="NAME", help="Group (repeatable).")
@click.option(
    "--where",
    "wheres",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_where_values,
    help="Inventory data must match, e.g. site=par1 (repeatable: all must hold).",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=_shard_value,
    help="Only shard K of N (a stable split of the devices across N collector hosts).",
)
@click.option(
    "--peer",
    metavar="A.B.C.D",
    callback=_peer_value,
    help="Only this peer's deletions (display ike offline-info peer A.B.C.D).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help=f"Devices read at once: threads with netmiko/napalm (default {DEFAULT_WORKERS}), "
    f"sessions in flight with asyncssh (default {DEFAULT_ASYNC_WORKERS}).",
)
@click.option(
    "--processes",
    default="auto",
    show_default=True,
    metavar="N|auto",
    callback=_processes_value,
    help="Split the devices (and --workers) over N processes, one core each. auto: 1 below "
    "50 devices, else the CPU count (at most 4); never under 25 devices per process.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="S",
    help="Hard deadline per device and attempt (connect, login and command).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    metavar="S",
    help="Seconds from the start of an attempt to the device's prompt (TCP, SSH banner, key "
    "exchange, login, paging off), within --timeout: a silent device frees its worker soon.",
)
@_count_option(
    "--retries",
    1,
    "Extra attempts after a connection failure (never after an authentication failure).",
)
@_count_option(
    "--max-auth-failures",
    DEFAULT_MAX_AUTH_FAILURES,
    "After N refused logins as one user, before any succeeded, stop logging in as it: "
    "the devices left are skipped-auth (protects the account from lockout; 0: never stop).",
    metavar="N",
)
@click.option(
    "--transport",
    "transport_name",
    type=click.Choice(["asyncssh", "netmiko", "napalm"]),
    default=DEFAULT_TRANSPORT,
    show_default=True,
    help="asyncssh: every session of a process in one event loop; netmiko: paramiko, a "
    "thread per session; napalm: napalm-huawei-vrp's driver and cli() "
    "(pip install '.[napalm]'). All three say the same to the device.",
)
@click.option(
    "--password-env",
    default=DEFAULT_PASSWORD_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the SSH password (else a hidden prompt on a terminal).",
)
@click.option(
    "--username",
    "-u",
    default=None,
    help="SSH user for devices with none in the inventory or the ssh_config.",
)
@_file_option("--key-file", help_text="SSH private key (tried before the password).")
@click.option("--ssh-agent", is_flag=True, help="Offer the SSH agent's keys.")
@_file_option(
    "--ssh-config",
    help_text="OpenSSH client config: ProxyJump / ProxyCommand (jump hosts), User, Port, HostName,"
    " IdentityFile, ConnectTimeout, ServerAliveInterval.",
)
@_file_option(
    "--known-hosts",
    metavar="FILE",
    help_text="known_hosts file (default ~/.ssh/known_hosts; new devices are trusted on first"
    " use).",
)
@click.option(
    "--strict-host-keys",
    is_flag=True,
    help="Refuse devices whose host key is not in the known_hosts file yet.",
)
@click.option(
    "--hash-known-hosts",
    is_flag=True,
    help="Record keys trusted on first use under hashed names (as HashKnownHosts yes).",
)
@click.option(
    "--legacy-ssh",
    is_flag=True,
    help="Allow the SHA-1 key exchanges of older VRP releases (needs paramiko<5).",
)
@_db_option
@click.option("--no-store", is_flag=True, help="Do not record this run in the history database.")
@click.option("--keep-raw", is_flag=True, help="Keep each device's raw output in the history.")
@click.option(
    "--clock-from-device",
    is_flag=True,
    help="Also read 'display clock': zone for devices without data.timezone, skew warnings.",
)
@click.option("--records", is_flag=True, help="Add the full listing of deletions to the report.")
@_report_options
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="EXPR",
    callback=_threshold_values,
    help="Exit 4 when this run's NEW deletions breach a threshold: dpd_timeout>5, "
    "liveness>=10, new>100 (disruptive ones), routine>500, failed>0, gaps>0 (repeatable).",
)
@_file_option(
    "--lock-file",
    help_text="Run lock (default: next to the SQLite database); a second run exits 75 at once.",
)
@verbosity_options(
    quiet="Errors only: no warnings, no progress bar; a run that was not clean still prints"
    " one summary line.",
    verbose="More detail on stderr: -v each device, -vv the device conversation (masked).",
)
@guarded
def collect_command(
    *,
    inventory_path: Path,
    hosts: tuple[str, ...],
    groups: tuple[str, ...],
    wheres: tuple[tuple[str, str], ...],
    shard: Shard | None,
    peer: str | None,
    workers: int | None,
    processes: int | None,
    timeout: float,
    connect_timeout: float,
    retries: int,
    max_auth_failures: int,
    transport_name: str,
    password_env: str,
    username: str | None,
    key_file: Path | None,
    ssh_agent: bool,
    ssh_config: Path | None,
    known_hosts: Path | None,
    strict_host_keys: bool,
    hash_known_hosts: bool,
    legacy_ssh: bool,
    db: str | None,
    no_store: bool,
    keep_raw: bool,
    clock_from_device: bool,
    records: bool,
    fmt: str,
    local_times: bool,
    output: Path | None,
    prometheus: Path | None,
    include_routine: bool,
    thresholds: Thresholds,
    fail_on: tuple[Threshold, ...],
    lock_file: Path | None,
    verbose: int,
    quiet: bool,
    masker: SecretMasker,
) -> int:
    """Read `display ike offline-info` from every selected device and print the fleet report.

    Each device's result is stored in the history as soon as it is read (one
    transaction per device); deletions seen before are not stored twice. The password
    comes from the environment (--password-env) or a prompt, never from the inventory
    or the command line.
    """
    # The SSH stack loads netmiko and paramiko: only collect pays for it (start-up cost
    # of parse, report, export, prune and --help).
    from collector.fleet.collect import run_collection  # netmiko: start-up cost
    from collector.ssh.errors import legacy_kex_available  # netmiko: start-up cost
    from collector.ssh.factory import TransportUnavailable, make_transport  # netmiko
    from collector.ssh.hostkeys import KnownHosts, KnownHostsFileError  # paramiko
    from collector.ssh.ssh_config import SshConfigError, resolve_device  # paramiko

    if fail_on and no_store:
        raise click.UsageError(
            "--fail-on counts the run's NEW deletions, which needs the history: drop --no-store"
        )
    try:
        check_output_file(output, "--output")
        check_output_file(prometheus, "--prometheus")
    except PreflightError as error:
        raise CommandError(str(error)) from None
    try:
        inventory = load_inventory(inventory_path)
    except InventoryError as error:
        raise CommandError(str(error)) from None
    for warning in inventory.warnings:
        log.warning("%s", warning)
    devices = select(inventory, hosts=hosts, groups=groups, where=wheres, shard=shard)
    if not devices:
        raise CommandError(
            f"{inventory.path}: no device matches the filters "
            f"({len(inventory.devices)} in the inventory); check --host/--group/--where/--shard"
        )
    for device in devices:
        zone = device.data.get("timezone")
        try:
            if zone is not None:
                parse_zone(str(zone))
            check_device_settings(device)
        except (ZoneError, InvalidDeviceSetting) as error:
            raise CommandError(f"{inventory.path}: device {device.name}: {error}") from None
    missing: list[str] = []
    for device in devices:  # the ssh_config may name the user; a broken one stops here
        try:
            target = resolve_device(device, ssh_config, username)
        except SshConfigError as error:
            raise CommandError(f"device {device.name}: {error}") from None
        if target.user is None:
            missing.append(device.name)
    if missing:
        raise CommandError(
            f"{inventory.path}: no SSH user name for {missing[0]}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            + ": set 'username' in the inventory or 'User' in the ssh_config, or pass --username"
        )
    try:
        credentials = load_credentials(
            username,
            password_env=password_env,
            key_file=key_file,
            use_agent=ssh_agent,
            ssh_config_file=ssh_config,
        )
    except CredentialsError as error:
        raise CommandError(str(error)) from None
    for secret in credentials.secrets():
        masker.add(secret)
    # The secrets are in memory now: out of the environment, which forked children and a
    # ProxyCommand would inherit and /proc/<pid>/environ shows.
    scrub_environment(password_env)

    if legacy_ssh and transport_name != "asyncssh" and not legacy_kex_available():
        log.warning(
            "--legacy-ssh: the installed paramiko has no SHA-1 key exchange left "
            "(paramiko 5 removed it); install paramiko<5 (pip install 'netmiko[par4]') to use it"
        )
    host_keys = KnownHosts(known_hosts, strict=strict_host_keys, hash_names=hash_known_hosts)
    try:
        host_keys.check()
    except KnownHostsFileError as error:
        raise CommandError(str(error)) from None
    try:
        transport = make_transport(
            transport_name,
            known_hosts=host_keys,
            allow_sha1_kex=legacy_ssh,
            connect_timeout=connect_timeout,
        )
    except TransportUnavailable as error:
        raise CommandError(str(error)) from None

    with contextlib.ExitStack() as stack:
        lock = RunLock(lock_file or default_lock_path(db))
        try:
            lock.acquire()
        except LockHeld as error:
            raise CommandError(str(error), EXIT_LOCKED) from None
        except OSError as error:
            raise CommandError(f"cannot take the run lock {lock.path}: {error}") from None
        stack.callback(lock.release)
        store = None if no_store else _open_store(db, keep_raw=keep_raw)
        if store is not None:
            stack.callback(store.close)
        spool = _record_spool(fmt, records, output)
        if spool is not None:
            stack.callback(spool.close)
        collection = run_collection(
            devices,
            credentials,
            transport,
            store=store,
            inventory_path=inventory.path,
            shard=shard,
            workers=workers or int(getattr(transport, "default_workers", DEFAULT_WORKERS)),
            processes=processes,
            timeout=timeout,
            retries=retries,
            peer=peer,
            clock_from_device=clock_from_device,
            keep_raw=keep_raw,
            show_progress=False if quiet else None,
            local_times=local_times,
            include_routine=include_routine,
            thresholds=thresholds,
            series=fmt == Format.HTML.value,
            max_auth_failures=max_auth_failures,
            keep_records=records and spool is None,  # table --records lists them from memory
            on_records=None if spool is None else spool.add,
        )
        report = collection.report
        _emit(report, fmt, records, output, prometheus, spool)

    failed = report.totals.devices_failed
    all_failed = failed == report.totals.devices
    counts = threshold_counts(
        collection.new_by_reason,
        failed=failed,
        gaps=report.totals.gaps,
        include_routine=include_routine,
    )
    breaches = [] if all_failed else breached(fail_on, counts)
    if quiet:
        # Errors only, but a run that did not go well is never silent (cron mails stderr).
        summary = _unclean_summary(report, breaches)
        if summary is not None:
            log.error("%s", summary)
    else:
        changed = [f.name for f in report.failing if f.error_kind is ErrorKind.HOST_KEY_CHANGED]
        if changed:
            log.error(
                "host key CHANGED on %d %s (%s): possible interception; nothing was sent to"
                " them. Check with the device owners before removing the old keys",
                len(changed),
                "device" if len(changed) == 1 else "devices",
                ", ".join(changed[:5])
                + (f" and {len(changed) - 5} more" if len(changed) > 5 else ""),
            )
        if failed:
            log.warning("%s (see the report)", _failed_text(report))
        for threshold, count in breaches:
            log.error("--fail-on %s breached: %d", threshold.text, count)
    if collection.database_error is not None:
        log.error("%s", _database_failed_text(collection.database_error, collection.unstored))
        return EXIT_DATABASE
    if all_failed:
        return EXIT_ALL_FAILED
    if breaches:
        return EXIT_THRESHOLD
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _database_failed_text(error: str, unstored: Sequence[str]) -> str:
    """The one line of a history that failed mid-run.

    Examples:
        >>> _database_failed_text("server closed the connection", ["a", "b"])[:60]
        'the history database failed during the run (server closed th'
    """
    count = len(unstored)
    names = ", ".join(unstored[:5]) + (f" and {count - 5} more" if count > 5 else "")
    devices = f"{count} {'device' if count == 1 else 'devices'} not stored"
    detail = f"{devices} ({names})" if count else "the run's totals not recorded"
    return (
        f"the history database failed during the run ({error}): {detail}; the report was"
        " written from this run; the next run stores what their buffers still hold"
    )


def _failed_text(report: FleetReport) -> str:
    """``3 of 12 devices could not be read``."""
    total = report.totals.devices
    noun = "device" if total == 1 else "devices"
    return f"{report.totals.devices_failed} of {total} {noun} could not be read"


def _unclean_summary(report: FleetReport, breaches: Sequence[tuple[Threshold, int]]) -> str | None:
    """The one ``--quiet`` line of a run that was not clean (None for a clean run): failed
    devices by error kind, gaps, breached thresholds."""
    parts: list[str] = []
    if report.totals.devices_failed:
        kinds = collections.Counter(failure.error_kind.value for failure in report.failing)
        detail = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        parts.append(f"{_failed_text(report)}" + (f" ({detail})" if detail else ""))
    gaps = report.totals.gaps
    if gaps:
        parts.append(
            f"{gaps} {'device' if gaps == 1 else 'devices'} wrapped their buffer since the"
            " previous run (deletions may be lost)"
        )
    parts.extend(f"--fail-on {threshold.text} breached: {count}" for threshold, count in breaches)
    if not parts:
        return None
    return "; ".join(parts) + "; see the report"


# --- report, export and prune -----------------------------------------------------------------


def _window_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--since`` and ``--until`` (read by :func:`_window`)."""
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


def _window(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime | None]:
    try:
        window_since = parse_moment(since, now)
        window_until = None if until is None else parse_moment(until, now)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since/--until") from None
    if window_until is not None and window_until <= window_since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    return window_since, window_until


@main.command("report", epilog=REPORT_EXIT_CODES_HELP)
@_db_option
@_window_options
@click.option(
    "--group-by",
    type=click.Choice(["device", "site", "group", "reason", "category", "peer"]),
    default=None,
    help="Also break deletions down by this dimension.",
)
@_count_option(
    "--flap-threshold",
    2,
    "A peer with at least this many deletions in the window is flapping.",
    least=1,
)
@_count_option("--top", 10, "At most this many flapping peers.")
@click.option(
    "--interval",
    type=click.Choice(["hour", "day"]),
    default=None,
    help="Trend buckets (default: hourly up to two days of data, else daily).",
)
@_report_options
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
    window_since, window_until = _window(since, until, now)
    try:
        check_output_file(output, "--output")
        check_output_file(prometheus, "--prometheus")
    except PreflightError as error:
        raise CommandError(str(error)) from None
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
    with contextlib.closing(_open_store(db, must_exist=True)) as store:
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
    _emit(report, fmt, False, output, prometheus)
    return EXIT_OK


@main.command("export", epilog=EXPORT_EXIT_CODES_HELP)
@_db_option
@_window_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv"]),
    default="ndjson",
    show_default=True,
    help="ndjson: one JSON object a line; csv: a header row, then one row a deletion.",
)
@_file_option(
    "--output",
    "-o",
    metavar="FILE",
    help_text="Write here (a temp file renamed when complete) instead of stdout.",
)
@verbosity_options(
    quiet="Errors only.",
    verbose="More detail on stderr: -v how many deletions were exported, -vv debug.",
)
@guarded
def export_command(
    *,
    db: str | None,
    since: str,
    until: str | None,
    fmt: str,
    output: Path | None,
    verbose: int,
    quiet: bool,
    masker: SecretMasker,
) -> int:
    """Stored deletions, one event a line, for a SIEM (Splunk, Elastic, Loki): device, site,
    peer, port, reason as printed, code, category, routine/disruptive, local and UTC time,
    first-seen run. Streamed from the store in constant memory; field names in the README."""
    now = datetime.now(UTC)
    window_since, window_until = _window(since, until, now)
    with contextlib.closing(_open_store(db, must_exist=True)) as store:
        if output is None:
            try:
                count = write_export(store, sys.stdout, fmt, window_since, window_until)
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader stopped (| head): not an error; keep Python from complaining
                # again when it flushes stdout at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK
        else:
            count = _export_to_file(store, output, fmt, window_since, window_until)
    log.info("exported %d deletions", count)
    return EXIT_OK


def _export_to_file(
    store: Store, output: Path, fmt: str, since: datetime, until: datetime | None
) -> int:
    """Stream the export into a temp file beside ``output``, renamed over it when complete."""
    directory = output.parent if str(output.parent) else Path(".")
    remove_stale_temps(directory, output.name)  # what a killed export left behind
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise CommandError(f"cannot write {output}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            count = write_export(store, handle, fmt, since, until)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, output)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise CommandError(f"cannot write {output}: {error.strerror or error}") from None
        raise
    return count


@main.command("prune", epilog=PRUNE_EXIT_CODES_HELP)
@_db_option
@click.option(
    "--older-than",
    required=True,
    metavar="90d",
    callback=_duration_value,
    help="Remove deletions (and runs, gaps) older than this: 90d, 12w, 36h.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be removed; change nothing.")
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Do not ask for confirmation (it is asked only when stdin is a terminal).",
)
@verbosity_options(
    quiet="No line saying what was removed (errors only).",
    verbose="More detail on stderr (-vv: debug).",
)
@guarded
def prune_command(
    *,
    db: str | None,
    older_than: timedelta,
    dry_run: bool,
    assume_yes: bool,
    verbose: int,
    quiet: bool,
    masker: SecretMasker,
) -> int:
    """Retention: forget deletions older than --older-than (devices remember the cut-off, so
    old rows still in a device's buffer are not stored again as new).

    On a terminal it asks first (--yes does not); from cron it does not ask."""
    now = datetime.now(UTC)
    cutoff = (now - older_than).isoformat(sep=" ", timespec="seconds")
    with contextlib.closing(_open_store(db, must_exist=True)) as store:
        target = store.display_target
        if dry_run or (not assume_yes and sys.stdin.isatty()):
            count = store.prune_count(older_than, now=now)
            what = f"{count} {'deletion' if count == 1 else 'deletions'} older than {cutoff}"
            if dry_run:
                click.echo(f"{PROGRAM}: would remove {what} from {target} (dry run)", err=True)
                return EXIT_OK
            if count and not click.confirm(
                f"Remove {what} from {target}?", default=False, err=True
            ):
                click.echo(f"{PROGRAM}: cancelled; nothing removed", err=True)
                return EXIT_SOME_FAILED
        removed = store.prune(older_than, now=now)
    if not quiet:
        noun = "deletion" if removed == 1 else "deletions"
        click.echo(
            f"{PROGRAM}: removed {removed} {noun} older than {cutoff} from {target}",
            err=True,
        )
    return EXIT_OK
