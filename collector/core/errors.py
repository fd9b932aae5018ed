"""The one base of every exception the collector raises on purpose.

A :class:`CollectorError`'s message is one line for the operator: what went wrong, naming
the file, line, device or option, and what to do. The CLI's guard prints it (never a
traceback) and exits with its code (:func:`collector.cli.exitcodes.exit_code_for`);
anything else reaching the guard is a bug (an internal error, exit 70).
"""

from __future__ import annotations


class CollectorError(Exception):
    """An error the collector means: its message is one line for the operator."""
