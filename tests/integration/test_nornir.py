"""``collector.nornir.ike_offline_info`` under real Nornir, against the mock fleet over SSH.

The inventory is a Nornir SimpleInventory written here the way a Nornir user writes one
(password in ``defaults.yaml``, one host overriding it with a wrong one, a NAPALM-style
platform, a netmiko extra that must not take effect), run with Nornir's threaded runner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.task import AggregatedResult

from collector.core import commands
from collector.core.records import ErrorKind, OfflineRecord, classify_reason
from collector.history.report import history_report
from collector.history.store import open_store
from collector.nornir import DeviceReadError, HistoryRun, IkeOfflineResult, ike_offline_info

PASSWORD = "nornir-task-pw"
FLEET = {
    "defaults": {
        "username": "admin",
        "timezone": "UTC",
        "records": {"generate": {"count": 30, "seed": 5}},
    },
    "devices": [
        {"name": "ar-1"},
        {"name": "fw-1", "layout": "firewall"},
        {"name": "ar-save", "faults": ["save_prompt"]},
        {"name": "ar-truncated", "faults": ["truncated_table"]},
        {"name": "ar-wrong-pw"},
    ],
}


def nornir_for(fleet: Any, directory: Path) -> Nornir:
    hosts: dict[str, Any] = {}
    for state in fleet.devices:
        hosts[state.name] = {
            "hostname": state.host,
            "port": state.port,
            "groups": ["vpn"],
            "data": {"site": "lab"},
        }
    hosts["fw-1"]["platform"] = "huawei_vrp"  # NAPALM's name for VRP
    hosts["ar-wrong-pw"]["password"] = "not-the-password"
    # A session log would write the whole conversation to a file: must be ignored.
    hosts["ar-1"]["connection_options"] = {
        "netmiko": {"extras": {"session_log": str(directory / "session.log")}}
    }
    (directory / "hosts.yaml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    (directory / "groups.yaml").write_text(
        yaml.safe_dump({"vpn": {"platform": "huawei", "data": {"timezone": "UTC"}}}),
        encoding="utf-8",
    )
    (directory / "defaults.yaml").write_text(
        yaml.safe_dump({"username": "admin", "password": PASSWORD}), encoding="utf-8"
    )
    return InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 5}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(directory / "hosts.yaml"),
                "group_file": str(directory / "groups.yaml"),
                "defaults_file": str(directory / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )


def task_result(results: AggregatedResult, name: str) -> IkeOfflineResult:
    result = results[name][0]
    assert isinstance(result, IkeOfflineResult)
    return result


def error_kind(result: IkeOfflineResult) -> ErrorKind:
    assert isinstance(result.exception, DeviceReadError)
    return result.exception.kind


def test_nornir_task_reads_records_and_reports_error_kinds(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD, journal=True)
    nr = nornir_for(fleet, tmp_path)
    known_hosts = tmp_path / "known_hosts"

    results = nr.run(task=ike_offline_info, known_hosts=known_hosts, timeout=15)

    assert set(results.failed_hosts) == {"ar-truncated", "ar-wrong-pw"}
    assert set(nr.data.failed_hosts) == {"ar-truncated", "ar-wrong-pw"}
    for name in ("ar-1", "fw-1", "ar-save"):
        result = task_result(results, name)
        assert not result.failed and result.exception is None, (name, result.result)
        records = result.result
        assert all(isinstance(record, OfflineRecord) for record in records)
        expected = sorted(
            (row.peer, classify_reason(row.reason)[0], row.version, row.time.replace(tzinfo=None))
            for row in fleet.device(name).records()
        )
        got = sorted((r.peer, r.reason_code, r.ike_version, r.offline_time) for r in records)
        assert got == expected
        assert all(record.reason_code != "unknown" for record in records)
        assert len(records) == 30
    assert {record.port for record in task_result(results, "fw-1").result} <= {500, 4500}

    wrong = task_result(results, "ar-wrong-pw")
    assert wrong.failed and error_kind(wrong) is ErrorKind.AUTH
    assert wrong.result.startswith("auth: ")
    assert PASSWORD not in wrong.result and "not-the-password" not in wrong.result
    truncated = task_result(results, "ar-truncated")
    assert truncated.failed and error_kind(truncated) is ErrorKind.INCOMPLETE_OUTPUT
    assert truncated.device_result is not None and truncated.device_result.records == ()

    # Read-only underneath: the save question was answered N, only allowed lines were sent,
    # each session was closed, and the netmiko session_log extra wrote nothing.
    save_answers = [e.text for e in fleet.device("ar-save").journal() if e.kind == "answer"]
    assert save_answers == [commands.ANSWER_NO]
    for state in fleet.devices:
        sent = [e.text for e in state.journal() if e.kind == "command"]
        assert set(sent) <= {commands.DISABLE_PAGING, commands.OFFLINE_INFO, commands.QUIT}
    assert not (tmp_path / "session.log").exists()
    ar1 = fleet.device("ar-1")
    assert f"[{ar1.host}]:{ar1.port} " in known_hosts.read_text(encoding="utf-8")
    assert all(not host.connections for host in nr.inventory.hosts.values())


def test_nornir_task_records_into_the_history(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD)
    nr = nornir_for(fleet, tmp_path).filter(filter_func=lambda h: h.name in {"ar-1", "fw-1"})
    options: dict[str, Any] = {"known_hosts": tmp_path / "known_hosts", "timeout": 15}
    with open_store(tmp_path / "history.sqlite3") as store:
        with HistoryRun(store, inventory="nornir") as first:
            results = nr.run(task=ike_offline_info, store=first, **options)
        assert not results.failed
        assert {name: o.new_records for name, o in first.outcomes.items()} == {
            "ar-1": 30,
            "fw-1": 30,
        }
        fleet.device("ar-1").add_deletions(4)
        second_started = datetime.now(UTC).replace(microsecond=0)
        with HistoryRun(store, inventory="nornir") as second:
            results = nr.run(task=ike_offline_info, store=second, **options)
        outcomes = {name: task_result(results, name).outcome for name in ("ar-1", "fw-1")}
        assert {name: o and o.new_records for name, o in outcomes.items()} == {
            "ar-1": 4,
            "fw-1": 0,
        }
        assert store.count_deletions() == 64
        report = history_report(store)
        assert report.totals.devices_ok == 2
        # The second run (the newest to read a device) is the last success.
        assert report.last_success is not None
        assert second_started <= report.last_success <= datetime.now(UTC)


def test_nornir_task_refuses_bad_settings_before_connecting(
    mock_fleet: Any, tmp_path: Path
) -> None:
    fleet = mock_fleet(FLEET, password=PASSWORD, journal=True)
    nr = nornir_for(fleet, tmp_path)
    results = nr.filter(name="ar-1").run(
        task=ike_offline_info, peer="10.0.0.1\nsave", known_hosts=tmp_path / "kh"
    )
    result = task_result(results, "ar-1")
    assert result.failed and isinstance(result.exception, commands.InvalidPeer)
    assert "\n" not in result.result and "Traceback" not in result.result

    nr.inventory.hosts["fw-1"].data["ike_command"] = "show ike sa"
    results = nr.filter(name="fw-1").run(task=ike_offline_info, known_hosts=tmp_path / "kh")
    result = task_result(results, "fw-1")
    assert result.failed and isinstance(result.exception, commands.InvalidDeviceSetting)
    assert result.result.startswith("fw-1: ike_command 'show ike sa' is not one of")
    assert fleet.device("ar-1").journal() == [] and fleet.device("fw-1").journal() == []
