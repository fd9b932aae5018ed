"""Shared pytest configuration: plugins that start mock fleets and test servers.

``db_target`` runs a test once on SQLite and once on the throwaway PostgreSQL server;
``store`` is the history store opened on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.store import Store, open_store

pytest_plugins = ["mock_devices.pytest_plugin", "pg_server", "sshd_server"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with open_store(db_target) as opened:
        yield opened
