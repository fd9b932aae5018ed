"""``--connect-timeout`` end to end: a device that accepts TCP and never sends its SSH banner
frees its worker after the connect timeout, not the whole ``--timeout``, and is not tried a
third time once it timed out twice in the same phase. Asserted on what the operator sees and
what the history records (attempts), never on seconds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers import collect

from mock_devices.fleet import start_fleet

PASSWORD = "connect-timeout-Pw-9"


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
def test_hanging_device_ends_at_the_connect_timeout(tmp_path: Path, transport: str) -> None:
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 4, "seed": 2}}},
        "devices": [{"name": "fine"}, {"name": "hangs", "faults": ["hang_no_banner"]}],
    }
    db = tmp_path / "history.sqlite3"
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        result = collect(
            fleet.inventory_path,
            tmp_path,
            *("--connect-timeout", "1", "--retries", "5", "--format", "json"),
            *("--transport", transport),
            password=PASSWORD,
            timeout=600,
            env={"NO_COLOR": "1"},
        )
    assert result.code == 1, result.stderr
    devices = result.devices()
    assert devices["fine"]["error"] is None
    error = devices["hangs"]["error"]
    assert error == {
        "kind": "timeout",
        "message": "no prompt within 1 s of connecting (--connect-timeout;"
        " during SSH negotiation and login)",
    }
    assert f"hangs: timeout: {error['message']}" in result.stderr
    with sqlite3.connect(db) as connection:
        (attempts,) = connection.execute(
            "SELECT attempts FROM device_runs JOIN devices ON devices.id = device_runs.device_id"
            " WHERE devices.name = 'hangs'"
        ).fetchone()
    connection.close()
    # --retries 5 allows 6 attempts; the second timeout in the same phase ends it.
    assert attempts == 2


def _start_order(db: Path, run: int) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT devices.name FROM device_runs JOIN devices ON devices.id ="
            " device_runs.device_id WHERE device_runs.run_id = ? ORDER BY device_runs.started",
            (run,),
        ).fetchall()
    connection.close()
    return [name for (name,) in rows]


@pytest.mark.parametrize("transport", ["asyncssh", "netmiko"])
def test_a_device_that_timed_out_last_run_is_started_first(tmp_path: Path, transport: str) -> None:
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 3, "seed": 4}}},
        "devices": [
            {"name": "a-fine"},
            {"name": "b-fine"},
            {"name": "c-fine"},
            {"name": "d-hangs", "faults": ["hang_no_banner"]},
        ],
    }
    db = tmp_path / "history.sqlite3"
    options = ("--connect-timeout", "1", "--retries", "0", "--workers", "1", "--format", "json")
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        runs = [
            collect(
                fleet.inventory_path,
                tmp_path,
                *options,
                *("--transport", transport),
                password=PASSWORD,
                timeout=600,
                env={"NO_COLOR": "1"},
            )
            for _ in range(2)
        ]
    for run in runs:
        assert run.code == 1, run.stderr
        # The report keeps the inventory's order whatever the start order.
        assert list(run.devices()) == ["a-fine", "b-fine", "c-fine", "d-hangs"]
        assert run.devices()["d-hangs"]["error"]["kind"] == "timeout"
    assert _start_order(db, 1) == ["a-fine", "b-fine", "c-fine", "d-hangs"]
    # The silent one first: it holds no auth breaker slot (taken at authentication), so
    # the others do not wait for it to time out before they log in.
    assert _start_order(db, 2) == ["d-hangs", "a-fine", "b-fine", "c-fine"]
