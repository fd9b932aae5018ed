"""Logging for the command line: messages on stderr, secrets masked, quiet for cron.

Levels: ``--quiet`` shows errors only; the default shows warnings (gaps, clock skew,
inventory warnings); ``-v`` adds progress of each device (info); ``-vv`` adds the
device conversation and exception detail (debug). Third-party libraries (paramiko,
netmiko) stay at warnings: their debug output is a byte dump, not a conversation.

Every record passes a :class:`~collector.ssh.credentials.MaskingFilter`, so the password can
never reach stderr, even in an exception's text. ``NO_COLOR`` (https://no-color.org) and
a stderr that is not a terminal both turn colour off. Nothing is written to files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Protocol, TextIO

from collector import PROGRAM
from collector.ssh.credentials import MaskingFilter, SecretMasker

__all__ = [
    "PROGRAM",
    "Overlay",
    "StderrHandler",
    "cli_logging",
    "color_enabled",
    "level_for",
    "set_overlay",
]


_COLORS = {logging.WARNING: "\x1b[33m", logging.ERROR: "\x1b[31m", logging.CRITICAL: "\x1b[31m"}
_RESET = "\x1b[0m"


def color_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, never when ``NO_COLOR`` is set (to anything) or
    ``TERM=dumb``."""
    stream = stream if stream is not None else sys.stderr
    if "NO_COLOR" in os.environ or os.environ.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def level_for(verbose: int, quiet: bool) -> int:
    """The collector's log level for ``-v`` count and ``--quiet``.

    Examples:
        >>> [logging.getLevelName(level_for(v, False)) for v in (0, 1, 2)]
        ['WARNING', 'INFO', 'DEBUG']
        >>> logging.getLevelName(level_for(2, True))
        'ERROR'
    """
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


class _Formatter(logging.Formatter):
    """``collect-ike-offline: warning: message``; debug lines name their logger."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            label = record.levelname.lower()
            stream = sys.stderr
            if color_enabled(stream):
                label = f"{_COLORS.get(record.levelno, '')}{label}{_RESET}"
            text = f"{PROGRAM}: {label}: {message}"
        elif record.levelno <= logging.DEBUG:
            text = f"{PROGRAM}: debug: {record.name}: {message}"
        else:
            text = f"{PROGRAM}: {message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return text


class Overlay(Protocol):
    """Something drawn on the last line of stderr (the progress display)."""

    stream: TextIO

    def above(self) -> contextlib.AbstractContextManager[None]:
        """Erase it, let the caller write, draw it again."""
        ...


_overlay: Overlay | None = None


def set_overlay(overlay: Overlay | None) -> None:
    """Register (or with None, remove) the display log records are written above."""
    global _overlay
    _overlay = overlay


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (click's test runner
    and pytest swap it), never to a stream captured at setup."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        bar = _overlay
        if bar is None or bar.stream is not self.stream:
            super().emit(record)
            return
        with bar.above():  # the record scrolls up, the display stays on the last line
            super().emit(record)


class _LibraryNoise(logging.Filter):
    """Below warnings, only the collector's own records: paramiko's and netmiko's debug
    output is a byte dump, and their info lines repeat what the collector says."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith("collector")


@contextlib.contextmanager
def cli_logging(verbose: int = 0, quiet: bool = False) -> Iterator[SecretMasker]:
    """Send log records to stderr at the level the options ask for, for one command.

    The root logger's level and handler are restored on exit, so tests that run many
    commands in one process (and pytest's own log capture) see no leftovers.

    Args:
        verbose: How many ``-v`` were given.
        quiet: ``--quiet``: errors only.

    Yields:
        The masker of the handler: add secrets to it as soon as they are known (the
        password is read after the options and the inventory).
    """
    masker = SecretMasker()
    root = logging.getLogger()
    handler = StderrHandler()
    handler.addFilter(MaskingFilter(masker))
    handler.addFilter(_LibraryNoise())
    handler.setFormatter(_Formatter())
    level = level_for(verbose, quiet)
    handler.setLevel(level)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield masker
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
