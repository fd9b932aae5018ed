"""The run lock: two overlapping cron runs never collect at once.

An exclusive ``fcntl.flock`` on a lock file. The kernel drops the lock when the process
dies, however it dies (SIGKILL included), so a stale lock file never blocks the next run.
The holder's pid is written into the file for the second run's message only; the lock
itself is the flock, never the file's existence or content.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from collector import PROGRAM
from collector.core.errors import CollectorError
from collector.history.paths import default_db_path

LOCK_FILE_NAME = f"{PROGRAM}.lock"


class LockHeld(CollectorError):
    """Another run holds the lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"another {PROGRAM} run ({holder}) holds the lock {path}; "
            "this run exits without collecting"
        )


def default_lock_path(db: str | None = None) -> Path:
    """Where the lock lives: next to the SQLite database (None: the default one).

    For a PostgreSQL URL (several hosts may share the database, each runs its own
    lock) the lock is per host: ``$XDG_RUNTIME_DIR`` or the per-user data directory.
    """
    if db is None:
        db = str(default_db_path())
    if "://" not in db:
        path = Path(db).expanduser()
        return path.with_name(path.name + ".lock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / LOCK_FILE_NAME
    return default_db_path().parent / LOCK_FILE_NAME


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """An exclusive, non-blocking lock held for the life of a run.

    Use as a context manager; ``acquire`` raises LockHeld at once when another process
    holds it (no waiting: the cron run that finds the lock held simply exits 75).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld; creates the lock file's directory if needed."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, _read_pid(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a waiting run)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
