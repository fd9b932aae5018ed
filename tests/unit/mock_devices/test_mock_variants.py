"""Device variants of the mock (issue 15): HA timestamp lines, ``display clock`` styles and DST,
NE40E offline history per slot, multi-SPU firewalls, extra reasons, row-like noise.

Pure parts first (rendering, scenario keys, ground truth), then what a client sees over SSH.
The NE40E layout is the one in ``mock_devices/tables.py`` (the parser is written to it);
``display clock`` and stamp forms are quoted in ``mock_devices/clocktext.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from helpers import SAMPLES, netmiko_session

from mock_devices.client import ShellClient
from mock_devices.clocktext import clock_lines, dst_rule, stamp_line
from mock_devices.commands import Command, CommandError, ErrorKind, command_tree, parse_command
from mock_devices.device import DeviceState
from mock_devices.fleet import FleetThread, inventory_hosts
from mock_devices.scenario import EXTRA_REASONS, ScenarioError, load_scenario
from mock_devices.tables import Row, firewall_reason, render_history, render_row, render_table

PROMPT = r"[>\]]$"
"""The parser's samples (sources quoted in SOURCES.md there): the mock must print the same."""


def state(**device: Any) -> DeviceState:
    return DeviceState(load_scenario({"devices": [{"name": "d", **device}]}, "pw").devices[0])


# -- rendering ---------------------------------------------------------------------------------


