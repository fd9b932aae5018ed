"""Benchmark: collector.core.parse against compiled TextFSM templates on the same output.

Builds a router-layout ``display ike offline-info`` output of ``--rows`` rows (three
in ten with reasons longer than their column, i.e. the single-space layout) through
``mock_devices.tables``, checks that every parser reads the same rows from it, then
times them in the same run with :mod:`timeit` (process CPU time): ``--repeat``
rounds, each running every parser ``--number`` times in turn (interleaved, so a busy
machine slows all of them alike), keeping each parser's best round.

* ``collector.core.parse``: the full job: typed ``OfflineRecord`` objects with reason
  codes and categories, ``datetime`` offline times, address validation, the
  ``Current info Num`` cross-check.
* TextFSM, compiled once outside the loop, ``Reset()`` + ``ParseText()`` per parse.
  It returns lists of strings only (no dates, no codes, no validation), so the
  comparison favours it. Two templates: the one a person writes top to bottom of the
  output (the target's baseline), and a tuned one (rows in their own state, the row
  rule first) to show how much of TextFSM's time is template order.

Run: ``.venv/bin/python -m bench.bench_parser [--rows 200 --repeat 15 --number 30]``.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import textfsm
from tabulate import tabulate

from collector.core.parse import parse
from mock_devices.tables import Row, render_output

# The TextFSM template a netmiko user would write for this output, top to bottom. The
# reason is a lazy ".*?" between the address and the version, so it also reads the
# single-space layout (a reason longer than its column). There is no ntc-templates
# template for this command.
TEXTFSM_TEMPLATE = r"""Value Filldown COUNT (\d+)
Value Required PEER (\S+)
Value REASON (\S.*?)
Value VERSION (v[12])
Value TIME (\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})

Start
  ^\s*Current\s+info\s+Num\s*:\s*${COUNT}
  ^\s*Ike\s+offline\s+information
  ^\s*-+\s*$$
  ^\s*peer\s+offline-reason
  ^\s*${PEER}\s+${REASON}\s+${VERSION}\s+${TIME}\s*$$ -> Record
  ^\s*$$
"""

# The same, tuned for speed: once past the header, the row rule is the only one tried.
TEXTFSM_TEMPLATE_TUNED = r"""Value Filldown COUNT (\d+)
Value Required PEER (\S+)
Value REASON (\S.*?)
Value VERSION (v[12])
Value TIME (\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})

Start
  ^\s*Current\s+info\s+Num\s*:\s*${COUNT}
  ^\s*peer\s+offline-reason -> Rows

Rows
  ^\s*${PEER}\s+${REASON}\s+${VERSION}\s+${TIME}\s*$$ -> Record
"""

_REASONS = (
    "dpd timeout",
    "phase2 sa replace",
    "peer request",
    "phase1 sa replace",
    # Longer than the 27-character reason column: one space before the version.
    "ikev1 phase1-phase2 sa dependent offline",
    "heartbeat timeout",
    "config modify or manual offline",
    "hard expiry triggered by port mismatch",
    "exchange timeout",
    "kick old sa with same flow",
)


def build_output(rows: int) -> str:
    """A router-layout output of ``rows`` rows, newest first, distinct peers."""
    start = datetime(2024, 3, 5, 23, 59, 59)
    table = [
        Row(
            peer=f"10.{index // 250 % 250}.{index % 250}.{index % 7 + 1}",
            reason=_REASONS[index % len(_REASONS)],
            version=1 + index % 2,
            time=start - timedelta(minutes=7 * index),
        )
        for index in range(rows)
    ]
    return "<HUAWEI> display ike offline-info\n" + render_output(table, "router") + "<HUAWEI>"


def check_same_rows(text: str, fsms: Sequence[textfsm.TextFSM]) -> int:
    """All parsers read the same rows; returns how many rows have the single-space layout."""
    result = parse(text)
    if not result.complete:
        raise SystemExit(f"collector.core.parse found problems: {result.problems}")
    ours = [
        (r.peer, r.reason, f"v{r.ike_version}", r.offline_time.strftime("%Y-%m-%d %H:%M:%S"))
        for r in result.records
    ]
    for fsm in fsms:
        fsm.Reset()
        theirs = [tuple(row[-4:]) for row in fsm.ParseText(text)]
        if ours != theirs:
            raise SystemExit("the parsers disagree on the benchmark output")
    return sum(1 for line in text.splitlines() if " offline v" in line or " mismatch v" in line)


def interleaved_best(
    functions: dict[str, Callable[[], object]], repeat: int, number: int
) -> dict[str, float]:
    """CPU seconds per call of each function: best of ``repeat`` interleaved rounds."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeat):
        for name, function in functions.items():
            # CPU time of this process: on a shared machine, wall time also counts the
            # slices other processes take.
            timer = timeit.Timer(function, timer=time.process_time)
            best[name] = min(best[name], timer.timeit(number) / number)
    return best


def textfsm_parser(template: str) -> tuple[textfsm.TextFSM, Callable[[str], object]]:
    """A template compiled once, and the per-output call (reset, parse)."""
    fsm = textfsm.TextFSM(io.StringIO(template))

    def run(text: str) -> object:
        fsm.Reset()
        return fsm.ParseText(text)

    return fsm, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_parser",
        description="Time collector.core.parse against compiled TextFSM on one output.",
    )
    parser.add_argument("--rows", type=int, default=200, help="table rows (default 200)")
    parser.add_argument(
        "--repeat", type=int, default=15, help="interleaved rounds, best kept (default 15)"
    )
    parser.add_argument(
        "--number", type=int, default=30, help="parses per parser per round (default 30)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1 or args.number < 1:
        parser.error("--rows, --repeat and --number must be positive")

    text = build_output(args.rows)
    natural_fsm, natural = textfsm_parser(TEXTFSM_TEMPLATE)
    tuned_fsm, tuned = textfsm_parser(TEXTFSM_TEMPLATE_TUNED)
    single_space = check_same_rows(text, [natural_fsm, tuned_fsm])

    baseline = "textfsm, template in output order"
    timings = interleaved_best(
        {
            baseline: lambda: natural(text),
            "textfsm, tuned template": lambda: tuned(text),
            "collector.core.parse (typed records)": lambda: parse(text),
        },
        args.repeat,
        args.number,
    )
    ours = timings["collector.core.parse (typed records)"]
    table = [
        (
            name,
            f"{seconds * 1e6:,.0f}",
            f"{args.rows / seconds:,.0f}",
            f"{seconds / ours:.1f}x",
        )
        for name, seconds in timings.items()
    ]
    print(
        f"{args.rows} rows ({single_space} single-space rows), {len(text):,} bytes;"
        f" best of {args.repeat} interleaved rounds x {args.number} parses;"
        f" python {platform.python_version()}, textfsm {textfsm.__version__},"
        f" {os.cpu_count()} cpus"
    )
    print(
        tabulate(
            table,
            headers=["parser", "CPU us per parse", "rows/s", "time / collector.core.parse"],
            colalign=("left", "right", "right", "right"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
