"""The ``collect-ike-offline`` command line: the click group and its commands.

Each command is a module of this package (:mod:`~collector.cli.parse`,
:mod:`~collector.cli.collect`, :mod:`~collector.cli.report`, :mod:`~collector.cli.export`,
:mod:`~collector.cli.prune`), built from the shared options of :mod:`~collector.cli.params`
and ended by :func:`~collector.cli.guard.guarded`. No logic lives here that a test would want
to call without click: option values are read by :mod:`collector.core.options`, a
collection run by :mod:`collector.fleet.collect` (over :mod:`collector.fleet.run`), the
history by :mod:`collector.history.store`, the report by :mod:`collector.core.aggregate` and
:mod:`collector.output.render`.

Data goes to stdout (or ``--output``), messages to stderr. Every failure ends in one
line on stderr and a documented exit code, never a traceback (``-vv`` adds detail).
"""

from __future__ import annotations

import click

from collector import __version__
from collector.cli.collect import collect_command
from collector.cli.export import export_command
from collector.cli.parse import parse_command
from collector.cli.prune import prune_command
from collector.cli.report import report_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collect-ike-offline")
def main() -> None:
    """Collect and report Huawei VRP deleted IPsec tunnels (display ike offline-info)."""


for _command in (parse_command, collect_command, report_command, export_command, prune_command):
    main.add_command(_command)
