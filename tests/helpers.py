"""What several test files share: where things are, and the real CLI run as an operator runs it.

The test tree mirrors the packages (``tests/unit/<package>``, ``tests/integration``,
``tests/e2e``); this module, the fixtures and the test servers stay at the top of
``tests/``, which ``tests/conftest.py`` puts on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.core import commands
from collector.core.commands import check_command
from collector.core.records import normalize_reason
from mock_devices.device import DeviceState

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
"""The checkout: ``collector/``, ``docs/``, ``contrib/``, ``bench/``..."""
FIXTURES = TESTS / "fixtures"
SAMPLES = FIXTURES / "offline_info"
"""One file per device case: ``<case>.txt`` is device output byte for byte."""


# --- what the mock holds, and what it was sent -------------------------------------------


def row_key(row: Any) -> tuple[Any, ...]:
    return (row.peer, normalize_reason(row.reason), row.version, row.time.isoformat())


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["peer"],
        normalize_reason(record["reason"]),
        record["ike_version"],
        record["offline_time"],
    )


def assert_matches_mock(device: dict[str, Any], state: DeviceState) -> None:
    assert device["status"] == "ok", device["error"]
    assert device["error"] is None
    rows = state.records()
    assert [record_key(r) for r in device["records"]] == [row_key(row) for row in rows]
    if state.layout == "firewall":
        assert [r["port"] for r in device["records"]] == [row.port for row in rows]
    assert device["record_count"] == len(rows)


def assert_read_only(state: DeviceState) -> None:
    """Every line the device received is on the allowed list; nothing was ever saved."""
    for entry in state.journal():
        where = (state.name, entry)
        if entry.kind == "command":
            check_command(entry.text)
        elif entry.kind == "answer":
            assert entry.text == commands.ANSWER_NO, where
        elif entry.kind == "key":
            assert entry.text == "space", where
        assert entry.kind not in ("config-saved", "password-change"), where
        assert entry.text.strip().upper() not in ("Y", "YES"), where
