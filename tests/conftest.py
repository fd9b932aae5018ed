"""Shared pytest configuration: plugins that start mock fleets and test servers.

``db_target`` runs a test once on SQLite and once on the throwaway PostgreSQL server;
``store`` is the history store opened on it. The whole session runs with its own
``XDG_DATA_HOME``: a test that relies on the default history or run lock never meets the
operator's files, nor another test session's lock.

The plain helpers the test files share (paths, the CLI run as an operator runs it, what the
mock holds) are in ``helpers.py``; hand-made data two files need is in ``handmade.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.history.store import Store, open_store

pytest_plugins = ["mock_devices.pytest_plugin", "pg_server", "sshd_server"]


@pytest.fixture(autouse=True, scope="session")
def _own_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with open_store(db_target) as opened:
        yield opened
