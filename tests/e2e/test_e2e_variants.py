"""Device variants end to end (issue 15): the mock fleet of ``variants.yaml`` over real SSH,
through the real ``collect`` and ``report``, to what the operator gets.

Each variant Huawei documents (HA timestamp lines in three forms, zones from ``display
clock`` with and without the time-line offset and with DST, NE40E offline history with
slots and VPN instances, a multi-SPU firewall, the reasons beyond the reference's 17,
row-like noise outside the table) is read by netmiko and by NAPALM, and checked where the
user sees it: the records in the JSON report, the UTC instants in the history, the
per-buffer rows, the exit code, stderr.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import Run, invoke

from collector.core.records import EXTRA_REASONS, normalize_reason
from collector.ssh.factory import TRANSPORTS
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread

CLOCK_DEVICES = [
    "ar-clock-offset",
    "ar-clock-zone-line",
    "ar-clock-add-minus",
    "ar-clock-dst",
    "ar-clock-dst-no-offset",
]
STAMP_DEVICES = ["fw-stamp-iso-offset", "fw-stamp-iso-ms", "fw-stamp-time-first"]


def collect(fleet: FleetThread, directory: Path, *args: str, transport: str = "netmiko") -> Run:
    return helpers.collect(
        fleet.inventory_path,
        directory,
        *("--lock-file", str(directory / "run.lock"), "--transport", transport),
        *("--clock-from-device", "--records", "--format", "json", *args),
        password=fleet.password,
        timeout=15,
        env={"MOCK_PASSWORD": fleet.password},
    )


def printed_key(row: Any, layout: str) -> tuple[Any, ...]:
    """A mock row as the collector must report it (reason folded: firewalls hyphenate)."""
    slot = None if row.slot is None else str(row.slot)
    cpu = None if row.cpu is None else str(row.cpu)
    version = None if layout == "ne40e" else row.version
    port = None if layout == "router" else row.port
    return (
        row.peer,
        port,
        normalize_reason(row.reason),
        version,
        row.time.isoformat(),
        slot,
        cpu,
        row.vpn,
    )


def reported_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["peer"],
        record["port"],
        normalize_reason(record["reason"]),
        record["ike_version"],
        record["offline_time"],
        record["slot"],
        record["cpu"],
        record["vpn_instance"],
    )


def stored_utc(db: Path, name: str) -> Counter[tuple[str, str, datetime]]:
    """(peer, reason folded, UTC instant) of every deletion the history holds for a device."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT p.peer, r.reason, d.t_utc FROM deletions d "
            "JOIN devices v ON v.id = d.device_id JOIN peers p ON p.id = d.peer_id "
            "JOIN reasons r ON r.id = d.reason_id WHERE v.name = ?",
            (name,),
        ).fetchall()
    return Counter(
        (peer, normalize_reason(reason), datetime.fromtimestamp(utc, UTC))
        for peer, reason, utc in rows
    )


def truth_utc(state: DeviceState) -> Counter[tuple[str, str, datetime]]:
    return Counter(
        (row.peer, normalize_reason(row.reason), row.utc)
        for row in state.records()
        if row.utc is not None
    )


def zone_sources(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT v.name, r.zone_source FROM device_runs r JOIN devices v ON v.id = r.device_id"
        ).fetchall()
    return {str(name): str(source) for name, source in rows}


@pytest.fixture(params=TRANSPORTS)
def first_run(
    request: pytest.FixtureRequest, variants_fleet: FleetThread, tmp_path: Path
) -> tuple[FleetThread, Run]:
    return variants_fleet, collect(variants_fleet, tmp_path, transport=request.param)


def test_every_variant_is_read_whole_and_exits_0(first_run: tuple[FleetThread, Run]) -> None:
    fleet, run = first_run
    assert run.code == 0, run.stderr
    document = run.json()
    assert {device["status"] for device in document["devices"]} == {"ok"}
    for device in document["devices"]:
        state = fleet.device(device["name"])
        layout = state.layout
        expected = Counter(printed_key(row, layout) for row in state.records())
        assert Counter(map(reported_key, device["records"])) == expected, device["name"]
        assert device["record_count"] == len(state.records())


