"""Checks made before anything connects: a run must not read a whole fleet and then find
that it cannot write its report.

Pure checks over the file system, each raising :class:`PreflightError` with one line that
names the option and the path; the command line turns it into a usage error (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from collector.core.errors import CollectorError

__all__ = ["PreflightError", "check_output_file"]


class PreflightError(CollectorError):
    """A setting that would fail the run later; the message says which and what to do."""


def check_output_file(path: Path | None, option: str) -> None:
    """``path`` can be written atomically: its directory exists and is writable (our temp
    file goes beside it), and it is not a directory.

    Examples:
        >>> check_output_file(None, "--output")
        >>> try:
        ...     check_output_file(Path("/nx/ike.json"), "--output")
        ... except PreflightError as error:
        ...     print(error)
        --output /nx/ike.json: directory /nx does not exist: create it first
    """
    if path is None:
        return
    target = path.expanduser()
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise PreflightError(f"{option} {path}: is a directory: give a file name")
    if not directory.is_dir():
        raise PreflightError(
            f"{option} {path}: directory {directory} does not exist: create it first"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PreflightError(f"{option} {path}: directory {directory} is not writable by this user")
