"""The fan-out runner: retries, deadlines, isolation, progress; then a whole mock fleet."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import invoke

from collector.core.commands import InvalidPeer
from collector.core.protocols import Progress
from collector.core.records import Device, DeviceResult, DeviceStatus, ErrorKind
from collector.fleet import run
from collector.fleet.run import auto_processes, collect_fleet, iter_fleet
from collector.inventory.loading import load_inventory
from collector.ssh.breaker import LoginGate
from collector.ssh.credentials import Credentials, Secret
from collector.ssh.factory import make_transport
from collector.ssh.hostkeys import KnownHosts
from collector.ssh.protocol import RunOptions
from mock_devices.fleet import start_fleet
from mock_devices.process import start_fleet_process

CREDENTIALS = Credentials("admin", Secret("run-canary-Pw"))


class FakeTransport:
    """A transport that answers from a script: device name -> list of outcomes per attempt.

    An outcome is an ErrorKind (failure), ``"ok"``, ``"raise"``, ``"hang"`` (sleep far past
    the deadline, ignoring it, as a broken library call would) or ``"die"`` (SIGKILL the
    process it runs in: a crashed collector process).
    """

    name = "fake"
    known_hosts: KnownHosts | None = None

    def __init__(self, script: dict[str, list[str | ErrorKind]]) -> None:
        self.script = script
        self.calls: Counter[str] = Counter()
        self.kwargs: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def collect(
        self,
        device: Device,
        credentials: Credentials,
        *,
        peer: str | None = None,
        timeout: float = 30.0,
        clock: bool = False,
        keep_raw: bool = False,
        login_gate: LoginGate | None = None,
    ) -> DeviceResult:
        with self.lock:
            attempt = self.calls[device.name]
            self.calls[device.name] += 1
            self.kwargs.append({"peer": peer, "timeout": timeout, "clock": clock})
        outcomes = self.script.get(device.name, ["ok"])
        outcome = outcomes[min(attempt, len(outcomes) - 1)]
        if outcome == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if outcome == "raise":
            raise RuntimeError("bug in one device's path")
        if outcome == "hang":
            self.release.wait(60)
            return DeviceResult(device, DeviceStatus.OK)
        if outcome == "ok":
            return DeviceResult(device, DeviceStatus.OK, started=datetime.now(UTC))
        assert isinstance(outcome, ErrorKind)
        return DeviceResult.failure(device, outcome, f"scripted {outcome.value}")


def devices(*names: str) -> list[Device]:
    return [Device(name, f"192.0.2.{n + 1}") for n, name in enumerate(names)]


def test_results_in_inventory_order_with_attempts() -> None:
    fake = FakeTransport(
        {
            "flaky": [ErrorKind.UNREACHABLE, "ok"],
            "down": [ErrorKind.UNREACHABLE],
            "slowpoke": [ErrorKind.TIMEOUT, ErrorKind.TIMEOUT, "ok"],
            "badpw": [ErrorKind.AUTH],
            "impostor": [ErrorKind.HOST_KEY],
            "refuses": [ErrorKind.COMMAND_REJECTED],
            "garbage": [ErrorKind.PROTOCOL],
        }
    )
    names = ["a", "flaky", "down", "slowpoke", "badpw", "impostor", "refuses", "garbage", "z"]
    results = collect_fleet(devices(*names), CREDENTIALS, fake, RunOptions(retries=2, backoff=0.01))
    assert [r.device.name for r in results] == names
    by_name = {r.device.name: r for r in results}
    assert by_name["a"].ok and by_name["a"].attempts == 1
    assert by_name["flaky"].ok and by_name["flaky"].attempts == 2
    assert not by_name["down"].ok and by_name["down"].attempts == 3
    assert by_name["slowpoke"].ok and by_name["slowpoke"].attempts == 3
    for name in ("badpw", "impostor", "refuses", "garbage"):  # never retried
        assert by_name[name].attempts == 1 and fake.calls[name] == 1


def test_no_retries_by_request() -> None:
    fake = FakeTransport({"down": [ErrorKind.UNREACHABLE]})
    [result] = collect_fleet(devices("down"), CREDENTIALS, fake, RunOptions(retries=0))
    assert result.attempts == 1 and fake.calls["down"] == 1


def test_retry_kinds_are_configurable() -> None:
    fake = FakeTransport({"cut": [ErrorKind.INCOMPLETE_OUTPUT, "ok"]})
    [result] = collect_fleet(
        devices("cut"),
        CREDENTIALS,
        fake,
        RunOptions(retries=1, backoff=0.01, retry_on=frozenset({ErrorKind.INCOMPLETE_OUTPUT})),
    )
    assert result.ok and result.attempts == 2


def test_an_exception_in_one_device_does_not_affect_the_others() -> None:
    fake = FakeTransport({"broken": ["raise"]})
    results = collect_fleet(devices("a", "broken", "b"), CREDENTIALS, fake, RunOptions(workers=2))
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None and error.kind is ErrorKind.PROTOCOL
    assert "internal error" in error.message


@pytest.mark.timeout(30)
def test_a_hung_library_call_is_abandoned_as_timeout() -> None:
    fake = FakeTransport({"stuck": ["hang"]})
    try:
        results = collect_fleet(
            devices("stuck", "a", "b", "c"),
            CREDENTIALS,
            fake,
            RunOptions(workers=1, timeout=0.3, grace=0.3, retries=0),
        )
    finally:
        fake.release.set()
    stuck = results[0]
    assert stuck.error is not None and stuck.error.kind is ErrorKind.TIMEOUT
    assert "abandoned" in stuck.error.message
    # With one worker stuck, a replacement worker still read the others.
    assert all(r.ok for r in results[1:])


def test_iterator_yields_each_result_and_progress_counts() -> None:
    fake = FakeTransport({"x": [ErrorKind.AUTH]})
    seen: list[Progress] = []
    names = ["a", "b", "x", "c"]
    results = list(
        iter_fleet(
            devices(*names), CREDENTIALS, fake, RunOptions(workers=3), on_progress=seen.append
        )
    )
    assert sorted(r.device.name for r in results) == sorted(names)
    done = [p.done for p in seen]  # each result, plus looks at the stragglers while waiting
    assert done == sorted(done) and {1, 2, 3, 4} <= set(done) and done[-1] == 4
    assert seen[-1].failed == 1 and seen[-1].ok == 3 and seen[-1].total == 4
    assert seen[-1].rate > 0 and seen[-1].eta == 0


def test_on_result_is_called_as_devices_finish() -> None:
    fake = FakeTransport({})
    stored: list[str] = []
    collect_fleet(
        devices("a", "b"), CREDENTIALS, fake, on_result=lambda r: stored.append(r.device.name)
    )
    assert sorted(stored) == ["a", "b"]


def test_options_reach_the_transport() -> None:
    fake = FakeTransport({})
    collect_fleet(
        devices("a"), CREDENTIALS, fake, RunOptions(peer="10.0.0.1", timeout=7, clock=True)
    )
    assert fake.kwargs == [{"peer": "10.0.0.1", "timeout": 7, "clock": True}]


def test_invalid_peer_is_refused_before_any_device_is_touched() -> None:
    fake = FakeTransport({})
    with pytest.raises(InvalidPeer):
        collect_fleet(devices("a"), CREDENTIALS, fake, RunOptions(peer="10.0.0.1; save"))
    assert not fake.calls


def test_empty_fleet() -> None:
    assert collect_fleet([], CREDENTIALS, FakeTransport({})) == []


def test_progress_eta() -> None:
    assert Progress(10, 0, 0, 1.0).eta is None
    assert Progress(10, 5, 1, 5.0).eta == pytest.approx(5.0)


# --- a whole mock fleet over real SSH -------------------------------------------------

EXPECTED_KINDS = {
    "f-wrong-credentials": ErrorKind.AUTH,
    "f-port-closed": ErrorKind.UNREACHABLE,
    "f-hang-no-banner": ErrorKind.TIMEOUT,
    "f-very-slow": ErrorKind.TIMEOUT,
    "f-drop-mid-output": ErrorKind.INCOMPLETE_OUTPUT,
    "f-command-unsupported": ErrorKind.COMMAND_REJECTED,
    "f-truncated-table": ErrorKind.INCOMPLETE_OUTPUT,
    "f-garbage-output": ErrorKind.PROTOCOL,
    "f-huge-table": ErrorKind.OVERSIZED_OUTPUT,
    "f-endless-output": ErrorKind.OVERSIZED_OUTPUT,
}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_fault_fleet_end_to_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """Every device of the fault scenario at once, at the highest log level, with retries."""
    password = "Fleet-canary-8842"
    caplog.set_level(logging.DEBUG)
    fleet = start_fleet("faults", password=password)
    try:
        inventory = [
            Device(s.name, s.host, s.port, platform=s.spec.platform) for s in fleet.devices
        ]
        transport = make_transport(name, known_hosts=KnownHosts(tmp_path / "known_hosts"))
        results = collect_fleet(
            inventory,
            Credentials("admin", Secret(password)),
            transport,
            RunOptions(
                workers=8, timeout=8, retries=1, backoff=0.1, clock=True
            ),  # f-slow: 3 x 1.5 s
        )
        for result in results:
            state = fleet.device(result.device.name)
            expected = EXPECTED_KINDS.get(state.name)
            if expected is None:
                assert result.ok, (state.name, result.error)
                assert len(result.records) == len(state.records())
            else:
                assert result.error is not None, state.name
                assert result.error.kind is expected, (state.name, result.error)
            retried = expected in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT)
            assert result.attempts == (2 if retried else 1), (state.name, result.attempts)
            assert password not in repr(result)
    finally:
        fleet.stop()
    assert password not in caplog.text
    assert "display ike offline-info" in caplog.text


# --- several processes ----------------------------------------------------------------


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let tiny fleets use several processes (normally 25 devices per process at least)."""
    monkeypatch.setattr(run, "MIN_DEVICES_PER_PROCESS", 1)


