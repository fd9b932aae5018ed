"""Smoke run of the export benchmark (tiny, no timing assertions) so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def test_bench_export_tiny() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_export", "--sizes", "400,1000", "--format", "csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "|    1,000 |            1,000 |" in result.stdout
