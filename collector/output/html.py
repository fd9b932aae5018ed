"""The fleet report as one self-contained HTML page with charts (``--format html``).

Everything the page needs is inside it: the report's data as JSON, the CSS, and the
vendored Chart.js and chartjs-chart-matrix builds (``collector/output/html_assets/``, see
``VERSIONS.md`` there), so it opens with no network: mailed, or dropped on a web server
by cron. The tables (headline, incidents, gaps, failing devices) are plain HTML and read
without JavaScript; the charts are drawn from the same JSON. After drawing, the page
writes the figures it shows into ``<body data-figures="...">`` (totals per category,
per reason, per peer, heat-map cells, incident markers) so a test compares them with the
JSON report. Pure: returns a string.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from collector.core.aggregate import FleetReport
from collector.core.records import ROUTINE_CATEGORIES, Category, reason_text
from collector.output.machine import report_dict
from collector.output.tables import stamp

ASSETS = ("chart.umd.min.js", "chartjs-chart-matrix.min.js")

CATEGORY_COLOURS: dict[str, str] = {
    Category.LIVENESS.value: "#d62728",
    Category.EXPIRY.value: "#ff7f0e",
    Category.ADMINISTRATIVE.value: "#9467bd",
    Category.PROTOCOL.value: "#8c564b",
    Category.HARDWARE.value: "#e377c2",
    Category.UNKNOWN.value: "#7f7f7f",
    Category.REKEY.value: "#9ecae1",
    Category.HA.value: "#c7e9c0",
}


@cache
def _asset(name: str) -> str:
    return (
        resources.files("collector.output")
        .joinpath("html_assets", name)
        .read_text(encoding="utf-8")
    )


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: list[str], rows: list[list[object]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _page_data(report: FleetReport) -> dict[str, Any]:
    document = report_dict(report)
    for device in document["devices"]:
        device.pop("records", None)  # the listing is not charted; keeps the page small
    document["colours"] = CATEGORY_COLOURS
    document["routine_categories"] = sorted(c.value for c in ROUTINE_CATEGORIES)
    return document


def render_html(report: FleetReport) -> str:
    """The report as one self-contained HTML page (UTF-8 text, ending with a newline)."""
    data = _page_data(report)
    summary = data["summary"]
    window = data["window"]
    if window["since"] is None and window["until"] is None:
        window_text = "what the devices hold now (one run)"
    else:
        since, until = report.window_since, report.window_until
        window_text = f"{stamp(since) if since else 'start'} .. {stamp(until) if until else 'now'}"
    incidents = (
        "".join(
            f'<p class="incident"><span class="kind">{_e(i["kind"])}</span> {_e(i["summary"])}</p>'
            for i in summary["incidents"]
        )
        or '<p class="empty">No incidents in this window.</p>'
    )
    pairs = _table(
        ["at (UTC)", "device", "reason", "other end", "its reason", "initiated by"],
        [
            [
                stamp(p.at),
                p.device,
                reason_text(p.reason),
                p.other,
                reason_text(p.other_reason),
                p.initiator or "-",
            ]
            for p in report.pairs[-50:]
        ],
        "No tunnel with both ends in the inventory.",
    )
    gaps = _table(
        ["device", "missing since", "missing until"],
        [[g.device, stamp(g.missing_since), stamp(g.missing_until)] for g in report.gaps],
        "No gaps: no buffer wrapped between runs.",
    )
    failing = _table(
        ["device", "hostname", "error", "message", "last read"],
        [
            [f.name, f.hostname, f.error_kind.value, f.error_message, stamp(f.last_success)]
            for f in report.failing
        ],
        "Every device was read.",
    )
    cards = "".join(
        f'<div class="card"><b data-card="{key}">-</b><span>{_e(text)}</span></div>'
        for key, text in (
            ("disruptive", "disruptive deletions" if not report.include_routine else "deletions"),
            ("routine", "routine (rekey, ha)"),
            ("devices", "devices"),
            ("failed", "devices not read"),
            ("incidents", "incidents"),
            ("gaps", "gaps"),
        )
    )
    return Template(_asset("report.html")).substitute(
        generated_at=_e(stamp(report.generated_at)),
        window=_e(window_text),
        interval=_e(report.trend_interval.value),
        css=_asset("report.css"),
        cards=cards,
        incidents=incidents,
        pairs=pairs,
        gaps=gaps,
        failing=failing,
        data=_script_json(data),
        scripts="".join(f"<script>{_asset(name)}</script>\n" for name in ASSETS),
        js=_asset("report.js"),
    )
