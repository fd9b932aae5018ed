"""How a command ends: one line on stderr and a documented exit code, never a traceback.

:func:`guarded` wraps every command body but ``parse``: it sets up logging (and the secret
masker), turns :class:`CommandError` and every :class:`~collector.core.errors.CollectorError`
into their line and code, Ctrl-C into 130 and anything else into one masked "internal error"
line and exit 70 (the traceback only at ``-vv``).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from collector.cli.exitcodes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, exit_code_for
from collector.core.errors import CollectorError
from collector.output.logs import PROGRAM, cli_logging

log = logging.getLogger(__name__)


class CommandError(CollectorError):
    """Ends a command with one line on stderr and ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


F = TypeVar("F", bound=Callable[..., int])


def say_error(message: str) -> None:
    click.echo(f"{PROGRAM}: error: {message}", err=True)


def guarded(func: F) -> Callable[..., NoReturn]:
    """Run a command body with logging set up; turn every outcome into an exit code.

    The body gets ``masker`` (add secrets to it as soon as they are known) and returns
    its exit code. ``CommandError`` prints its line; any other exception is an internal
    error: one masked line (the traceback only at ``-vv``), exit 70.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> NoReturn:
        with cli_logging(kwargs.get("verbose", 0), kwargs.get("quiet", False)) as masker:
            try:
                code = func(*args, masker=masker, **kwargs)
            except CommandError as error:
                say_error(masker.mask(str(error)))
                code = error.code
            except CollectorError as error:  # one no command turned into its own line
                say_error(masker.mask(" ".join(str(error).split())))
                code = exit_code_for(error)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except KeyboardInterrupt:
                say_error("interrupted")
                code = EXIT_INTERRUPTED
            except Exception as error:
                log.debug("internal error", exc_info=True)
                text = " ".join(str(error).split())[:300]
                hint = "traceback above" if kwargs.get("verbose", 0) >= 2 else "-vv for detail"
                say_error(
                    masker.mask(f"internal error: {type(error).__name__}: {text}")
                    + f" ({hint}; please report it)"
                )
                code = EXIT_INTERNAL
        sys.exit(code)

    return wrapper
