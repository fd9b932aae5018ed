"""``collector.fleet.collect.run_collection`` from Python, without click, over real SSH."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import pytest

from collector.core.records import DeviceStatus
from collector.fleet.collect import run_collection
from collector.history.store import open_store
from collector.inventory.loading import load_inventory
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.transport import NetmikoTransport

PASSWORD = "run-collection-pw"
FLEET = {
    "defaults": {
        "username": "admin",
        "timezone": "UTC",
        "records": {"generate": {"count": 25, "seed": 9}},
    },
    "devices": [
        {"name": "ar-1"},
        {"name": "fw-1", "layout": "firewall"},
        {"name": "ar-bad", "faults": ["wrong_credentials"]},
    ],
}


def test_run_collection_stores_once_and_reports_new_deletions(
    mock_fleet: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD)
    inventory = load_inventory(fleet.inventory_path)
    transport = NetmikoTransport(KnownHosts(tmp_path / "known_hosts"))
    credentials = Credentials("admin", Secret(PASSWORD))
    caplog.set_level(logging.INFO)
    with open_store(str(tmp_path / "history.sqlite3")) as store:
        run = functools.partial(
            run_collection,
            inventory.devices,
            credentials,
            transport,
            store=store,
            inventory_path=inventory.path,
            workers=3,
            timeout=15,
        )
        first = run()
        fleet.device("ar-1").add_deletions(4)
        second = run()
        stored = store.count_deletions()

    names = [result.device.name for result in first.results]
    assert names == [device.name for device in inventory.devices]
    status = {result.device.name: result.status for result in first.results}
    assert status == {
        "ar-1": DeviceStatus.OK,
        "fw-1": DeviceStatus.OK,
        "ar-bad": DeviceStatus.FAILED,
    }
    assert first.report.totals.records == 50 and first.report.totals.new_records == 50
    assert sum(first.new_by_reason.values()) == 50
    new = {device.name: device.new_records for device in second.report.devices}
    assert new == {"ar-1": 4, "fw-1": 0, "ar-bad": 0}
    assert sum(second.new_by_reason.values()) == 4
    assert stored == 54
    # The operator is told once which keys were trusted on first use (both good devices;
    # the failing one is refused at login, after its key was seen).
    trusted = [r.getMessage() for r in caplog.records if "trusted the host keys" in r.getMessage()]
    assert trusted and "ar-1" in trusted[0] and str(tmp_path / "known_hosts") in trusted[0]


def test_run_collection_without_a_store_still_reports(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD)
    inventory = load_inventory(fleet.inventory_path)
    transport = NetmikoTransport(KnownHosts(tmp_path / "known_hosts"))
    collection = run_collection(
        [device for device in inventory.devices if device.name != "ar-bad"],
        Credentials("admin", Secret(PASSWORD)),
        transport,
        store=None,
        inventory_path=inventory.path,
        timeout=15,
    )
    assert collection.report.totals.records == 50
    assert collection.report.totals.devices_failed == 0
    assert collection.new_by_reason == {}
