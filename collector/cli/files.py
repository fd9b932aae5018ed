"""What a command reads and writes besides its options: the history database, the
report (stdout, ``--output``), the ``--prometheus`` textfile and ``collect``'s record spool;
each failure to open or write one is a :class:`~collector.cli.guard.CommandError` line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from collector.cli.guard import CommandError
from collector.history.store import Store, StoreError, default_db_path, is_postgres_url, open_store
from collector.output.atomic import open_atomic
from collector.output.machine import RecordText
from collector.output.preflight import PreflightError, check_output_file
from collector.output.prometheus import render_prometheus
from collector.output.render import write_report
from collector.output.spool import RecordSpool, lists_records

if TYPE_CHECKING:
    from collector.core.aggregate import FleetReport


def check_outputs(output: Path | None, prometheus: Path | None) -> None:
    """``--output`` and ``--prometheus`` checked writable before the command does anything."""
    try:
        check_output_file(output, "--output")
        check_output_file(prometheus, "--prometheus")
    except PreflightError as error:
        raise CommandError(str(error)) from None


def emit(
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


def record_spool(fmt: str, records: bool, output: Path | None) -> RecordSpool | None:
    """Where ``collect`` puts each device's records until the report is written (None: the
    format lists none): beside ``--output``, else in $TMPDIR."""
    if not lists_records(fmt, records):
        return None
    directory = None if output is None else output.parent
    try:
        return RecordSpool(fmt, directory)
    except OSError as error:
        raise CommandError(f"cannot write {output or 'a temp file'}: {error}") from None


def open_history(db: str | None, *, keep_raw: bool = False, must_exist: bool = False) -> Store:
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
