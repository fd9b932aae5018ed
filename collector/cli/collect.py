"""``collect-ike-offline collect``: read every selected device, store, report, exit code.

The checks that need no device come first (inventory, per-device settings, the ssh_config,
credentials, the known_hosts file, the run lock); the run itself is
:func:`collector.fleet.collect.run_collection`. The SSH stack is imported inside the
command body: ``--help`` and the other commands start without netmiko, paramiko or asyncssh.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collector.cli.exitcodes import (
    EXIT_ALL_FAILED,
    EXIT_CODES_HELP,
    EXIT_DATABASE,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_THRESHOLD,
)
from collector.cli.files import check_outputs, emit, open_history, record_spool
from collector.cli.guard import CommandError, guarded
from collector.cli.lock import LockHeld, RunLock, default_lock_path
from collector.cli.params import (
    count_option,
    db_option,
    file_option,
    peer_value,
    processes_value,
    report_options,
    shard_value,
    threshold_values,
    verbosity_options,
    where_values,
)
from collector.core.clock import ZoneError, parse_zone
from collector.core.commands import InvalidDeviceSetting, check_device_settings
from collector.core.incidents import Thresholds
from collector.core.options import (
    DEFAULT_ASYNC_WORKERS,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_AUTH_FAILURES,
    DEFAULT_TRANSPORT,
    DEFAULT_WORKERS,
    Threshold,
    breached,
    threshold_counts,
)
from collector.core.records import ErrorKind
from collector.inventory.loading import load_inventory
from collector.inventory.model import InventoryError
from collector.inventory.selection import select
from collector.output.render import Format
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

log = logging.getLogger(__name__)


@click.command("collect", epilog=EXIT_CODES_HELP)
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
    callback=where_values,
    help="Inventory data must match, e.g. site=par1 (repeatable: all must hold).",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=shard_value,
    help="Only shard K of N (a stable split of the devices across N collector hosts).",
)
@click.option(
    "--peer",
    metavar="A.B.C.D",
    callback=peer_value,
    help="Only this peer's deletions (display ike offline-info peer A.B.C.D).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help=f"Devices read at once: threads with netmiko/napalm (default {DEFAULT_WORKERS}), "
    f"sessions in flight with asyncssh (default {DEFAULT_ASYNC_WORKERS}; a session still "
    "waiting for its device's SSH banner after 2 s waits aside and does not count).",
)
@click.option(
    "--processes",
    default="auto",
    show_default=True,
    metavar="N|auto",
    callback=processes_value,
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
@count_option(
    "--retries",
    1,
    "Extra attempts after a connection failure (never after an authentication failure).",
)
@count_option(
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
@file_option("--key-file", help_text="SSH private key (tried before the password).")
@click.option("--ssh-agent", is_flag=True, help="Offer the SSH agent's keys.")
@file_option(
    "--ssh-config",
    help_text="OpenSSH client config: ProxyJump / ProxyCommand (jump hosts), User, Port, HostName,"
    " IdentityFile, ConnectTimeout, ServerAliveInterval.",
)
@file_option(
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
@db_option
@click.option("--no-store", is_flag=True, help="Do not record this run in the history database.")
@click.option("--keep-raw", is_flag=True, help="Keep each device's raw output in the history.")
@click.option(
    "--clock-from-device",
    is_flag=True,
    help="Also read 'display clock': zone for devices without data.timezone, skew warnings.",
)
@click.option("--records", is_flag=True, help="Add the full listing of deletions to the report.")
@report_options
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="EXPR",
    callback=threshold_values,
    help="Exit 4 when this run's NEW deletions breach a threshold: dpd_timeout>5, "
    "liveness>=10, new>100 (disruptive ones), routine>500, failed>0, gaps>0 (repeatable).",
)
@file_option(
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
    check_outputs(output, prometheus)
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
        store = None if no_store else open_history(db, keep_raw=keep_raw)
        if store is not None:
            stack.callback(store.close)
        spool = record_spool(fmt, records, output)
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
        emit(report, fmt, records, output, prometheus, spool)

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
