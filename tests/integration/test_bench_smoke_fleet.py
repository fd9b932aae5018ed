"""Smoke run of the fleet benchmark (tiny, no timing assertions) so it cannot rot.

3 mock devices, 2 workers, 5 records, no added latency: every method must read every row,
print its line of the table, and leave the repository as it was (no ``nornir.log``, no
results appended without ``--write-md``).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers import ROOT


def run_bench(*options: str) -> subprocess.CompletedProcess[str]:
    """``python -m bench.bench_fleet OPTIONS`` from the checkout, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench.bench_fleet", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def bench_fleet(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # bench/ is not an installed package: import it from the checkout.
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench.bench_fleet")


def test_bench_fleet_tiny_run_reads_every_row_with_every_method(
    bench_fleet: ModuleType, tmp_path: Path
) -> None:
    docs = ROOT / "docs" / "BENCHMARKS.md"
    before = docs.read_bytes() if docs.exists() else b""
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n", encoding="utf-8")
    completed = run_bench(
        "--devices",
        "3",
        "--workers",
        "2",
        "--records",
        "5",
        "--latency-ms",
        "0",
        "--probe-repeat",
        "1",
        "--rounds",
        "2",
        "--single-address",
        "--stages",
        "--write-md",
        "--md-path",
        str(markdown),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    for transport in ("netmiko", "asyncssh"):
        assert f"(a) collect-ike-offline collect --transport {transport} (store on" in out
        assert f"(a) collect again, {transport}" in out
    assert "(b) Nornir + nornir_netmiko" in out
    assert "(c) netmiko sequential loop (3 devices, extrapolated)" in out
    assert "(d) paramiko alone, sequential (3 devices, extrapolated; the SSH floor)" in out
    assert out.count("| 3/3 ") == 7  # every device read in full by every method (last round)
    assert "| method, 2 rounds" in out and "speed vs (b) of its round" in out
    assert "running collect (round 2) ..." in out
    assert "stages: 3/3 devices read in full" in out
    assert "store again (unchanged snapshots)" in out
    assert "PROBLEM" not in completed.stderr
    assert not (ROOT / "nornir.log").exists()
    assert (docs.read_bytes() if docs.exists() else b"") == before
    written = markdown.read_text(encoding="utf-8")
    assert "## Fleet" in written and "### 3 devices, 5 records, 0 ms latency" in written
    assert "| (b) Nornir + nornir_netmiko" in written
    assert written.rstrip().endswith(bench_fleet.MD_MARKER)


def test_bench_fleet_wan_mode_reads_the_answering_devices_and_times_out_the_hanging_one() -> None:
    completed = run_bench(
        "--devices",
        "4",
        "--records",
        "5",
        "--latency-ms",
        "20",
        "--login-delay-ms",
        "100",
        "--hanging-share",
        "0.25",
        "--connect-timeout",
        "1",
        "--methods",
        "collect",
        "--transports",
        "asyncssh",
        "--collect-runs",
        "1",
        "--probe-repeat",
        "1",
        "--single-address",
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "(a) collect-ike-offline collect --transport asyncssh (store on" in out
    assert "| 3/3 " in out  # the three answering devices read in full
    assert "1/1 hanging devices reported as timeout" in out
    assert "100 ms login delay, 1 hanging (no SSH banner)" in out
    assert "PROBLEM" not in completed.stderr


def test_write_markdown_inserts_above_the_marker(bench_fleet: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Parser\n\ntext\n", encoding="utf-8")
    bench_fleet.write_markdown(path, "### first\n")
    bench_fleet.write_markdown(path, "### second\n")
    text = path.read_text(encoding="utf-8")
    assert text.count("## Fleet") == 1
    assert text.index("## Parser") < text.index("### first") < text.index("### second")
    assert text.rstrip().endswith(bench_fleet.MD_MARKER)


def test_scenario_has_the_asked_latency_and_records(
    bench_fleet: ModuleType, tmp_path: Path
) -> None:
    import yaml

    path = bench_fleet.write_scenario(tmp_path / "s.yaml", 50, 120)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["defaults"]["latency_ms"] == 50
    assert data["defaults"]["records"] == {"generate": {"count": 120, "seed": 7}}
    assert data["template"]["faulty_fraction"] == 0.0
    assert "login_delay_ms" not in data["defaults"]


def test_wan_scenario_has_the_login_delay_and_the_hanging_share(
    bench_fleet: ModuleType, tmp_path: Path
) -> None:
    from mock_devices.scenario import Fault, load_scenario

    path = bench_fleet.write_scenario(
        tmp_path / "s.yaml", 300, 10, login_delay_ms=1000, hanging_share=0.05
    )
    devices = load_scenario(path, "pw", 200).devices
    assert {device.login_delay_ms for device in devices} == {1000}
    assert sum(device.faults == {Fault.HANG_NO_BANNER} for device in devices) == 10
    assert sum(not device.faults for device in devices) == 190


@pytest.mark.parametrize(
    "args",
    [
        ["--devices", "0"],
        ["--records", "201"],
        ["--methods", "collect,ansible"],
        ["--workers", "0"],
        ["--hanging-share", "0.9"],
        ["--login-delay-ms", "-1"],
        ["--connect-timeout", "0"],
    ],
)
def test_bad_options_are_usage_errors(bench_fleet: ModuleType, args: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        bench_fleet.main(args)
    assert caught.value.code == 2
