"""``collect-ike-offline export``: stored deletions as NDJSON or CSV events, streamed."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from collector.cli.exitcodes import EXIT_OK, EXPORT_EXIT_CODES_HELP
from collector.cli.files import open_history
from collector.cli.guard import CommandError, guarded
from collector.cli.params import db_option, file_option, verbosity_options, window, window_options
from collector.history.store import Store
from collector.output.atomic import remove_stale_temps
from collector.output.export import write_export
from collector.ssh.credentials import SecretMasker

log = logging.getLogger(__name__)


@click.command("export", epilog=EXPORT_EXIT_CODES_HELP)
@db_option
@window_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv"]),
    default="ndjson",
    show_default=True,
    help="ndjson: one JSON object a line; csv: a header row, then one row a deletion.",
)
@file_option(
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
    window_since, window_until = window(since, until, now)
    with contextlib.closing(open_history(db, must_exist=True)) as store:
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
