"""PostgreSQL stopped mid-run (``pg_ctl stop -m immediate``, a crash), end to end: the real
CLI in its own process against mock devices over SSH, with a throwaway cluster of this test's
own. The collection goes on: every device is in ``--output`` and ``--prometheus``, the part
that was stored is whole (one transaction per device), the devices not stored are named in
one error line, the exit code is 5 (database error, not 70), and the next run stores what
was missing, once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SCRIPT
from pg_server import PgServer, find_pg_bin, running_server

from mock_devices.fleet import start_fleet

pytestmark = pytest.mark.postgres

PASSWORD = "db-failure-Pw-64"
COUNT = 8


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.fail("PostgreSQL server binaries not found: run 'make system-deps'")
    with running_server(pg_bin, durable=True) as server:
        yield server


def collector(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IKE_COLLECTOR_PASSWORD": PASSWORD, "NO_COLOR": "1"},
    )


def stored(url: str) -> dict[str, int]:
    """Per device in the history: deletions stored."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT d.name, (SELECT count(*) FROM deletions x WHERE x.device_id = d.id)"
            " FROM devices d"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}


def device_runs(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as connection:
            row = connection.execute("SELECT count(*) FROM device_runs").fetchone()
    except psycopg.Error:
        return 0  # the schema is not there yet
    return 0 if row is None else int(row[0])


def test_postgres_stopped_mid_run(own_server: PgServer, tmp_path: Path) -> None:
    url = own_server.url()
    spec = {
        "defaults": {
            "username": "admin",
            "latency_ms": 300,
            "records": {"generate": {"count": 20, "seed": 9}},
        },
        "devices": [{"name": f"pg-{n}"} for n in range(COUNT)],
    }
    report = tmp_path / "ike.json"
    metrics = tmp_path / "ike.prom"
    common = [
        "collect",
        "--known-hosts",
        str(tmp_path / "known_hosts"),
        "--db",
        url,
        "--lock-file",
        str(tmp_path / "lock"),
        "--workers",
        "1",
        "--timeout",
        "30",
        "--format",
        "json",
        "--records",
        "--output",
        str(report),
        "--prometheus",
        str(metrics),
    ]
    with start_fleet(spec, password=PASSWORD, inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        process = collector(*common, "--inventory", str(fleet.inventory_path))
        deadline = time.monotonic() + 120
        while device_runs(url) < 2:  # two devices stored: then the server crashes
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        own_server.stop("immediate")
        _, stderr = process.communicate(timeout=300)
        expected = {device.name: len(device.records()) for device in fleet.devices}

        assert process.returncode == 5, stderr
        assert "internal error" not in stderr and "Traceback" not in stderr
        # Every device is in the report and the metrics file, read in full.
        devices = {d["name"]: d for d in json.loads(report.read_text())["devices"]}
        assert {name: len(d["records"]) for name, d in devices.items()} == expected
        assert all(d["error"] is None for d in devices.values())
        assert 'ike_offline_devices{status="ok"} 8.0' in metrics.read_text()

        own_server.start()
        first = stored(url)
        # What was stored is whole: each stored device with all its deletions.
        assert first and all(first[name] == expected[name] for name in first)
        missing = sorted(set(expected) - set(first))
        assert missing
        lines = [line for line in stderr.splitlines() if "database failed" in line]
        assert len(lines) == 1, stderr
        assert f": {len(missing)} devices not stored ({', '.join(missing[:5])}" in lines[0]
        assert lines[0].startswith(
            "collect-ike-offline: error: the history database failed during the run ("
        )
        assert "the next run stores what their buffers still hold" in lines[0]

        # The next run picks up: everything stored, nothing twice.
        again = collector(*common, "--inventory", str(fleet.inventory_path))
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr
        assert stored(url) == expected
