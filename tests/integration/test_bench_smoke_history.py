"""Smoke run of the history benchmark (tiny, no timing assertions) so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_history", "--devices", "5", "--records", "20", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_history_sqlite_tiny() -> None:
    out = _run("--backend", "sqlite", "--repeat", "1")
    assert "| sqlite | 100 |" in out and "(0) |" in out


def test_bench_history_sqlite_random_peers_tiny() -> None:
    out = _run("--backend", "sqlite", "--peers", "random", "--repeat", "1")
    assert "| sqlite | 100 |" in out and "(0) |" in out


def test_bench_history_breakdown_accounts_for_every_statement() -> None:
    out = _run("--backend", "sqlite", "--repeat", "1", "--breakdown")
    for line in (
        "INSERT INTO deletions (executemany)",
        "COMMIT",
        "all SQL statements",
        "Python around them (keys, diff, roll-ups)",
        "record_device, in all",
    ):
        assert f"| {line}" in out, line


@pytest.mark.postgres
def test_bench_history_postgres_tiny(pg_url: str) -> None:
    assert "| postgres | 100 |" in _run("--backend", "postgres", "--pg-url", pg_url)
