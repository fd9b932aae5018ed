"""The HTML report in a real headless Chromium: no console errors, no network, and the
figures the page draws equal the JSON report's; from a hand-made run and end to end from a
mock fleet with a scripted outage (``collect`` and ``report --format html``).

Screenshots are kept in the test's tmp dir; ``IKE_UPDATE_SCREENSHOT=1`` also copies the
fleet one to ``docs/html-report.png`` (the README's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from chromium import open_page, screenshot
from handmade import OUTAGE
from helpers import ROOT, collect_argv, invoke

from collector.core.aggregate import aggregate
from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind, OfflineRecord
from collector.output.render import render_report

PASSWORD = "canary-Html-pw-6120"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"


def expected_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """What the page must show, from the JSON report alone."""
    totals = summary["totals"]
    figures: dict[str, Any] = {
        "trend:total": totals["records"],
        "heat:total": totals["records"],
        "incidents:markers": len(summary["incidents"]),
        "card:disruptive": totals["records"]
        if summary["include_routine"]
        else totals["disruptive"],
        "card:routine": totals["routine"],
        "card:devices": totals["devices"],
        "card:failed": totals["devices_failed"],
        "card:incidents": len(summary["incidents"]),
        "card:gaps": totals["gaps"],
    }
    figures.update({f"trend:{c['category']}": c["count"] for c in summary["by_category"]})
    figures.update({f"reason:{r['reason_code']}": r["count"] for r in summary["by_reason"]})
    figures.update({f"peer:{p['peer']}": p["deletions"] for p in summary["top_peers"]})
    figures["heat:devices"] = len({d["device"] for d in summary["series"]["by_device"]})
    return figures


def check_page(html_path: Path, summary: dict[str, Any]) -> None:
    page = open_page(html_path)
    assert page.errors == []
    assert page.rendered
    assert page.figures == expected_figures(summary)
    for incident in summary["incidents"]:
        assert incident["summary"] in page.dom.replace("&amp;", "&")
    assert "<script src" not in html_path.read_text(encoding="utf-8")


def test_the_probe_sees_errors_and_network(tmp_path: Path) -> None:
    """The checks above can fail: a page that logs an error and fetches a script is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head></head><body>"
        '<script src="http://127.0.0.1:9/chart.js"></script>'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    errors = open_page(page).errors
    assert "error: boom" in errors
    assert any("undefinedFunction" in e for e in errors)
    assert "csp: script-src-elem http://127.0.0.1:9/chart.js" in errors


def hub_run() -> list[DeviceResult]:
    local = datetime(2026, 11, 30, 11, 12, 0)  # Asia/Shanghai: 03:12 UTC
    zone = MappingProxyType({"timezone": "Asia/Shanghai", "site": "par1"})
    results = [
        DeviceResult(
            Device(f"spoke-{n}", f"10.1.0.{n}", data=zone),
            DeviceStatus.OK,
            (
                OfflineRecord.build("192.0.2.1", "dpd timeout", 2, local + timedelta(seconds=n)),
                OfflineRecord.build(
                    "192.0.2.9", "phase2 sa replace", 2, local - timedelta(hours=n)
                ),
                OfflineRecord.build("198.51.100.7", "peer request", 2, local - timedelta(hours=3)),
            ),
        )
        for n in range(1, 8)
    ]
    results.append(
        DeviceResult.failure(Device("fw-9", "10.9.9.9"), ErrorKind.AUTH, "authentication failed")
    )
    return results