@pytest.mark.parametrize("name", STAMP_DEVICES)
def test_ha_firewall_with_each_timestamp_form_is_ok_with_all_records(
    variants_fleet: FleetThread, tmp_path: Path, name: str
) -> None:
    run = collect(variants_fleet, tmp_path, "--host", name)
    assert run.code == 0, run.stderr
    device = run.device(name)
    assert device["status"] == "ok" and device["error"] is None
    assert device["record_count"] == len(variants_fleet.device(name).records()) == 40


def test_stored_utc_instants_match_the_devices_truth_for_every_zone_source(
    first_run: tuple[FleetThread, Run],
) -> None:
    fleet, run = first_run
    sources = zone_sources(run.history())
    for name in ("ar-utc", "fw-stamp-time-first", *CLOCK_DEVICES):
        state = fleet.device(name)
        truth = truth_utc(state)
        stored = stored_utc(run.history(), name)
        if name.startswith("ar-clock-dst"):
            # display clock gives today's offset (DST included); records from before this
            # season's DST change are an hour off by nature: only compare today's season.
            offset = state.now_aware().utcoffset()
            truth = Counter(
                {
                    key: n
                    for key, n in truth.items()
                    if key[2].astimezone(state.spec.clock.tz()).utcoffset() == offset
                }
            )
            stored = Counter({key: n for key, n in stored.items() if key in truth})
            assert sum(truth.values()) >= 10, f"{name}: too few records in today's DST season"
        assert stored == truth, name
    assert {sources[name] for name in CLOCK_DEVICES} == {"device-clock"}
    assert sources["ar-utc"] == "inventory"


def test_zone_offset_is_not_reported_as_clock_skew(first_run: tuple[FleetThread, Run]) -> None:
    _, run = first_run
    assert "device clock is" not in run.stderr


def test_ne40e_slots_and_vpn_instances_each_buffer_stored_apart(
    first_run: tuple[FleetThread, Run],
) -> None:
    fleet, run = first_run
    state = fleet.device("ne40e-slots")
    device = run.device("ne40e-slots")
    slots = Counter(record["slot"] for record in device["records"])
    assert slots == {slot: len(state.records(slot)) for slot in state.buffer_labels}
    assert set(slots) == {"1", "3"}
    assert {record["ike_version"] for record in device["records"]} == {None}
    assert {record["vpn_instance"] for record in device["records"]} - {None}
    # The 3 newest rows of slot 1 are also in slot 3: identical rows of two buffers are
    # two deletions.
    copied = Counter(printed_key(row, "ne40e")[:5] for row in state.records())
    assert max(copied.values()) == 2, "the scenario prints some rows in both slots"
    assert sum(stored_utc(run.history(), "ne40e-slots").values()) == len(state.records())


def test_ne40e_found_out_once_then_asked_the_history_command_directly(
    variants_fleet: FleetThread, tmp_path: Path
) -> None:
    state = variants_fleet.device("ne40e-slots")
    first = collect(variants_fleet, tmp_path, "--host", "ne40e-slots")
    assert first.code == 0, first.stderr
    sessions = {entry.session for entry in state.journal()}
    commands_first = [e.text for e in state.journal() if e.kind == "command"]
    assert commands_first.count("display ike offline-info") == 1
    assert "display ike offline history" in commands_first
    second = collect(variants_fleet, tmp_path, "--host", "ne40e-slots")
    assert second.code == 0, second.stderr
    later = [e.text for e in state.journal() if e.kind == "command" and e.session not in sessions]
    assert "display ike offline history" in later
    assert "display ike offline-info" not in later
    # Nothing new: the second run stores no row again.
    assert sum(stored_utc(second.history(), "ne40e-slots").values()) == len(state.records())
    assert second.device("ne40e-slots")["new_records"] == 0


