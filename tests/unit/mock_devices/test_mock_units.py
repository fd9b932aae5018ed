"""Pure parts of the mock: command tree, scenarios, record generation, ring buffer, keys."""

from __future__ import annotations

import itertools
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from mock_devices.commands import Command, CommandError, ErrorKind, parse_command
from mock_devices.device import DeviceState, host_key_for
from mock_devices.fleet import inventory_hosts, write_password_file
from mock_devices.scenario import (
    MAX_RECORDS,
    Fault,
    RecordGenerator,
    ScenarioError,
    load_scenario,
    parse_timezone,
)
from mock_devices.server import loopback_address
from mock_devices.tables import Row, render_row


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("display ike offline-info", "ike_offline"),
        ("dis ike off", "ike_offline"),
        ("disp ike offline-info", "ike_offline"),
        ("DIS IKE OFFLINE-INFO", "ike_offline"),
        ("display ike offline-info peer 10.1.2.3", "ike_offline"),
        ("screen-length 0 temporary", "screen_length"),
        ("screen-l 0 temp", "screen_length"),
        ("dis clock", "clock"),
        ("dis ver", "version"),
        ("quit", "quit"),
        ("q", "quit"),
    ],
)
def test_abbreviations_resolve(line: str, action: str) -> None:
    parsed = parse_command(line)
    assert isinstance(parsed, Command)
    assert parsed.action == action


@pytest.mark.parametrize(
    ("line", "kind", "column"),
    [
        ("d", ErrorKind.AMBIGUOUS, 0),  # debugging, delete, dir, display
        ("dis i", ErrorKind.AMBIGUOUS, 4),  # ike, interface, ip, ipsec
        ("screen 0 temp", ErrorKind.AMBIGUOUS, 0),  # screen-length, screen-width
        ("dispaly ike", ErrorKind.UNRECOGNIZED, 0),
        ("display ike offline-infox", ErrorKind.UNRECOGNIZED, 12),
        ("display", ErrorKind.INCOMPLETE, 7),
        ("display ike offline-info peer 1.2.3", ErrorKind.WRONG_PARAMETER, 30),
        ("display ike offline-info peer 10.0.0.1; save", ErrorKind.WRONG_PARAMETER, 30),
        ("screen-length 999 temporary", ErrorKind.WRONG_PARAMETER, 14),
        ("save", ErrorKind.UNRECOGNIZED, 0),
        ("system-view", ErrorKind.UNRECOGNIZED, 0),
    ],
)
def test_errors_point_at_the_bad_token(line: str, kind: ErrorKind, column: int) -> None:
    parsed = parse_command(line)
    assert parsed == CommandError(kind, column)


def test_error_lines_put_the_caret_under_the_token_after_the_prompt() -> None:
    error = parse_command("dis ike offlin-info")
    assert isinstance(error, CommandError)
    assert error.lines("<ar-01>") == [
        " " * (len("<ar-01>") + 8) + "^",
        "Error: Unrecognized command found at '^' position.",
    ]


def test_blank_line_is_no_command() -> None:
    assert parse_command("   ") is None


def test_generator_is_deterministic_and_realistic() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5)
    first = RecordGenerator("seed-a").history(200, now)
    assert first == RecordGenerator("seed-a").history(200, now)
    assert first != RecordGenerator("seed-b").history(200, now)
    assert [row.time for row in first] == sorted((row.time for row in first), reverse=True)
    assert len({row.peer for row in first}) <= 12  # a small pool, so peers flap
    assert any(a.time == b.time for a, b in itertools.pairwise(first))
    assert {row.reason for row in first} >= {"dpd timeout", "peer request"}
    assert {row.version for row in first} <= {1, 2}


def scenario(**device: object) -> dict[str, object]:
    return {"defaults": {"records": {"generate": {"count": 20, "seed": 3}}}, "devices": [device]}


def test_ring_buffer_keeps_newest_200(tmp_path: Path) -> None:
    state = DeviceState(load_scenario(scenario(name="r1"), "pw").devices[0])
    assert len(state.records()) == 20
    added = state.add_deletions(250)
    held = state.records()
    assert len(held) == MAX_RECORDS
    assert held[0].time >= held[-1].time
    assert set(held) <= set(added)
    assert state.deleted_total == 270