def fixture_body(name: str) -> str:
    """A fixture's output between the echoed command and the closing prompt."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    return text.split("\n", 1)[1].rsplit("\n", 1)[0]


def test_ne40e_history_renders_the_parser_fixtures_byte_for_byte() -> None:
    first = Row("192.168.1.2", "Receive phase1 delete info", 2, datetime(2021, 7, 23, 11, 24, 18))
    second = Row("10.1.1.9", "DPD timeout", 2, datetime(2021, 7, 23, 10, 2, 11), 4500, vpn="vpna")
    rendered = render_history([(1, [first, second]), (3, [first])])
    assert "\n".join(rendered) == fixture_body("ne40e_offline_history.txt")
    assert render_table([first, second, replace(first, slot=3)], "ne40e") == rendered
    stamp = datetime(2021, 7, 23, 11, 24, 18, 392000, tzinfo=UTC)
    empty = [str(stamp_line(stamp, "iso-ms")), *render_history([(1, [])])]
    assert "\n".join(empty) == fixture_body("ne40e_empty_slot.txt")


def test_error_history_has_its_own_title() -> None:
    assert render_history([(2, [])], "error")[0] == "  IKE Error Information for Slot : 2"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("iso-offset", "2024-03-05 10:11:12.345 +08:00"),
        ("iso-ms", "2024-03-05 10:11:12.345 "),
        ("time-first", "10:11:12  2024/03/05"),
        ("none", None),
    ],
)
def test_stamp_forms(style: Any, expected: str | None) -> None:
    moment = datetime(2024, 3, 5, 10, 11, 12, 345999, tzinfo=timezone(timedelta(hours=8)))
    assert stamp_line(moment, style) == expected


def test_display_clock_styles_without_dst() -> None:
    minus3 = datetime(2026, 11, 27, 10, 11, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert clock_lines(minus3, "offset", "BRT") == [
        "2026-11-27 10:11:12-03:00",
        "Friday",
        "Time Zone(BRT) : UTC-03:00",
    ]
    assert clock_lines(minus3, "add-minus", "BR")[2] == "Time Zone(BR) : minus 03:00:00"
    plus8 = datetime(2026, 11, 27, 10, 11, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert clock_lines(plus8, "no-offset", "BJ") == [
        "2026-11-27 10:11:12",
        "Friday",
        "Time Zone(BJ) : UTC+08:00",
    ]
    assert clock_lines(plus8, "add-minus", "BJ")[2] == "Time Zone(BJ) : add 08:00:00"


def test_display_clock_with_dst_in_effect_and_not() -> None:
    summer = datetime(2026, 7, 1, 10, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert clock_lines(summer, "offset") == [
        "2026-07-01 10:00:00+02:00 DST",
        "Wednesday",
        "Time Zone(Berlin) : UTC+01:00",
        "Daylight saving time :",
        " Name         : Berlin",
        " Repeat mode  : repeat",
        " Start year   : 2000",
        " End year     : 2099",
        " Start time   : 03-29 02:00:00",
        " End time     : 10-25 03:00:00",
        " Saving time  : 01:00:00",
    ]
    assert clock_lines(summer, "no-offset")[0] == "2026-07-01 10:00:00 DST"
    winter = clock_lines(summer.replace(month=1), "offset")
    assert winter[0] == "2026-01-01 10:00:00+01:00"  # configured, not in effect: no suffix
    assert "Daylight saving time :" in winter


def test_dst_rules_of_both_hemispheres() -> None:
    sydney = dst_rule(ZoneInfo("Australia/Sydney"), 2026)
    assert sydney is not None
    assert (sydney.start, sydney.end) == (datetime(2026, 10, 4, 2), datetime(2026, 4, 5, 3))
    assert dst_rule(ZoneInfo("Asia/Shanghai"), 2026) is None


# -- scenario keys -----------------------------------------------------------------------------


def test_variant_keys_resolve() -> None:
    spec = load_scenario("variants", "pw")
    by_name = {device.name: device for device in spec.devices}
    assert by_name["fw-stamp-time-first"].stamp == "time-first"
    assert by_name["ar-clock-add-minus"].clock.style == "add-minus"
    assert by_name["ne40e-slots"].buffers == ((1, None), (3, None))
    assert by_name["fw-spu"].buffers == ((1, 0), (1, 1), (3, 0))
    assert by_name["ne40e-slots"].platform == "huawei_vrpv8"
    assert by_name["fw-spu"].model == "USG9560"


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"stamp": "rfc3339"}, "stamp 'rfc3339' is not one of none, iso-offset"),
        ({"clock": {"style": "fancy"}}, "clock.style 'fancy'"),
        ({"clock": {"colour": 1}}, "clock: unknown key(s) colour"),
        ({"slots": [1, 3]}, "slots are for layout ne40e"),
        ({"layout": "firewall", "spus": ["1-0"]}, "SPU '1-0' is not SLOT/CPU"),
        ({"layout": "firewall", "spus": ["1/0", "1/0"]}, "spus repeat an entry"),
        ({"layout": "ne40e", "slots": [40]}, "slot numbers are 0..32"),
        ({"records": {"generate": {"reasons": "made-up"}}}, "unknown reason set 'made-up'"),
        ({"layout": "ne40e", "vpn_instances": ["bad name"]}, "VPN instance name 'bad name'"),
        ({"layout": "switch"}, "layout 'switch' is not one of router, firewall, ne40e"),
    ],
)
def test_bad_variant_keys_get_one_clear_error(device: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario({"devices": [{"name": "bad", **device}]}, "pw")
    assert message in str(info.value)
    assert "bad" in str(info.value)


# -- ground truth: local times consistent with the zone, UTC instants ----------------------


def test_records_across_a_dst_change_carry_their_true_utc_instant() -> None:
    # Device clock 05:00 CEST on the day DST starts; 40 records reach back before 02:00 CET.
    device = state(
        clock={"timezone": "Europe/Berlin", "start": "2026-03-29 05:00:00"},
        records={"generate": {"count": 40, "seed": 4}},
    )
    berlin = ZoneInfo("Europe/Berlin")
    rows, instants = device.records(), device.records_utc()
    assert len(rows) == len(instants) == 40
    offsets = set()
    for row, instant in zip(rows, instants, strict=True):
        assert instant.tzinfo is UTC
        assert instant.astimezone(berlin).replace(tzinfo=None) == row.time
        offsets.add(instant.astimezone(berlin).utcoffset())
        assert not (datetime(2026, 3, 29, 2) <= row.time < datetime(2026, 3, 29, 3))  # no gap
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}
    assert instants == sorted(instants, reverse=True)
    assert device.now_aware().utcoffset() == timedelta(hours=2)


def test_listed_and_added_records_get_utc_from_the_zone() -> None:
    device = state(
        timezone="UTC-03:00",
        records=[{"peer": "10.0.0.1", "reason": "dpd timeout", "time": "2026-12-01 04:48:00"}],
    )
    assert device.records_utc() == [datetime(2026, 12, 1, 7, 48, tzinfo=UTC)]
    device.add_records([Row("10.0.0.2", "peer request", 2, datetime(2026, 12, 1, 5, 0, 0))])
    assert device.records_utc()[0] == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    added = device.add_deletions(2)
    assert all(row.utc is not None for row in added)
    assert [row.utc for row in added] == device.records_utc()[:2]


def test_ne40e_slots_have_their_own_200_record_buffers() -> None:
    device = state(
        layout="ne40e",
        slots=[1, 3],
        vpn_instances=["vpna"],
        records={"generate": {"count": 30, "seed": 2, "same_across_buffers": 3}},
    )
    assert device.buffer_labels == ("1", "3")
    one, three = device.records("1"), device.records("3")
    assert len(one) == 30 and len(three) == 33
    assert {row.slot for row in one} == {1} and {row.slot for row in three} == {3}
    shared = [(r.peer, r.port, r.vpn, r.time, r.reason) for r in one[:3]]
    assert all(key in [(r.peer, r.port, r.vpn, r.time, r.reason) for r in three] for key in shared)
    assert {row.vpn for row in one + three} == {None, "vpna"}
    assert {row.reason for row in one + three} <= {
        "DPD timeout",
        "Phase2 SA replace",
        "Receive phase1 delete info",
        "Phase1 SA replace",
        "Receive phase2 delete info",
        "Config modify or manual offline",
        "Exchange timeout",
        "Phase1 hard expiry",
        "Phase2 hard expiry",
        "Heartbeat timeout",
    }
    device.add_deletions(250, buffer="3")
    assert len(device.records("3")) == 200 and device.records("1") == one
    assert len(device.records()) == 230
    with pytest.raises(KeyError, match="no buffer '2'"):
        device.records("2")


def test_spu_buffers_and_routing_of_added_rows() -> None:
    device = state(layout="firewall", spus=["1/0", "3/0"], records={"generate": {"count": 5}})
    assert device.buffer_labels == ("1/0", "3/0")
    device.add_records([Row("10.9.9.9", "dpd timeout", 2, device.now(), slot=3, cpu=0)])
    assert device.records("3/0")[0].peer == "10.9.9.9"
    assert all(row.peer != "10.9.9.9" for row in device.records("1/0"))
    assert device.deleted_total == 11


def test_extra_reasons_all_show_and_firewalls_hyphenate_them() -> None:
    device = state(layout="firewall", records={"generate": {"count": 15, "reasons": "extra"}})
    assert sorted(row.reason for row in device.records()) == sorted(EXTRA_REASONS)
    _, body = device.rendered_records("firewall")
    text = "\n".join(body)
    assert "receive-backup-delete-info" in text and "kick-old-sa-with-same-flow" in text
    assert firewall_reason("ip address syn failed") == "ip-address-syn-failed"
    weighted = state(records={"generate": {"count": 50, "reasons": {"nhrp notify": 1}}})
    assert {row.reason for row in weighted.records()} == {"nhrp notify"}


# -- command trees -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "params"),
    [
        ("display ike offline history", {}),
        ("dis ike off his slot 3", {"<slot:0-32>": "3"}),
        (
            "display ike offline history peer-ip 10.1.1.9 vpn-instance-name vpna port 4500 slot 1",
            {
                "<ip>": "10.1.1.9",
                "<vpn:name>": "vpna",
                "<port:0-65535>": "4500",
                "<slot:0-32>": "1",
            },
        ),
        (
            "display ike offline history peer-ip 10.1.1.9 vpn-instance vpna",
            {"<ip>": "10.1.1.9", "<vpn:name>": "vpna"},
        ),
        (
            "display ike offline history peer-ip 10.1.1.9 port 500",
            {"<ip>": "10.1.1.9", "<port:0-65535>": "500"},
        ),
    ],
)
def test_ne40e_history_syntax(line: str, params: dict[str, str]) -> None:
    parsed = parse_command(line, command_tree("ne40e"))
    assert isinstance(parsed, Command)
    assert parsed.action == "ike_offline_history" and parsed.params == params


def test_trees_differ_per_device() -> None:
    ne40e, spu, router = (
        command_tree("ne40e"),
        command_tree("firewall", True),
        command_tree("router"),
    )
    assert parse_command("display ike offline-info", ne40e) == CommandError(
        ErrorKind.UNRECOGNIZED, 12
    )
    assert parse_command("display ike offline history port 500", ne40e) == CommandError(
        ErrorKind.UNRECOGNIZED, 28
    )
    parsed = parse_command("display ike offline-info peer 10.0.0.1 slot 1 cpu 0", spu)
    assert isinstance(parsed, Command)
    assert parsed.params == {"<ip>": "10.0.0.1", "<slot:0-32>": "1", "<cpu:0-31>": "0"}
    assert parse_command("display ike offline-info slot 1", spu) == CommandError(
        ErrorKind.INCOMPLETE, 31
    )
    assert parse_command("display ike offline-info slot 1 cpu 0", router) == CommandError(
        ErrorKind.UNRECOGNIZED, 25
    )
    assert isinstance(parse_command("display ike error history slot 1", ne40e), Command)


# -- over SSH ----------------------------------------------------------------------------------


@pytest.fixture
def shell(variants_fleet: FleetThread) -> Iterator[Any]:
    opened: list[ShellClient] = []

    def open_shell(name: str) -> ShellClient:
        device = variants_fleet.device(name)
        client = ShellClient(device.host, device.port, device.username, device.password)
        opened.append(client)
        client.read_until(PROMPT)
        client.command("screen-length 0 temporary")
        return client

    yield open_shell
    for client in opened:
        client.close()


def crlf(lines: list[str]) -> str:
    return "".join(line + "\r\n" for line in lines)


STAMPS = {
    "fw-stamp-iso-offset": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+08:00",
    "fw-stamp-iso-ms": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ",
    "fw-stamp-time-first": r"\d\d:\d\d:\d\d  \d{4}/\d\d/\d\d",
}


@pytest.mark.parametrize("name", sorted(STAMPS))
def test_ha_stamp_line_before_every_display_output(
    variants_fleet: FleetThread, shell: Any, name: str
) -> None:
    device = variants_fleet.device(name)
    client = shell(name)
    before = device.now().replace(microsecond=0)
    output = client.command("display ike offline-info")
    after = device.now()
    echo, stamp, rest = output.split("\r\n", 2)
    assert echo == "display ike offline-info"
    assert re.fullmatch(STAMPS[name], stamp)
    digits = re.findall(r"\d+", stamp)
    if name == "fw-stamp-time-first":
        digits = digits[3:6] + digits[:3]
    shown = datetime(*map(int, digits[:6]))  # type: ignore[arg-type]
    assert before <= shown <= after
    assert rest == crlf(render_table(device.records(), "firewall")) + f"HRP_M<{name}>"
    assert re.match(
        STAMPS[name] + r"\r\n\d{4}-", client.command("display clock").split("\r\n", 1)[1]
    )
    assert client.command("screen-length 0 temporary").count("\r\n") == 2  # no stamp there
    assert "Error: Unrecognized" in client.command("display ike offlinx").split("\r\n")[2]


CLOCKS = {
    "ar-clock-offset": (r"[-\d]{10} \d\d:\d\d:\d\d-03:00", "Time Zone(BRT) : UTC-03:00", False),
    "ar-clock-zone-line": (r"[-\d]{10} \d\d:\d\d:\d\d", "Time Zone(IST) : UTC+05:30", False),
    "ar-clock-add-minus": (r"[-\d]{10} \d\d:\d\d:\d\d", "Time Zone(BR) : minus 03:00:00", False),
    "ar-clock-dst": (r"[-\d]{10} \d\d:\d\d:\d\d\+11:00 DST", "Time Zone(Sydney) : UTC+10:00", True),
    "ar-clock-dst-no-offset": (r"[-\d]{10} \d\d:\d\d:\d\d DST", "Time Zone(NZ) : UTC+12:00", True),
}


@pytest.mark.parametrize("name", sorted(CLOCKS))
def test_display_clock_variants_agree_with_the_device_clock(
    variants_fleet: FleetThread, shell: Any, name: str
) -> None:
    device = variants_fleet.device(name)
    pattern, zone_line, dst = CLOCKS[name]
    if dst and not device.now_aware().dst():
        pytest.skip("the zone is out of DST today")  # Sydney/Auckland: DST October to April
    lines = shell(name).command("display clock").split("\r\n")
    assert re.fullmatch(pattern, lines[1])
    assert lines[3] == zone_line
    assert ("Daylight saving time :" in lines) is dst
    shown = datetime.fromisoformat(lines[1][:19])
    assert abs(shown - device.now()) < timedelta(seconds=5)
    # The records' printed times are the device's zone (DST included) of their UTC instants.
    zone = device.spec.clock.tz()
    for row in device.records():
        assert row.utc is not None
        assert row.utc.astimezone(zone).replace(tzinfo=None) == row.time


def test_inventory_leaves_the_zone_to_display_clock_and_names_spus(
    variants_fleet: FleetThread,
) -> None:
    assert variants_fleet.inventory_path is not None
    hosts = yaml.safe_load(variants_fleet.inventory_path.read_text())
    assert hosts["ar-utc"]["data"]["timezone"] == "UTC"
    assert all("timezone" not in hosts[name]["data"] for name in CLOCKS)
    assert hosts["fw-spu"]["data"]["ike_spus"] == ["1/0", "1/1", "3/0"]
    assert hosts["ne40e-slots"]["platform"] == "huawei_vrpv8"
    assert hosts["ne40e-slots"]["data"]["layout"] == "ne40e"
    assert inventory_hosts(variants_fleet.devices) == hosts


def test_ne40e_refuses_offline_info_and_answers_history_per_slot(
    variants_fleet: FleetThread, shell: Any
) -> None:
    device = variants_fleet.device("ne40e-slots")
    client = shell("ne40e-slots")
    assert client.command("display ike offline-info") == (
        "display ike offline-info\r\n"
        + " " * (len("<ne40e-slots>") + 12)
        + "^\r\nError: Unrecognized command found at '^' position.\r\n<ne40e-slots>"
    )
    whole = client.command("display ike offline history")
    sections = [(1, device.records("1")), (3, device.records("3"))]
    assert whole == "display ike offline history\r\n" + crlf(render_history(sections)) + (
        "<ne40e-slots>"
    )
    assert "Current Record Number : 30\r\n" in whole and "Current Record Number : 33\r\n" in whole
    three = client.command("dis ike off his slot 3")
    assert three.endswith(crlf(render_history([(3, device.records("3"))])) + "<ne40e-slots>")
    row = next(r for r in device.records("3") if r.vpn)
    wanted = [
        r
        for r in device.records("3")
        if r.peer == row.peer and r.vpn == row.vpn and r.port == row.port
    ]
    filtered = client.command(
        f"display ike offline history peer-ip {row.peer} vpn-instance-name {row.vpn} "
        f"port {row.port} slot 3"
    )
    assert filtered.endswith(crlf(render_history([(3, wanted)])) + "<ne40e-slots>")
    wrong = client.command("display ike offline history slot 2")
    assert wrong.split("\r\n")[1:3] == [
        " " * (len("<ne40e-slots>") + len("display ike offline history slot ")) + "^",
        "Error: Wrong parameter found at '^' position.",
    ]
    errors = client.command("display ike error history")
    assert "  IKE Error Information for Slot : 3\r\n  Current Record Number : 4\r\n" in errors
    assert render_row(device.error_records("1")[0], "ne40e") in errors


def test_netmiko_reads_the_ne40e_history(variants_fleet: FleetThread) -> None:
    device = variants_fleet.device("ne40e-slots")
    connection = netmiko_session(device, "huawei_vrpv8")
    try:
        output = connection.send_command("display ike offline history", read_timeout=20)
    finally:
        connection.disconnect()
    expected = render_history([(1, device.records("1")), (3, device.records("3"))])
    assert str(output).strip("\n") == "\n".join(expected).strip("\n")


def test_spu_firewall_answers_per_spu(variants_fleet: FleetThread, shell: Any) -> None:
    device = variants_fleet.device("fw-spu")
    client = shell("fw-spu")
    for label in device.buffer_labels:
        slot, cpu = label.split("/")
        output = client.command(f"display ike offline-info slot {slot} cpu {cpu}")
        assert output.endswith(crlf(render_table(device.records(label), "firewall")) + "<fw-spu>")
    first = client.command("display ike offline-info")
    assert first.endswith(crlf(render_table(device.records("1/0"), "firewall")) + "<fw-spu>")
    peer = device.records("1/1")[0].peer
    rows = [row for row in device.records("1/1") if row.peer == peer]
    output = client.command(f"display ike offline-info peer {peer} slot 1 cpu 1")
    assert output.endswith(crlf(render_table(rows, "firewall")) + "<fw-spu>")
    prefix = " " * len("<fw-spu>")
    assert client.command("display ike offline-info slot 2 cpu 0").split("\r\n")[1:3] == [
        prefix + " " * len("display ike offline-info slot ") + "^",
        "Error: Wrong parameter found at '^' position.",
    ]
    assert client.command("display ike offline-info slot 1 cpu 7").split("\r\n")[1] == (
        prefix + " " * len("display ike offline-info slot 1 cpu ") + "^"
    )


def test_row_like_noise_sits_outside_the_table(variants_fleet: FleetThread, shell: Any) -> None:
    device = variants_fleet.device("ar-row-like-noise")
    output = shell("ar-row-like-noise").command("display ike offline-info")
    noise = render_row(Row("10.1.1.1", "dpd timeout", 2, datetime(2024, 3, 5, 10)), "router")
    table = crlf(render_table(device.records(), "router"))
    assert output == (
        "display ike offline-info\r\n"
        + crlf([noise])
        + table
        + crlf(["", noise, "  10.1.1.1  dpd timeout  v2  2024-03-05 10:00:00"])
        + "<ar-row-like-noise>"
    )
    assert all(row.peer != "10.1.1.1" for row in device.records())


def test_extra_reasons_over_ssh(variants_fleet: FleetThread, shell: Any) -> None:
    router = shell("ar-extra-reasons").command("display ike offline-info")
    firewall = shell("fw-extra-reasons").command("display ike offline-info")
    for reason in EXTRA_REASONS:
        assert f" {reason} " in router
        assert f" {firewall_reason(reason)} " in firewall
    assert variants_fleet.device("ar-extra-reasons").records()[0].utc is not None


def test_faults_apply_to_the_ne40e_history_too(mock_fleet: Any) -> None:
    fleet = mock_fleet(
        {
            "defaults": {"layout": "ne40e", "slots": [1, 3], "records": {"generate": {"count": 9}}},
            "devices": [
                {"name": "ne-short", "faults": ["truncated_table"]},
                {"name": "ne-old", "faults": ["command_unsupported"]},
                {"name": "ne-stamp", "stamp": "iso-ms", "trailing_row_like_noise": True},
            ],
        }
    )
    outputs = {}
    for name in ("ne-short", "ne-old", "ne-stamp"):
        device = fleet.device(name)
        with ShellClient(device.host, device.port, device.username, device.password) as client:
            client.read_until(PROMPT)
            client.command("screen-length 0 temporary")
            outputs[name] = client.command("display ike offline history")
    short = outputs["ne-short"]
    assert short.count("Current Record Number : 9\r\n") == 2
    assert short.count(":500 ") + short.count(":4500 ") == 12  # 6 of 9 rows per slot
    assert "Error: Unrecognized command found at '^' position." in outputs["ne-old"]
    stamp, rest = outputs["ne-stamp"].split("\r\n", 2)[1:]
    assert re.fullmatch(STAMPS["fw-stamp-iso-ms"], stamp)
    assert rest.startswith("  IKE Offline Information for Slot : 1\r\n")
    noise = render_row(Row("10.1.1.1", "dpd timeout", 2, datetime(2024, 3, 5, 10)), "ne40e")
    assert rest.endswith(
        "-" * 78 + "\r\n\r\n" + noise + "\r\n  10.1.1.1  dpd timeout  v2  "
        "2024-03-05 10:00:00\r\n<ne-stamp>"
    )
