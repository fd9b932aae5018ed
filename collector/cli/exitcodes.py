"""The exit codes of every command, in one place (and the help texts that list them)."""

from __future__ import annotations

from collector.cli.lock import LockHeld
from collector.core.errors import CollectorError
from collector.history.store import StoreError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_ALL_FAILED = 3
EXIT_THRESHOLD = 4
EXIT_DATABASE = 5
EXIT_INTERNAL = 70
EXIT_LOCKED = 75
"""EX_TEMPFAIL from sysexits.h: another run holds the lock; try again later."""
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\b
Exit codes:
  0   every device was read
  1   some devices could not be read (named on stderr and in the report)
  2   usage or configuration error (options, inventory, credentials, database)
  3   every device failed
  4   a --fail-on threshold was breached (wins over 0 and 1)
  5   the history database failed during the run: the report was written, the
      devices named on stderr were not stored (wins over 0, 1, 3 and 4)
  70  internal error (a bug: please report it with the -vv output)
  75  another run holds the lock (--lock-file); nothing was collected
  130 interrupted (Ctrl-C); devices already read are stored
"""

EXPORT_EXIT_CODES_HELP = """\b
Exit codes:
  0   the deletions of the window were written
  2   usage or configuration error (options, database, output path)
  70  internal error (a bug: please report it with the -vv output)
  130 interrupted (Ctrl-C)
"""

REPORT_EXIT_CODES_HELP = """\b
Exit codes:
  0   the report was written
  2   usage or configuration error (options, database, output path)
  70  internal error (a bug: please report it with the -vv output)
  130 interrupted (Ctrl-C)
"""


PRUNE_EXIT_CODES_HELP = """\b
Exit codes:
  0   removed (or, with --dry-run, counted) the old deletions
  1   cancelled at the confirmation question; nothing removed
  2   usage or configuration error (options, database)
  70  internal error (a bug: please report it with the -vv output)
  130 interrupted (Ctrl-C)
"""


def exit_code_for(error: CollectorError) -> int:
    """The exit code of a collector error no command turned into its own: the lock held
    exits 75, the history database 5, anything else is a usage or configuration error."""
    if isinstance(error, LockHeld):
        return EXIT_LOCKED
    if isinstance(error, StoreError):
        return EXIT_DATABASE
    return EXIT_USAGE
