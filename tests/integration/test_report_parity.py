"""Parity: the same results through a single run's aggregation (``collect``) and through the
history (``report``) give the same numbers and the same texts.

``collect`` builds its report with :func:`collector.core.aggregate.aggregate`, ``report``
with :func:`collector.history.report.history_report` from the stored rows. Both fold reason
texts into codes through :func:`collector.core.aggregate.reason_counts`, one tie rule: the
example printed for a code is its most frequent text as the device printed it, on a tie the
first alphabetically (the history cannot know which text a device printed first).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.core.aggregate import FleetReport, aggregate
from collector.core.records import Device, DeviceResult, DeviceStatus, OfflineRecord
from collector.history.report import history_report
from collector.history.store import open_store
from collector.output.machine import summary_dict
from collector.output.render import render_report

BASE = datetime(2026, 3, 1, 8, 0)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def device(name: str, site: str) -> Device:
    data = MappingProxyType({"site": site, "timezone": "UTC"})
    return Device(name, f"{name}.example.net", groups=("core",), data=data)


def record(minute: int, peer: str, reason: str) -> OfflineRecord:
    return OfflineRecord.build(peer, reason, 2, BASE + timedelta(minutes=minute))


def results() -> list[DeviceResult]:
    # Each code has two spellings with equal counts, the one printed first sorting last:
    # "dpd-timeout" before "dpd timeout" (a space sorts before "-"); two unknown reasons.
    r1 = (
        record(50, "10.0.0.1", "dpd-timeout"),
        record(40, "10.0.0.1", "dpd timeout"),
        record(30, "10.0.0.2", "tunnel fell over"),
        record(20, "10.0.0.2", "kick old sa"),
        record(10, "10.0.0.3", "phase1 hard expire"),
    )
    r2 = (
        record(45, "10.0.0.1", "dpd-timeout"),
        record(35, "10.0.0.1", "dpd timeout"),
        record(25, "10.0.0.4", "Receive backup delete info"),
    )
    return [
        DeviceResult(device("r1", "bj"), DeviceStatus.OK, r1),
        DeviceResult(device("r2", "sh"), DeviceStatus.OK, r2),
    ]


def both(tmp_path: Path) -> tuple[FleetReport, FleetReport]:
    single = aggregate(results(), generated_at=NOW, group_by="site")
    with contextlib.closing(open_store(tmp_path / "history.db")) as store:
        run = store.start_run("inventory/hosts.yaml", None)
        for result in results():
            store.record_device(run, result)
        store.finish_run(run)
        history = history_report(store, generated_at=NOW, group_by="site")
    return single, history


def facts(summary: dict[str, Any]) -> dict[str, Any]:
    totals = summary["totals"]
    return {
        "by_reason": summary["by_reason"],
        "by_category": summary["by_category"],
        "by_group": summary["by_group"],
        "top_peers": summary["top_peers"],
        "unknown_reasons": summary["unknown_reasons"],
        "totals": {
            key: totals[key]
            for key in (
                *("devices", "devices_ok", "devices_failed", "records", "peers"),
                *("unknown_reasons", "routine", "disruptive"),
            )
        },
    }


def test_the_same_results_give_the_same_numbers_and_texts(tmp_path: Path) -> None:
    single, history = both(tmp_path)

    assert facts(summary_dict(single)) == facts(summary_dict(history))
    examples = {row.reason_code: row.example for row in single.by_reason}
    assert examples["dpd_timeout"] == "dpd timeout"  # the tie: first alphabetically
    assert examples["unknown"] == "kick old sa"
    assert [(row.reason_code, row.count, row.devices) for row in history.by_reason][:1] == [
        ("dpd_timeout", 4, 2)
    ]
    assert [(peer.peer, peer.deletions, peer.devices) for peer in history.top_peers][:1] == [
        ("10.0.0.1", 4, 2)
    ]


SECTIONS = (
    "Deletions by reason",
    "Deletions by category",
    "Deletions by site",
    "Flapping peers (at least 2 disruptive deletions)",
    "Deletions per hour (UTC)",
    "Unknown reasons (verbatim)",
)


def sections(report: FleetReport) -> dict[str, str]:
    """The table report's sections by title (the history adds new-by-reason and run lines)."""
    blocks = render_report(report, "table").split("\n\n")
    return {block.splitlines()[0]: block for block in blocks if block.strip()}


def test_the_table_report_prints_the_same_sections(tmp_path: Path) -> None:
    single, history = both(tmp_path)
    printed, stored = sections(single), sections(history)

    for title in SECTIONS:
        assert printed[title] == stored[title], title
    by_reason = stored["Deletions by reason"].splitlines()
    assert any(
        line.startswith("dpd timeout") and line.endswith("dpd timeout") for line in by_reason
    )
