"""The ``collect-ike-offline`` command line: options in, calls out, exit codes.

No logic lives here that a test would want to call without click.
"""

from __future__ import annotations

import click

from collector import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collect-ike-offline")
def main() -> None:
    """Collect and report Huawei VRP deleted IPsec tunnels (display ike offline-info)."""