def test_run_report_in_chromium(tmp_path: Path) -> None:
    report = aggregate(hub_run(), generated_at=datetime(2026, 11, 30, 4, tzinfo=UTC), series=True)
    page = tmp_path / "run.html"
    page.write_text(render_report(report, "html"), encoding="utf-8")
    summary = json.loads(render_report(report, "json"))["summary"]
    # The hub outage, and 198.51.100.7 asking all seven to delete three hours before.
    assert [i["subject"] for i in summary["incidents"]] == ["198.51.100.7", "192.0.2.1"]
    check_page(page, summary)
    shot = screenshot(page, tmp_path / "run.png", width=390, height=1800)  # a phone
    assert shot.stat().st_size > 10_000


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    evil = "</script><img src=x onerror=alert(1)>"
    result = DeviceResult(
        Device("r1", "10.0.0.1"),
        DeviceStatus.OK,
        (OfflineRecord.build("10.0.0.2", evil, 2, datetime(2026, 11, 30, 1)),),
    )
    failure = DeviceResult.failure(Device("r2", "10.0.0.3"), ErrorKind.PROTOCOL, evil)
    report = aggregate(
        [result, failure], generated_at=datetime(2026, 11, 30, tzinfo=UTC), series=True
    )
    page = tmp_path / "evil.html"
    text = render_report(report, "html")
    assert evil not in text
    page.write_text(text, encoding="utf-8")
    check_page(page, json.loads(render_report(report, "json"))["summary"])


@pytest.mark.timeout(180)
def test_mock_fleet_outage_to_html(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet(OUTAGE, password=PASSWORD)
    assert fleet.inventory_path is not None
    db = str(tmp_path / "history.sqlite3")
    html_path, json_path = tmp_path / "collect.html", tmp_path / "collect.json"
    collect = collect_argv(fleet.inventory_path, tmp_path, "--db", db)
    assert (
        invoke(*collect, "--format", "html", "--output", str(html_path), password=PASSWORD).code
        == 0
    )
    # Again, for the JSON (nothing new is stored; the devices hold the same records).
    assert (
        invoke(*collect, "--format", "json", "--output", str(json_path), password=PASSWORD).code
        == 0
    )
    summary = json.loads(json_path.read_text(encoding="utf-8"))["summary"]
    (incident,) = summary["incidents"]
    assert incident["kind"] == "hub" and incident["subject_device"] == "hub-1"
    # collect's JSON carries no series (only html asks for them): the heat map's rows are
    # the devices with deletions; every other figure is compared with the JSON as it is.
    summary["series"] = {
        "by_device": [
            {"device": d["name"]}
            for d in json.loads(json_path.read_text())["devices"]
            if d["record_count"]
        ]
    }
    check_page(html_path, summary)

    report_html, report_json = tmp_path / "report.html", tmp_path / "report.json"
    common = ["report", "--db", db, "--since", "1d", "--inventory", str(fleet.inventory_path)]
    assert invoke(*common, "--format", "html", "-o", str(report_html), password=PASSWORD).code == 0
    assert invoke(*common, "--format", "json", "-o", str(report_json), password=PASSWORD).code == 0
    stored = json.loads(report_json.read_text(encoding="utf-8"))["summary"]
    assert [i["summary"] for i in stored["incidents"]] == [incident["summary"]]
    series = json.loads(
        report_html.read_text(encoding="utf-8")
        .split('<script type="application/json" id="report-data">')[1]
        .split("</script>")[0]
    )["summary"]["series"]
    stored["series"] = series
    assert sum(c["count"] for c in series["by_device"]) == stored["totals"]["records"]
    per_category: Counter[str] = Counter()
    for cell in series["by_category"]:
        per_category[cell["category"]] += cell["count"]
    assert dict(per_category) == {c["category"]: c["count"] for c in stored["by_category"]}
    check_page(report_html, stored)
    # What a person reads: times to the second, with their zone, as the text tables show
    # them; the ISO forms (microseconds, "T") stay in the page's data for the charts.
    for page, window in (
        (html_path, r"what the devices hold now \(one run\)"),
        (report_html, STAMP + " .. now"),
    ):
        visible = page.read_text(encoding="utf-8").split('<script type="application/json"')[0]
        assert re.search(f"Generated {STAMP} · window {window} · times in UTC", visible), visible
        assert not re.search(r"\d\d:\d\d:\d\d\.\d|\dT\d\d:", visible)
    assert stored["tunnel_pairs"]
    for pair in stored["tunnel_pairs"]:
        at = datetime.fromisoformat(pair["at"]).strftime("%Y-%m-%d %H:%M:%SZ")
        assert f"<td>{at}</td>" in report_html.read_text(encoding="utf-8")
    shot = screenshot(report_html, tmp_path / "report.png")
    if os.environ.get("IKE_UPDATE_SCREENSHOT") == "1":
        shutil.copy(shot, ROOT / "docs" / "html-report.png")
