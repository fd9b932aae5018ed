"""Render ``display ike offline-info`` output the way VRP devices print it.

This is the one place that knows the byte layout of the two table styles. The mock
devices print through it, and the parser's tests render random records through it,
so the mock and the parser fixtures cannot drift apart. It depends on nothing but
the standard library and knows nothing of the collector.

Layouts:

* ``router`` (AR routers, the command reference): ``peer``, ``offline-reason``,
  ``version``, ``offline-time`` with dates ``YYYY-MM-DD HH:MM:SS``. Columns are
  padded to a fixed width, but a value longer than its column pushes the rest of the
  row right, leaving a single space.
* ``firewall`` (USG): an extra ``port`` column after the peer, reasons written with
  hyphens, dates ``YYYY/MM/DD  HH:MM:SS`` (two spaces), separator lines of different
  lengths, and header words that do not line up with the values below them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Layout = Literal["router", "firewall"]
LAYOUTS: tuple[Layout, ...] = ("router", "firewall")


@dataclass(frozen=True, slots=True)
class Row:
    """One deletion as a device holds it."""

    peer: str
    reason: str
    """Reason words as the reference spells them (spaces); the firewall layout hyphenates."""
    version: int
    time: datetime
    port: int = 500


_ROUTER_RULE = "-" * 77 + "   "
_ROUTER_HEADER = "  peer              offline-reason              version     offline-time        "
_FIREWALL_TOP_RULE = "  " + "-" * 86
_FIREWALL_HEADER = "  Peer                Port   Offline-reason           Version   Offline-time"
_FIREWALL_MID_RULE = "  " + "-" * 79
_FIREWALL_END_RULE = "  " + "-" * 86


def firewall_reason(reason: str) -> str:
    """Firewalls print reason words joined by hyphens: ``dpd timeout`` -> ``dpd-timeout``."""
    return "-".join(reason.split())


def render_row(row: Row, layout: Layout) -> str:
    """One table row, without a line end."""
    if layout == "router":
        time = row.time.strftime("%Y-%m-%d %H:%M:%S")
        return f"  {row.peer:<17} {row.reason:<27} v{row.version:<10} {time} "
    time = row.time.strftime("%Y/%m/%d  %H:%M:%S")
    reason = firewall_reason(row.reason)
    return f"  {row.peer:<23} {row.port:<6} {reason:<30} v{row.version:<7} {time}"


def render_table(rows: Sequence[Row], layout: Layout, count: int | None = None) -> list[str]:
    """The lines of the command output, from ``Current info Num`` to the closing rule.

    Args:
        rows: The deletions, newest first, as the device lists them.
        layout: ``router`` or ``firewall``.
        count: The number printed as ``Current info Num``; defaults to ``len(rows)``.
            A truncated table is rendered by passing fewer rows than ``count``.
    """
    number = len(rows) if count is None else count
    return frame_table([render_row(row, layout) for row in rows], layout, number)


def frame_table(body: Sequence[str], layout: Layout, number: int) -> list[str]:
    """Table rows already rendered (:func:`render_row`), framed as the device prints them."""
    if layout == "router":
        return [
            "",
            f"  Current info Num :{number} ",
            "  Ike offline information:",
            _ROUTER_RULE,
            _ROUTER_HEADER,
            _ROUTER_RULE,
            *body,
            _ROUTER_RULE,
        ]
    return [
        "",
        f"  Current info Num :{number}",
        "  Ike offline information:",
        _FIREWALL_TOP_RULE,
        _FIREWALL_HEADER,
        _FIREWALL_MID_RULE,
        *body,
        _FIREWALL_END_RULE,
    ]


def render_output(rows: Iterable[Row], layout: Layout, newline: str = "\n") -> str:
    """The whole command output as one string, each line ended by ``newline``."""
    return "".join(line + newline for line in render_table(list(rows), layout))
