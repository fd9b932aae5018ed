"""Incidents end to end: a mock fleet over real SSH with a scripted hub outage, through the
real CLI (``collect`` and ``report``), to the incident and the paired tunnel ends in JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from handmade import OUTAGE, SPOKES
from helpers import invoke

from mock_devices.fleet import FleetThread

PASSWORD = "canary-Inc-pw-4410"


def utc_of(fleet: FleetThread, name: str, reason: str) -> list[datetime]:
    device = fleet.device(name)
    zone = device.spec.clock.tz()
    return [
        row.time.replace(tzinfo=zone).astimezone(UTC)
        for row in device.records()
        if row.reason == reason
    ]


@pytest.mark.timeout(120)
def test_scripted_hub_outage_is_one_incident_in_collect_and_report(
    mock_fleet: Any, tmp_path: Path
) -> None:
    fleet = mock_fleet(OUTAGE, password=PASSWORD)
    assert fleet.inventory_path is not None
    db = str(tmp_path / "history.sqlite3")
    common = ["--db", db]
    run = invoke(
        "collect",
        "--inventory",
        str(fleet.inventory_path),
        "--known-hosts",
        str(tmp_path / "known_hosts"),
        "--format",
        "json",
        *common,
        password=PASSWORD,
    )
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)["summary"]
    (incident,) = summary["incidents"]
    assert incident["kind"] == "hub"
    assert (incident["subject"], incident["subject_device"]) == ("192.0.2.1", "hub-1")
    assert incident["devices"] == ["hub-1", *SPOKES]
    assert incident["deletions"] == 12
    assert incident["reasons"] == [{"reason_code": "dpd_timeout", "count": 12}]
    # Spokes in Asia/Shanghai, the hub in UTC: start and end are the first and last record.
    times = [t for name in ["hub-1", *SPOKES] for t in utc_of(fleet, name, "dpd timeout")]
    first, last = min(times), max(times)
    assert incident["start"] == first.isoformat()
    assert incident["end"] == last.isoformat()
    assert len(incident["pairs"]) == 6
    assert {p["initiator"] for p in incident["pairs"]} == {None}
    # Outside the incident: spoke-1's operator removed its tunnel, the hub was asked.
    initiated = [p for p in summary["tunnel_pairs"] if p["initiator"] is not None]
    assert [(p["device"], p["other_device"], p["initiator"]) for p in initiated] == [
        ("spoke-1", "hub-1", "spoke-1")
    ]
    # 72 rekeys toward 192.0.2.99: routine, not flapping, not in the headline.
    assert summary["totals"]["routine"] == 72
    assert summary["totals"]["disruptive"] == 14
    assert [p["peer"] for p in summary["top_peers"]] == ["192.0.2.1", "10.1.0.1"]
    assert summary["top_peers"][0]["deletions"] == 7
    assert summary["top_peers"][0]["reasons"] == [
        "dpd_timeout",
        "config_modify_or_manual_offline",
    ]

    # The history report finds the same incident from the store (addresses from the inventory:
    # every mock device listens on 127.0.0.1, so the stored hostnames name no device).
    report = invoke(
        "report",
        "--since",
        "1d",
        "--format",
        "json",
        "--inventory",
        str(fleet.inventory_path),
        *common,
        password=PASSWORD,
    )
    assert report.code == 0, report.stderr
    stored = json.loads(report.stdout)["summary"]
    assert [(i["kind"], i["start"], i["end"], i["devices"]) for i in stored["incidents"]] == [
        ("hub", incident["start"], incident["end"], incident["devices"])
    ]
    assert stored["tunnel_pairs"] == summary["tunnel_pairs"]
    table = invoke(
        "report",
        "--since",
        "1d",
        "--inventory",
        str(fleet.inventory_path),
        *common,
        password=PASSWORD,
    )
    assert incident["summary"] in table.stdout
    assert "12 tunnels on 7 devices dropped within" in incident["summary"]
    assert "all toward hub-1 (192.0.2.1)" in incident["summary"]
    # Tighter thresholds: six spokes are neither a hub nor a peer incident at 7 ...
    tighter = invoke(
        "report",
        "--since",
        "1d",
        "--format",
        "json",
        "--hub-min",
        "7",
        "--spread-min",
        "7",
        *common,
        password=PASSWORD,
    )
    # ... and what is left is the hub's own six peers down at once: a device burst.
    (burst,) = json.loads(tighter.stdout)["summary"]["incidents"]
    assert (burst["kind"], burst["subject"], burst["deletions"]) == ("device_burst", "hub-1", 6)
    assert timedelta(0) < datetime.fromisoformat(incident["end"]) - first < timedelta(seconds=60)
