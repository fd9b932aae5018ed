"""``collect`` end to end: the real CLI against a mock fleet over real SSH (netmiko, napalm).

One mixed router/firewall fleet with one device per fault of the mock; the CLI is run
through click's CliRunner in this process while the fleet serves from a thread.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Run, assert_matches_mock, assert_read_only, collect, record_key, row_key

from collector.core import commands
from collector.core.records import RECORD_FIELDS, ErrorKind
from collector.output.machine import DEVICE_CSV_FIELDS, RECORD_CSV_FIELDS
from mock_devices.fleet import FleetThread, start_fleet

PASSWORD = "canary-E2e-pw-4411"
TIMEOUT = 8
"""Per device: f-slow (1.5 s per round trip) fits, the hung devices end in timeout."""

EXPECTED_ERRORS: dict[str, ErrorKind | None] = {
    "ok-router": None,
    "ok-firewall": None,
    "f-wrong-credentials": ErrorKind.AUTH,
    "f-port-closed": ErrorKind.UNREACHABLE,
    "f-hang-no-banner": ErrorKind.TIMEOUT,
    "f-slow": None,
    "f-very-slow": ErrorKind.TIMEOUT,
    "f-drop-mid-output": ErrorKind.INCOMPLETE_OUTPUT,
    "f-reject-screen-length": None,
    "f-command-unsupported": ErrorKind.COMMAND_REJECTED,
    "f-truncated-table": ErrorKind.INCOMPLETE_OUTPUT,
    "f-garbage-output": ErrorKind.PROTOCOL,
    "f-password-change-prompt": None,
    "f-save-prompt": None,
    "f-huge-table": ErrorKind.OVERSIZED_OUTPUT,
    "f-endless-output": ErrorKind.OVERSIZED_OUTPUT,
    "f-terminal-noise": None,
}


class Env:
    """The fleet and the options every run of this module shares."""

    def __init__(self, fleet: FleetThread, directory: Path) -> None:
        self.fleet = fleet
        self.directory = directory
        assert fleet.inventory_path is not None
        self.inventory = fleet.inventory_path
        self.runs = 0

    def collect(self, *args: str, password: str | None = PASSWORD, tracebacks: bool = False) -> Run:
        self.runs += 1
        db = self.directory / f"history-{self.runs}.sqlite3"
        return collect(
            self.inventory,
            self.directory,
            *("--db", str(db), "--retries", "0", *args),
            password=password,
            timeout=TIMEOUT,
            tracebacks=tracebacks,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("e2e-faults")
    fleet = start_fleet("faults", password=PASSWORD, inventory=directory / "inventory")
    yield Env(fleet, directory)
    fleet.stop()


@pytest.fixture(scope="module")
def full_run(env: Env) -> Run:
    """One collection from the whole fault fleet, JSON, with the device clock."""
    for device in env.fleet.devices:
        device.clear_journal()
    return env.collect("--format", "json", "--clock-from-device")


# --- the whole fault fleet -------------------------------------------------------------


@pytest.mark.slow
def test_some_failed_exits_1_and_names_every_failed_device(full_run: Run) -> None:
    assert full_run.code == 1, full_run.stderr
    failed = [name for name, kind in EXPECTED_ERRORS.items() if kind is not None]
    for name in failed:
        assert name in full_run.stderr
    assert f"{len(failed)} of {len(EXPECTED_ERRORS)} devices could not be read" in full_run.stderr
    assert "Traceback" not in full_run.stderr
    assert PASSWORD not in full_run.stdout + full_run.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), sorted(EXPECTED_ERRORS.items()))
def test_each_device_gets_the_right_outcome(
    full_run: Run, env: Env, name: str, kind: ErrorKind | None
) -> None:
    device = full_run.devices()[name]
    if kind is None:
        assert_matches_mock(device, env.fleet.device(name))
    else:
        assert device["status"] == "failed"
        assert device["error"]["kind"] == kind.value, device["error"]
        assert device["error"]["message"] and "\n" not in device["error"]["message"]
        assert device["records"] == []


@pytest.mark.slow
def test_summary_counts_the_fleet(full_run: Run) -> None:
    summary = full_run.json()["summary"]
    failed = sum(1 for kind in EXPECTED_ERRORS.values() if kind is not None)
    assert summary["totals"]["devices"] == len(EXPECTED_ERRORS)
    assert summary["totals"]["devices_failed"] == failed
    assert summary["totals"]["records"] == 40 * (len(EXPECTED_ERRORS) - failed)
    assert summary["totals"]["new_records"] == summary["totals"]["records"]
    assert {f["name"] for f in summary["failing"]} == {
        name for name, kind in EXPECTED_ERRORS.items() if kind is not None
    }


@pytest.mark.slow
def test_read_only_proof_from_the_journals(full_run: Run, env: Env) -> None:
    assert full_run.code == 1
    sent_commands = set()
    for state in env.fleet.devices:
        assert_read_only(state)
        sent_commands |= {e.text for e in state.journal() if e.kind == "command"}
    assert commands.OFFLINE_INFO in sent_commands
    assert commands.CLOCK in sent_commands
    answers = [
        e.text
        for name in ("f-save-prompt", "f-password-change-prompt")
        for e in env.fleet.device(name).journal()
        if e.kind == "answer"
    ]
    assert answers and set(answers) == {"N"}
    assert env.fleet.device("f-port-closed").journal() == []


# --- exit codes ------------------------------------------------------------------------


def test_all_healthy_exits_0(env: Env) -> None:
    run = env.collect("--host", "ok-*", "--format", "json")
    assert run.code == 0, run.stderr
    devices = run.devices()
    assert set(devices) == {"ok-router", "ok-firewall"}
    for name, device in devices.items():
        assert_matches_mock(device, env.fleet.device(name))


def test_all_failed_exits_3(env: Env) -> None:
    run = env.collect("--host", "f-wrong-credentials", "--host", "f-port-closed")
    assert run.code == 3
    assert "2 of 2 devices could not be read" in run.stderr
    assert "Devices that could not be read" in run.stdout


def test_napalm_transport_collects_from_the_mock_fleet(env: Env) -> None:
    for name in ("ok-router", "ok-firewall", "f-save-prompt"):
        env.fleet.device(name).clear_journal()
    run = env.collect(
        "--transport", "napalm", "--host", "ok-*", "--host", "f-save-prompt", "--format", "json"
    )
    assert run.code == 0, run.stderr
    for name, device in run.devices().items():
        state = env.fleet.device(name)
        assert_matches_mock(device, state)
        assert_read_only(state)


# --- --peer validation: nothing connects ------------------------------------------------


@pytest.mark.parametrize(
    "peer",
    [
        "10.1.1.256",
        "10.1.1.2\nsave",
        "10.1.1.2 save",
        " 10.1.1.2",
        "2001:db8::1",
        "010.1.1.2",
        "peer",
        "",
    ],
)
def test_invalid_peer_is_a_usage_error_before_any_connection(env: Env, peer: str) -> None:
    for state in env.fleet.devices:
        state.clear_journal()
    run = env.collect("--peer", peer)
    assert run.code == 2
    assert "--peer" in run.stderr
    assert run.stdout == ""
    for state in env.fleet.devices:
        assert state.journal() == [], state.name


def test_valid_peer_reads_only_that_peer(env: Env) -> None:
    state = env.fleet.device("ok-router")
    peer = state.records()[0].peer
    run = env.collect("--host", "ok-router", "--peer", peer, "--format", "json")
    assert run.code == 0, run.stderr
    records = run.devices()["ok-router"]["records"]
    assert records and {r["peer"] for r in records} == {peer}
    assert [record_key(r) for r in records] == [
        row_key(row) for row in state.records() if row.peer == peer
    ]


# --- formats ---------------------------------------------------------------------------


def test_json_shape(env: Env) -> None:
    document = env.collect("--host", "ok-*", "--host", "f-port-closed", "--format", "json").json()
    assert set(document) == {
        "schema_version",
        "generated_at",
        "times",
        "window",
        "devices",
        "summary",
    }
    assert document["schema_version"] == 1
    for device in document["devices"]:
        assert {"name", "hostname", "status", "error", "records"} <= set(device)
        assert device["status"] in ("ok", "failed")
        for record in device["records"]:
            assert list(record) == list(RECORD_FIELDS)
    failed = next(d for d in document["devices"] if d["name"] == "f-port-closed")
    assert set(failed["error"]) == {"kind", "message"}
    assert {"totals", "by_reason", "by_category", "top_peers"} <= set(document["summary"])


def test_csv_shapes(env: Env) -> None:
    run = env.collect("--host", "ok-*", "--format", "csv")
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert tuple(rows[0]) == DEVICE_CSV_FIELDS
    assert sorted(row[0] for row in rows[1:]) == ["ok-firewall", "ok-router"]
    run = env.collect("--host", "ok-*", "--format", "csv", "--records")
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert tuple(rows[0]) == RECORD_CSV_FIELDS
    assert len(rows) == 1 + 80


def test_ndjson_shape(env: Env) -> None:
    run = env.collect("--host", "ok-*", "--host", "f-truncated-table", "--format", "ndjson")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    types = [line["type"] for line in lines]
    assert types == ["record"] * 80 + ["device"] * 3 + ["summary"]
    assert {line["device"] for line in lines if line["type"] == "record"} == {
        "ok-router",
        "ok-firewall",
    }


def test_table_is_the_default_and_records_adds_the_listing(env: Env) -> None:
    run = env.collect("--host", "ok-router", "--records")
    assert run.code == 0
    assert "Fleet report generated" in run.stdout
    assert "Records\n=======" in run.stdout
    assert env.fleet.device("ok-router").records()[0].peer in run.stdout


def test_vv_shows_the_conversation_but_never_the_password(env: Env) -> None:
    run = env.collect(
        "--host", "ok-router", "--host", "f-wrong-credentials", "-vv", tracebacks=True
    )
    assert run.code == 1
    assert "display ike offline-info" in run.stderr
    assert "debug:" in run.stderr
    # -vv may add exception detail (the device's traceback), never a secret.
    assert PASSWORD not in run.stderr + run.stdout


def test_quiet_prints_the_report_and_one_summary_line(env: Env) -> None:
    """--quiet (the README's cron line): no warnings, but a run that did not go well says
    so in one line, so cron mails it."""
    run = env.collect("--host", "ok-router", "--host", "f-port-closed", "--quiet")
    assert run.code == 1
    assert run.stderr.splitlines() == [
        "collect-ike-offline: error: 1 of 2 devices could not be read (unreachable 1);"
        " see the report"
    ]
    assert "Fleet report generated" in run.stdout


def test_quiet_is_silent_only_when_the_run_is_clean(env: Env) -> None:
    clean = env.collect("--host", "ok-router", "--quiet")
    assert clean.code == 0
    assert clean.stderr == ""
    # Every device failing (a wrong password): never silent.
    wrong = env.collect("--host", "ok-*", "--quiet", password="not-the-password")
    assert wrong.code == 3
    assert wrong.stderr.splitlines()[-1] == (
        "collect-ike-offline: error: 2 of 2 devices could not be read (auth 2); see the report"
    )
    # A breached threshold.
    breach = env.collect("--host", "ok-router", "--quiet", "--fail-on", "failed>=0")
    assert breach.code == 4
    assert breach.stderr.splitlines() == [
        "collect-ike-offline: error: --fail-on failed>=0 breached: 0; see the report"
    ]
