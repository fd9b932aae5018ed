"""``collect-ike-offline parse``: saved ``display ike offline-info`` outputs to a report,
no device and no history involved."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from collector.core.parse import ParseError, Problem, parse
from collector.core.records import OfflineRecord
from collector.output.render import FORMATS, Format, render_records


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


@click.command(
    "parse",
    epilog="Exit codes: 0 parsed (problems such as a truncated table are printed as warnings, "
    "or listed under 'problems' in json); 1 a device refused the command or a file is not "
    "display ike offline-info output; 2 a file cannot be read, or a usage error; 130 "
    "interrupted.",
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
    if "-" in sources and sys.stdin.isatty():
        click.echo(
            "collect-ike-offline: reading display ike offline-info output from the terminal;"
            " end with Ctrl-D (or give a FILE)",
            err=True,
        )
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
