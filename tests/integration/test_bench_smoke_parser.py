"""Smoke test of bench/bench_parser.py: it runs, agrees with TextFSM, prints its table.

No timing assertions: speed is measured by running the benchmark, not by tests.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest
from helpers import ROOT


@pytest.fixture
def bench_parser(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # bench/ is not an installed package: import it from the checkout.
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench.bench_parser")


def test_bench_parser_runs_as_documented_with_tiny_numbers() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_parser",
            "--rows",
            "12",
            "--repeat",
            "1",
            "--number",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "12 rows" in out
    assert "collector.core.parse (typed records)" in out
    assert "textfsm, template in output order" in out
    assert "textfsm, tuned template" in out


def test_bench_output_has_single_space_rows_both_parsers_read(bench_parser: ModuleType) -> None:
    text = bench_parser.build_output(20)
    assert " ikev1 phase1-phase2 sa dependent offline v" in text
    natural, _ = bench_parser.textfsm_parser(bench_parser.TEXTFSM_TEMPLATE)
    tuned, _ = bench_parser.textfsm_parser(bench_parser.TEXTFSM_TEMPLATE_TUNED)
    assert bench_parser.check_same_rows(text, [natural, tuned]) > 0


def test_bench_rejects_non_positive_numbers(bench_parser: ModuleType) -> None:
    with pytest.raises(SystemExit) as caught:
        bench_parser.main(["--rows", "0"])
    assert caught.value.code == 2
