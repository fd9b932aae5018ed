"""The layer contract (``.importlinter``) holds, and breaks on a wrong import.

``make lint`` runs ``lint-imports`` on the checkout; these tests run it too, and on a
copy of the package with one deliberately wrong import, to prove the contract can fail
and names the offending import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(where))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_checkout_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    for name in ("Layers:", "The core imports no third-party package", "No cycles"):
        assert name in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "offence"),
    [
        (
            "core/clock.py",
            "import click",
            "collector.core is not allowed to import click",
            "collector.core.clock -> click",
        ),
        (
            "ssh/deadline.py",
            "import collector.fleet.run",
            "collector.ssh is not allowed to import collector.fleet",
            "collector.ssh.deadline -> collector.fleet.run",
        ),
        (
            "core/terminal.py",
            "from collector.core import parse",
            "No cycles are allowed in collector.core",
            ".terminal -> .parse|.parse -> .terminal",
        ),
    ],
)
def test_a_wrong_import_breaks_the_contract_and_is_named(
    tmp_path: Path, module: str, line: str, contract: str, offence: str
) -> None:
    shutil.copytree(
        ROOT / "collector", tmp_path / "collector", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / "collector" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")

    done = lint_imports(tmp_path)

    assert done.returncode != 0, done.stdout
    assert contract in done.stdout, done.stdout
    assert any(one in done.stdout for one in offence.split("|")), done.stdout
