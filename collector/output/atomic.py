"""Files written whole or not at all (``--output``, ``--prometheus``, exports): a temp file in
the same directory, fsync, rename; stale temps of killed writes removed. :func:`open_atomic`
for a file written piece by piece (a streamed report), :func:`write_atomic` for a string.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 60.0
"""A temp file of :func:`write_atomic` this old belongs to a write that will never finish
(a write takes milliseconds; a younger one may be another process's, in progress)."""


def remove_stale_temps(directory: Path, name: str) -> None:
    """Remove ``.NAME.*.tmp`` files older than :data:`STALE_TEMP_SECONDS` in ``directory``."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in directory.glob(f".{glob.escape(name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - leftover.lstat().st_mtime > STALE_TEMP_SECONDS and leftover.is_file():
                    leftover.unlink()
                    log.info("removed %s, left by an interrupted write", leftover)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text handle on a temp file that replaces ``path`` when the block ends without an
    exception, so readers see the old file or the new one, never half of it.

    The temp file (``.NAME.XXXX.tmp``) is in the same directory (same filesystem, so the
    rename is atomic); it is flushed and fsynced, given the mode of the file it replaces
    (else rw-r--r--), then renamed over ``path``, and the directory is fsynced so the
    rename survives a crash. On an exception the temp file is removed. Temporary files
    of earlier writes that a killed process left behind (older than
    :data:`STALE_TEMP_SECONDS`) are removed first.

    Raises:
        OSError: The directory is missing or not writable (the temp file is removed).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    remove_stale_temps(directory, target.name)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600, but node_exporter (another user) must read a textfile:
        # keep the mode of the file being replaced, else rw-r--r--. (os.umask() would
        # tell the usual default but changes process state under other threads.)
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (:func:`open_atomic`).

    Raises:
        OSError: The directory is missing or not writable (the temp file is removed).
    """
    with open_atomic(path) as handle:
        handle.write(text)
