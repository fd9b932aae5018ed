"""The ``collect-ike-offline`` command line: options in, calls out, exit codes.

No logic lives here that a test would want to call without click.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from collector import __version__
from collector.parse import ParseError, Problem, parse
from collector.records import OfflineRecord
from collector.render import FORMATS, Format, render_records


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="collect-ike-offline")
def main() -> None:
    """Collect and report Huawei VRP deleted IPsec tunnels (display ike offline-info)."""


@dataclass(frozen=True, slots=True)
class _FileProblem:
    """A parser problem with the file it came from (``parse`` with several files)."""

    source: str
    problem: Problem

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.source, **self.problem.to_dict()}


def _read_input(name: str) -> str:
    """The text of FILE, or of stdin for ``-``; undecodable bytes become U+FFFD."""
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    return data.decode("utf-8", errors="replace")


def _problem_warning(source: str, problem: Problem) -> str:
    where = source if problem.line is None else f"{source}:{problem.line}"
    text = "" if problem.text is None else f": {problem.text.strip()!r}"
    return f"{where}: warning: {problem.kind.value}: {problem.message}{text}"


@main.command(
    "parse",
    epilog="Exit codes: 0 parsed (problems such as a truncated table are printed as warnings, "
    "or listed under 'problems' in json); 1 a device refused the command or a file is not "
    "display ike offline-info output; 2 a file cannot be read, or a usage error.",
)
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=Format.TABLE.value,
    show_default=True,
    help="Output format. json: {records, problems}; ndjson: one record per line.",
)
def parse_command(files: tuple[str, ...], fmt: str) -> None:
    """Parse saved `display ike offline-info` outputs (FILE, or - / nothing for stdin).

    Records of all files are printed together, in file order. A file the parser
    refuses (device error, not this command's output) is named on stderr and skipped.
    """
    sources = files or ("-",)
    texts: list[tuple[str, str]] = []
    for name in sources:
        label = "<stdin>" if name == "-" else name
        try:
            texts.append((label, _read_input(name)))
        except OSError as exc:
            click.echo(f"collect-ike-offline: cannot read {label}: {exc.strerror or exc}", err=True)
            sys.exit(2)
    records: list[OfflineRecord] = []
    problems: list[_FileProblem | Problem] = []
    parsed = 0
    for label, text in texts:
        try:
            result = parse(text)
        except ParseError as exc:
            # CommandRejected prints as "device refused the command: Error: ...".
            click.echo(f"{label}: {exc}", err=True)
            continue
        parsed += 1
        records.extend(result.records)
        for problem in result.problems:
            problems.append(_FileProblem(label, problem) if len(texts) > 1 else problem)
            if fmt != Format.JSON.value:
                click.echo(_problem_warning(label, problem), err=True)
    if parsed:
        # Nothing at all when every file failed: an empty table would read as "0 records".
        click.echo(render_records(records, problems, fmt), nl=False)
    if parsed < len(texts):
        sys.exit(1)