def test_auto_processes() -> None:
    assert auto_processes(10) == 1
    assert auto_processes(1000) == max(1, min(os.cpu_count() or 1, 4))


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_cli_refuses_a_bad_process_count(value: str, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("r1:\n  hostname: 192.0.2.1\n")
    result = invoke("collect", "--inventory", str(inventory), "--processes", value)
    assert result.code == 2
    assert "--processes" in result.stderr and "'auto'" in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("small_shards")
def test_processes_report_every_device_once_with_its_kind() -> None:
    fake = FakeTransport({"badpw": [ErrorKind.AUTH], "flaky": [ErrorKind.UNREACHABLE, "ok"]})
    names = ["a", "badpw", "b", "flaky", "c", "d", "e"]
    inventory = devices(*names)
    seen: list[Progress] = []
    results = collect_fleet(
        inventory,
        CREDENTIALS,  # its Secret cannot be pickled: the children inherit it (fork)
        fake,
        RunOptions(workers=4, processes=2, backoff=0.01),
        on_progress=seen.append,
    )
    assert [r.device.name for r in results] == names
    assert all(r.device is d for r, d in zip(results, inventory, strict=True))
    by_name = {r.device.name: r for r in results}
    assert by_name["badpw"].error is not None
    assert by_name["badpw"].error.kind is ErrorKind.AUTH and by_name["badpw"].attempts == 1
    assert by_name["flaky"].ok and by_name["flaky"].attempts == 2  # retried in its child
    assert [p.done for p in seen] == list(range(1, len(names) + 1)) and seen[-1].failed == 1
    assert not fake.calls  # every device was read in a child, none in this process


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("small_shards")
def test_a_child_that_dies_has_its_devices_reported_failed() -> None:
    # Two processes of one worker: shard 1 = a, dies, c, e; shard 2 = b, d, f.
    fake = FakeTransport({"dies": ["die"]})
    names = ["a", "b", "dies", "d", "c", "f", "e"]
    results = list(
        iter_fleet(devices(*names), CREDENTIALS, fake, RunOptions(workers=2, processes=2))
    )
    assert sorted(r.device.name for r in results) == sorted(names)
    by_name = {r.device.name: r for r in results}
    for name in ("b", "d", "f"):
        assert by_name[name].ok, name
    for name in ("dies", "c", "e"):
        error = by_name[name].error
        assert error is not None and error.kind is ErrorKind.PROTOCOL, name
        assert "collector process 1 ended (killed by signal 9)" in error.message


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("small_shards")
def test_stopping_the_parent_stops_the_children() -> None:
    # As on Ctrl-C or an exception in on_result: the consumer leaves the iterator early.
    fake = FakeTransport({"stuck-1": ["hang"], "stuck-2": ["hang"]})
    names = ["a", "b", "stuck-1", "stuck-2"]
    results = iter_fleet(devices(*names), CREDENTIALS, fake, RunOptions(workers=4, processes=2))
    first = next(results)
    children = multiprocessing.active_children()
    assert first.device.name in ("a", "b") and len(children) == 2
    results.close()
    assert not multiprocessing.active_children()
    assert all(child.exitcode == -signal.SIGTERM for child in children)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("small_shards")
@pytest.mark.parametrize("name", ["netmiko", "asyncssh"])
def test_processes_over_real_ssh_match_one_process(tmp_path: Path, name: str) -> None:
    password = "Shard-canary-5521"
    credentials = Credentials("admin", Secret(password))
    # The mock fleet in a process of its own: forked children must not inherit a thread
    # that is inside the SSH server (an OpenSSL or logging lock held at the fork is held
    # forever in the child). The CLI forks before it starts any thread, as here.
    fleet = start_fleet_process(
        tmp_path / "fleet", ["--scenario", "fleet", "--count", "6"], password=password
    )
    try:
        served = load_inventory(fleet.inventory_path).devices
        inventory = [*served, Device("closed", "127.0.0.1", _closed_port())]
        known_hosts = tmp_path / "known_hosts"
        store = KnownHosts(known_hosts)
        transport = make_transport(name, known_hosts=store)
        options: dict[str, Any] = {"workers": 4, "timeout": 10, "retries": 0}
        # This process reads the file and trusts two devices; the children trust the rest
        # (each key once in the file, all of them in this process's summary), and neither
        # a second sharded run nor a run in this process trusts any key again.
        collect_fleet(inventory[:2], credentials, transport, RunOptions(processes=1, **options))
        sharded = collect_fleet(
            inventory, credentials, transport, RunOptions(processes=2, **options)
        )
        lines = known_hosts.read_text().splitlines()
        assert len(lines) == len(set(lines)) == len(served)
        trusted = store.trusted
        assert sorted(name for name, _, _ in trusted) == sorted(d.name for d in served)
        collect_fleet(inventory, credentials, transport, RunOptions(processes=2, **options))
        single = collect_fleet(
            inventory, credentials, transport, RunOptions(processes=1, **options)
        )
        assert known_hosts.read_text().splitlines() == lines
        assert len(store.trusted) == len(served)
    finally:
        fleet.stop()
    assert [r.device.name for r in sharded] == [d.name for d in inventory]
    for one, many in zip(single, sharded, strict=True):
        assert one.status is many.status and one.records == many.records, one.device.name
    closed = sharded[-1].error
    assert closed is not None and closed.kind is ErrorKind.UNREACHABLE
    assert all(r.ok and len(r.records) == 200 for r in sharded[:-1])
    assert password not in repr(sharded)