def test_add_records_sorts_and_keeps_explicit_rows() -> None:
    rows = [
        Row("10.0.0.1", "dpd timeout", 2, datetime(2026, 1, 1, 0, 0, 1)),
        Row("10.0.0.2", "peer request", 1, datetime(2026, 1, 1, 0, 0, 3)),
    ]
    data = {"devices": [{"name": "x", "records": []}]}
    state = DeviceState(load_scenario(data, "pw").devices[0])
    state.add_records(rows)
    assert [row.peer for row in state.records()] == ["10.0.0.2", "10.0.0.1"]


def test_rendered_rows_follow_the_records_and_the_layout() -> None:
    state = DeviceState(load_scenario(scenario(name="r1"), "pw").devices[0])
    rows, body = state.rendered_records("router")
    assert body == [render_row(row, "router") for row in rows] and len(body) == 20
    assert state.rendered_records("router")[1] is body  # rendered once, not per session
    _, firewall = state.rendered_records("firewall")
    assert firewall == [render_row(row, "firewall") for row in rows]
    added = state.add_deletions(2)
    rows, body = state.rendered_records("router")
    assert rows[:2] == sorted(added, key=lambda row: row.time, reverse=True)
    assert body == [render_row(row, "router") for row in rows] and len(body) == 22


def test_churn_adds_at_the_configured_rate() -> None:
    state = DeviceState(
        load_scenario(scenario(name="c", churn={"per_minute": 30}), "pw").devices[0]
    )
    state.churn_tick(10.0)  # 30/min for 10 s = 5
    assert len(state.records()) == 25


def test_explicit_records_and_clock() -> None:
    data = {
        "devices": [
            {
                "name": "e1",
                "layout": "firewall",
                "clock": {"start": "2026-03-01 12:00:00", "timezone": "UTC+05:30"},
                "records": [
                    {
                        "peer": "1.1.1.1",
                        "reason": "dpd timeout",
                        "version": "v2",
                        "time": "2026-02-01 00:00:00",
                        "port": 4500,
                    },
                    {"peer": "1.1.1.2", "reason": "aaa cut user", "time": "2026-02-02 00:00:00"},
                ],
            }
        ]
    }
    state = DeviceState(load_scenario(data, "pw").devices[0])
    assert [row.peer for row in state.records()] == ["1.1.1.2", "1.1.1.1"]
    assert state.records()[1].port == 4500
    assert state.now() >= datetime(2026, 3, 1, 12, 0, 0)
    assert state.now_aware().utcoffset() == parse_timezone("+05:30").utcoffset(None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"devices": [{"name": "a", "layout": "switch"}]}, "layout 'switch'"),
        ({"devices": [{"name": "a", "faults": ["explode"]}]}, "unknown fault 'explode'"),
        ({"devices": [{"name": "a", "colour": "red"}]}, "unknown key(s) colour"),
        ({"devices": [{"name": "a"}, {"name": "a"}]}, "duplicate device names a"),
        ({"devices": [{"name": "a", "timezone": "Mars/Base"}]}, "unknown timezone"),
        ({"devices": []}, "no devices"),
        ({"devices": [{"name": "a", "login_delay_ms": -5}]}, "(a): login_delay_ms -5 is not"),
        ({"devices": [{"name": "a", "login_delay_ms": "1s"}]}, "login_delay_ms '1s' is not"),
        ({"devices": [{"name": "a", "enter_latency_ms": -1}]}, "enter_latency_ms -1 is not"),
    ],
)
def test_bad_scenarios_get_one_clear_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data, "pw")
    assert message in str(info.value)


def test_login_delay_comes_from_the_defaults_or_the_device() -> None:
    data = {
        "defaults": {"login_delay_ms": 1000},
        "devices": [{"name": "wan"}, {"name": "lan", "login_delay_ms": 0}],
    }
    wan, lan = load_scenario(data, "pw").devices
    assert (wan.login_delay_ms, lan.login_delay_ms) == (1000, 0)
    assert load_scenario({"devices": [{"name": "a"}]}, "pw").devices[0].login_delay_ms == 0


def test_shipped_scenarios_load() -> None:
    demo = load_scenario("demo", "pw")
    assert 10 <= len(demo.devices) <= 14
    assert {d.layout for d in demo.devices} == {"router", "firewall"}
    quirks = {Fault.REJECT_SCREEN_LENGTH}  # the collector must cope with it, not fail
    assert 2 <= sum(1 for d in demo.devices if d.faults - quirks) <= 3
    faults = load_scenario("faults", "pw")
    assert set().union(*(d.faults for d in faults.devices)) == set(Fault)


