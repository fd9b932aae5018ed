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
* ``ne40e`` (NE40E / NetEngine 8000, VRP8): no ``display ike offline-info``; ``display ike
  offline history`` prints one section per slot, peers as ``ip:port``, a VPN instance
  column (``-`` for none), no IKE version, capitalised reasons (``DPD timeout``)::

      IKE Offline Information for Slot : 1
      Current Record Number : 2
      ------------------------------------------------------------------------------
      PEER                    VPN              TIME                   REASON
      ------------------------------------------------------------------------------
      192.168.1.2:500         -                2021-07-23 11:24:18    Receive phase1 delete info
      10.1.1.9:4500           vpna             2021-07-23 10:02:11    DPD timeout
      ------------------------------------------------------------------------------

  (Syntax from the NE40E/NE8000 IPsec configuration guide: ``display ike offline history
  [ peer-ip peer-ip [ vpn-instance-name vpn-instance-name ] [ port port ] ] [ slot slot-id ]``.
  No verbatim sample of this output turned up in the stored Huawei documents; the layout is
  the one the collector's parser is written to, each line two blanks in, columns padded.)

``LAYOUTS`` are the two ``display ike offline-info`` layouts (the parser's property tests
render through them); ``DEVICE_LAYOUTS`` adds ``ne40e``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Layout = Literal["router", "firewall", "ne40e"]
LAYOUTS: tuple[Layout, ...] = ("router", "firewall")
"""The ``display ike offline-info`` layouts."""
DEVICE_LAYOUTS: tuple[Layout, ...] = (*LAYOUTS, "ne40e")
"""Every layout a mock device may have."""


@dataclass(frozen=True, slots=True)
class Row:
    """One deletion as a device holds it."""

    peer: str
    reason: str
    """Reason words as the reference spells them (spaces); the firewall layout hyphenates."""
    version: int
    """IKE version (1 or 2); the ``ne40e`` layout does not print it."""
    time: datetime
    """Device-local wall time as printed (naive)."""
    port: int = 500
    slot: int | None = None
    """Slot of the buffer holding it (NE40E slot, firewall SPU slot); None on one-buffer devices."""
    cpu: int | None = None
    """CPU of the SPU holding it (multi-SPU firewalls); None elsewhere."""
    vpn: str | None = None
    """VPN instance (``ne40e`` layout); None prints ``-``."""
    utc: datetime | None = field(default=None, compare=False)
    """Ground truth for tests: the UTC instant ``time`` denotes in the device's zone (DST
    included). Set by the device; not printed and not part of equality."""


_ROUTER_RULE = "-" * 77 + "   "
_ROUTER_HEADER = "  peer              offline-reason              version     offline-time        "
_FIREWALL_TOP_RULE = "  " + "-" * 86
_FIREWALL_HEADER = "  Peer                Port   Offline-reason           Version   Offline-time"
_FIREWALL_MID_RULE = "  " + "-" * 79
_FIREWALL_END_RULE = "  " + "-" * 86
_NE40E_RULE = "  " + "-" * 78
_NE40E_HEADER = "  PEER                    VPN              TIME                   REASON"
HISTORY_TITLES = {"offline": "IKE Offline Information", "error": "IKE Error Information"}


def firewall_reason(reason: str) -> str:
    """Firewalls print reason words joined by hyphens: ``dpd timeout`` -> ``dpd-timeout``."""
    return "-".join(reason.split())


def render_row(row: Row, layout: Layout) -> str:
    """One table row, without a line end."""
    if layout == "router":
        time = row.time.strftime("%Y-%m-%d %H:%M:%S")
        return f"  {row.peer:<17} {row.reason:<27} v{row.version:<10} {time} "
    if layout == "ne40e":
        time = row.time.strftime("%Y-%m-%d %H:%M:%S")
        # ip:port; an IPv6 address in brackets ([2001:db8::1]:500), the only form in which
        # the port cannot be read as part of the address (no IPv6 sample was found).
        address = f"[{row.peer}]" if ":" in row.peer else row.peer
        peer = f"{address}:{row.port}"
        return f"  {peer:<23} {row.vpn or '-':<16} {time:<22} {row.reason}"
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
    if layout == "ne40e":
        return render_history(group_by_slot(rows))
    number = len(rows) if count is None else count
    return frame_table([render_row(row, layout) for row in rows], layout, number)


def group_by_slot(rows: Iterable[Row]) -> list[tuple[int, list[Row]]]:
    """Rows per slot, slots ascending, each slot's rows in the given order (no slot: 1)."""
    slots: dict[int, list[Row]] = {}
    for row in rows:
        slots.setdefault(1 if row.slot is None else row.slot, []).append(row)
    return sorted(slots.items())


def frame_history_section(
    body: Sequence[str], slot: int, number: int, kind: str = "offline"
) -> list[str]:
    """One slot's section of ``display ike offline history`` (``kind="error"``: ``display ike
    error history``), rows already rendered in the ``ne40e`` layout."""
    return [
        f"  {HISTORY_TITLES[kind]} for Slot : {slot}",
        f"  Current Record Number : {number}",
        _NE40E_RULE,
        _NE40E_HEADER,
        _NE40E_RULE,
        *body,
        _NE40E_RULE,
    ]


def render_history(
    sections: Sequence[tuple[int, Sequence[Row]]], kind: str = "offline"
) -> list[str]:
    """Every slot's section, a blank line between sections.

    Example::

        >>> lines = render_history([(3, [])])
        >>> lines[:2]
        ['  IKE Offline Information for Slot : 3', '  Current Record Number : 0']
    """
    lines: list[str] = []
    for slot, rows in sections:
        if lines:
            lines.append("")
        body = [render_row(row, "ne40e") for row in rows]
        lines += frame_history_section(body, slot, len(body), kind)
    return lines


def frame_table(body: Sequence[str], layout: Layout, number: int) -> list[str]:
    """Table rows already rendered (:func:`render_row`), framed as the device prints them
    (``display ike offline-info`` layouts; ``ne40e`` sections: :func:`frame_history_section`)."""
    if layout == "ne40e":
        return frame_history_section(body, 1, number)
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
