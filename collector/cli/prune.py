"""``collect-ike-offline prune``: retention, with a confirmation on a terminal."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta

import click

from collector.cli.exitcodes import EXIT_OK, EXIT_SOME_FAILED, PRUNE_EXIT_CODES_HELP
from collector.cli.files import open_history
from collector.cli.guard import guarded
from collector.cli.params import db_option, duration_value, verbosity_options
from collector.output.logs import PROGRAM
from collector.ssh.credentials import SecretMasker


@click.command("prune", epilog=PRUNE_EXIT_CODES_HELP)
@db_option
@click.option(
    "--older-than",
    required=True,
    metavar="90d",
    callback=duration_value,
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
    with contextlib.closing(open_history(db, must_exist=True)) as store:
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
