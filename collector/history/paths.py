"""Where the history lives by default (light: the run lock needs it without the store)."""

from __future__ import annotations

import os
from pathlib import Path

from collector import PROGRAM

APP_DIR = PROGRAM
DB_FILE = "history.sqlite3"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/collect-ike-offline`` or ``~/.local/share/collect-ike-offline``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_DIR


def default_db_path() -> Path:
    """The per-user SQLite history used when ``--db`` is not given."""
    return default_data_dir() / DB_FILE
