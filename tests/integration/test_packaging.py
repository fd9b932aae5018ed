"""The package as a user installs it: ``python -m build`` (sdist, then the wheel built from
that sdist), ``twine check``, and the wheel installed into a fresh venv outside the
checkout, where ``--version``, ``parse`` and the demo fleet must work.

Slow (a venv and ``pip install`` of the wheel and its dependencies, from pip's cache or the
configured index): run by ``make test``, skipped by ``make test-fast``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, SAMPLES

import collector

pytestmark = pytest.mark.slow

FIXTURE = SAMPLES / "reference_ar.txt"


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def checkout_copy(destination: Path) -> Path:
    """The files a clean clone has (tracked, plus new ones not ignored), nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    base = tmp_path_factory.mktemp("packaging")
    source = checkout_copy(base / "src")
    out = base / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=base)
    return out


def test_build_makes_a_wheel_and_sdist_twine_accepts(dist: Path) -> None:
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    version = collector.__version__
    assert wheels[0].name == f"collect_ike_offline-{version}-py3-none-any.whl"
    done = run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, [*wheels, *sdists])], dist
    )
    assert done.stdout.count("PASSED") == 2

    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert {
        "collector/api.py",
        "collector/nornir.py",
        "mock_devices/scenarios/demo.yaml",
        "mock_devices/scenarios/faults.yaml",
        "mock_devices/scenarios/fleet.yaml",
    } <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
    metadata = (
        zipfile.ZipFile(wheels[0])
        .read(f"collect_ike_offline-{version}.dist-info/METADATA")
        .decode()
    )
    assert f"\nVersion: {version}\n" in metadata
    assert "Provides-Extra: nornir" in metadata

    with tarfile.open(sdists[0]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {
        "docs/API.md",
        "contrib/grafana/ike-offline.json",
        "contrib/systemd/collect-ike-offline.service",
        "contrib/systemd/collect-ike-offline.timer",
        "mock_devices/scenarios/demo.yaml",
        "CHANGELOG.md",
    } <= members


def test_wheel_in_a_fresh_venv_outside_the_checkout(dist: Path, tmp_path: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    bin_dir = venv / "bin"
    run(
        [
            str(bin_dir / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{wheel}[mock]",
        ],
        tmp_path,
    )

    where = run(
        [
            str(bin_dir / "python"),
            "-c",
            "import collector, mock_devices;"
            " print(collector.__file__); print(mock_devices.__file__)",
        ],
        tmp_path,
    ).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where

    version = run([str(bin_dir / "collect-ike-offline"), "--version"], tmp_path).stdout
    assert version.strip() == f"collect-ike-offline, version {collector.__version__}"

    shutil.copy(FIXTURE, tmp_path / "saved.txt")
    parsed = run(
        [str(bin_dir / "collect-ike-offline"), "parse", "saved.txt", "--format", "json"], tmp_path
    )
    records = json.loads(parsed.stdout)["records"]
    assert [(r["peer"], r["reason_code"], r["offline_time"]) for r in records] == [
        ("2.1.1.2", "dpd_timeout", "2017-02-18T02:12:39"),
        ("2.1.1.2", "dpd_timeout", "2017-02-18T01:17:06"),
    ]

    # make demo's command, from the installed package: the shipped demo scenario, a mock
    # fleet over SSH, one collection, the fleet report.
    demo = run([str(bin_dir / "python"), "-m", "mock_devices.demo"], tmp_path, timeout=300)
    for name in ("ar-bj-01", "fw-bj-01", "ar-gz-02"):
        assert name in demo.stdout, demo.stdout
    assert "auth" in demo.stdout