def test_count_clones_the_template_with_a_layout_mix_and_faults() -> None:
    data = {
        "template": {
            "prefix": "edge",
            "mix": {"router": 0.5, "firewall": 0.5},
            "faulty_fraction": 0.1,
            "fault_pool": ["slow", "truncated_table"],
        }
    }
    fleet = load_scenario(data, "pw", count=100)
    assert fleet.devices[0].name == "edge-0001"
    assert fleet.devices[-1].name == "edge-0100"
    layouts = [d.layout for d in fleet.devices]
    assert 30 < layouts.count("router") < 70
    assert sum(1 for d in fleet.devices if d.faults) == 10
    assert load_scenario(data, "pw", count=100) == fleet  # deterministic


def test_password_comes_from_the_caller_and_never_shows_in_repr() -> None:
    device = load_scenario(scenario(name="p"), "s3cret").devices[0]
    assert device.password == "s3cret"
    assert "s3cret" not in repr(device)


def test_host_keys_are_stable_per_seed_and_name() -> None:
    key = host_key_for("seed", "ar-01").export_public_key()
    assert key == host_key_for("seed", "ar-01").export_public_key()
    assert key != host_key_for("seed", "ar-02").export_public_key()
    assert key != host_key_for("other", "ar-01").export_public_key()
    assert key.startswith(b"ssh-ed25519 ")


def test_loopback_addresses_skip_network_and_broadcast_octets() -> None:
    assert loopback_address("127.0.1.1", 0) == "127.0.1.1"
    assert loopback_address("127.0.1.1", 249) == "127.0.1.250"
    assert loopback_address("127.0.1.1", 250) == "127.0.2.1"
    assert loopback_address("127.0.1.1", 999) == "127.0.4.250"


def test_inventory_has_no_password_and_the_collector_fields() -> None:
    states = [DeviceState(d) for d in load_scenario("demo", "topsecret").devices]
    for index, state in enumerate(states):
        state.host, state.port = "127.0.0.1", 10000 + index
    hosts = inventory_hosts(states)
    text = yaml.safe_dump(hosts)
    assert "topsecret" not in text
    router = hosts["ar-bj-01"]
    assert router["platform"] == "huawei"
    assert router["groups"] == ["routers"]
    assert router["data"]["model"] == "AR6120"
    firewall = hosts["fw-bj-01"]
    assert firewall["platform"] == "huawei_vrpv8"
    assert firewall["data"] == {
        "site": "beijing",
        "timezone": "Asia/Shanghai",
        "layout": "firewall",
        "model": "USG6555E",
        "addresses": ["192.0.2.1"],  # the demo's hub: both ends of its tunnels are paired
    }


def test_password_file_is_private_and_env_style(tmp_path: Path) -> None:
    path = tmp_path / "pw.env"
    write_password_file(path, "it's secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == "IKE_COLLECTOR_PASSWORD='it'\"'\"'s secret'\n"


def test_authorized_keys_from_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "authorized_keys"
    keys.write_text("# team keys\nssh-ed25519 AAAAC3Nz one@example\n\nssh-ed25519 AAAAC3Nz two@x\n")
    data = {
        "devices": [
            {
                "name": "k",
                "authorized_keys": ["ssh-ed25519 AAAA inline"],
                "authorized_keys_file": str(keys),
            }
        ]
    }
    device = load_scenario(data, "pw").devices[0]
    assert device.authorized_keys == (
        "ssh-ed25519 AAAA inline",
        "ssh-ed25519 AAAAC3Nz one@example",
        "ssh-ed25519 AAAAC3Nz two@x",
    )
    missing = {"devices": [{"name": "k", "authorized_keys_file": str(tmp_path / "nope")}]}
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(missing, "pw")


def test_a_shipped_scenario_name_wins_over_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mock-huawei-fleet --scenario fleet`` with a directory ``fleet`` here: the shipped one."""
    from mock_devices.scenario import SCENARIO_DIR, resolve_scenario_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fleet").mkdir()
    (tmp_path / "demo").write_text("not: a scenario\n")
    assert resolve_scenario_path("fleet") == SCENARIO_DIR / "fleet.yaml"
    assert resolve_scenario_path("demo") == SCENARIO_DIR / "demo.yaml"
    (tmp_path / "mine.yaml").write_text("devices: []\n")
    assert resolve_scenario_path("mine.yaml") == Path("mine.yaml")
    assert resolve_scenario_path("./demo") == Path("./demo")