def test_multi_spu_firewall_reads_every_spu_buffer(first_run: tuple[FleetThread, Run]) -> None:
    fleet, run = first_run
    device = run.device("fw-spu")
    spus = Counter((record["slot"], record["cpu"]) for record in device["records"])
    assert spus == {("1", "0"): 25, ("1", "1"): 25, ("3", "0"): 25}
    sent = [e.text for e in fleet.device("fw-spu").journal() if e.kind == "command"]
    for spu in ("slot 1 cpu 0", "slot 1 cpu 1", "slot 3 cpu 0"):
        assert f"display ike offline-info {spu}" in sent


def test_extra_reasons_have_codes_in_the_report(first_run: tuple[FleetThread, Run]) -> None:
    _, run = first_run
    summary = run.json()["summary"]
    codes = {item["reason_code"] for item in summary["by_reason"]}
    printed = {e.code for e in EXTRA_REASONS if not e.code.startswith("peer_phase")}
    assert printed <= codes
    for name in ("ar-extra-reasons", "fw-extra-reasons"):
        assert {r["reason_code"] for r in run.device(name)["records"]} <= printed
        assert "unknown" not in {r["reason_code"] for r in run.device(name)["records"]}


def test_table_report_says_utc_and_local_times_carry_the_offset(
    variants_fleet: FleetThread, tmp_path: Path
) -> None:
    table = collect(variants_fleet, tmp_path, "--host", "ar-clock-offset", "--format", "table")
    assert table.code == 0, table.stderr
    assert "Times: UTC" in table.stdout
    state = variants_fleet.device("ar-clock-offset")
    newest_utc = max(state.records_utc())
    assert newest_utc.strftime("%Y-%m-%d %H:%M:%SZ") in table.stdout
    local = collect(
        variants_fleet, tmp_path, "--host", "ar-clock-offset", "--format", "json", "--local-times"
    )
    device = local.device("ar-clock-offset")
    assert local.json()["times"] == "local"
    assert device["newest_deletion"] == newest_utc.astimezone(state.spec.clock.tz()).isoformat()
    assert device["newest_deletion"].endswith("-03:00")


def test_history_report_is_utc_and_local_on_request(first_run: tuple[FleetThread, Run]) -> None:
    fleet, run = first_run
    args = ["report", "--db", str(run.history()), "--since", "3650d", "--format", "json"]
    utc = invoke(*args).json()
    local = invoke(*args, "--local-times").json()
    assert (utc["times"], local["times"]) == ("utc", "local")
    state = fleet.device("ar-clock-offset")
    newest = max(state.records_utc())
    by_name = {d["name"]: d for d in utc["devices"]}
    assert by_name["ar-clock-offset"]["newest_deletion"] == newest.isoformat()
    local_by_name = {d["name"]: d for d in local["devices"]}
    shown = local_by_name["ar-clock-offset"]["newest_deletion"]
    assert shown == newest.astimezone(state.spec.clock.tz()).isoformat()


def test_a_remembered_history_command_refused_now_falls_back_to_offline_info(
    variants_fleet: FleetThread, tmp_path: Path
) -> None:
    # The history says ar-utc answered 'display ike offline history' (as if the address
    # once held an NE40E); the router there now refuses it: the run falls back to
    # offline-info in the same session and reads every record.
    first = collect(variants_fleet, tmp_path, "--host", "ar-utc")
    assert first.code == 0, first.stderr
    with sqlite3.connect(first.history()) as conn:
        conn.execute(
            "UPDATE devices SET ike_command = 'display ike offline history' WHERE name = 'ar-utc'"
        )
    state = variants_fleet.device("ar-utc")
    sessions = {entry.session for entry in state.journal()}
    again = collect(variants_fleet, tmp_path, "--host", "ar-utc")
    assert again.code == 0, again.stderr
    assert again.device("ar-utc")["record_count"] == len(state.records())
    later = [e.text for e in state.journal() if e.kind == "command" and e.session not in sessions]
    history = later.index("display ike offline history")
    assert "display ike offline-info" in later[history:]
    with sqlite3.connect(again.history()) as conn:
        (remembered,) = conn.execute(
            "SELECT ike_command FROM devices WHERE name = 'ar-utc'"
        ).fetchone()
    assert remembered == "display ike offline-info"
