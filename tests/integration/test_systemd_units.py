"""contrib/systemd: ``systemd-analyze verify`` accepts the units (with the Prometheus drop-in
too), ``systemd-analyze security`` rates them well hardened, and the service's own command
line, expanded as systemd would, collects from a mock fleet over SSH.

The verify tests need ``systemd-analyze`` (Debian's ``systemd``, installed by
``scripts/install-system-deps``) and are skipped without it. ``verify`` insists that
ExecStart's binary exists, so it checks a copy whose ExecStart points at this venv's
``collect-ike-offline``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, SCRIPT

from mock_devices.fleet import write_password_file

UNITS = ROOT / "contrib" / "systemd"
INSTALLED = "/usr/local/bin/collect-ike-offline"
PASSWORD = "systemd-unit-pw"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit_names() -> list[str]:
    return sorted(path.name for path in UNITS.iterdir() if path.suffix in {".service", ".timer"})


def local_copy(directory: Path, drop_in: bool = False) -> list[Path]:
    """The units in ``directory`` with ExecStart at this venv's script (and the drop-in's
    [Service] section appended to the collect service, as systemd would merge it)."""
    directory.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in unit_names():
        text = (UNITS / name).read_text(encoding="utf-8")
        assert INSTALLED in text or name.endswith(".timer"), name
        text = text.replace(INSTALLED, str(SCRIPT))
        if drop_in and name == "collect-ike-offline.service":
            text += "\n" + (UNITS / "prometheus-textfile.conf").read_text(encoding="utf-8")
        path = directory / name
        path.write_text(text, encoding="utf-8")
        copies.append(path)
    return copies


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def directives(name: str) -> dict[str, list[str]]:
    """Key -> values of one unit file (continuation lines joined)."""
    text = (UNITS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@needs_analyze
@pytest.mark.parametrize("drop_in", [False, True], ids=["units", "with-prometheus-drop-in"])
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path, drop_in: bool) -> None:
    copies = local_copy(tmp_path / "units", drop_in)
    assert {path.name for path in copies} >= {
        "collect-ike-offline.service",
        "collect-ike-offline.timer",
    }
    done = analyze("verify", "--man=no", *(str(path) for path in copies), cwd=tmp_path)
    # Unknown keys and bad values are only warnings on stderr (exit 0): none allowed.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@needs_analyze
def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt hardening key is reported."""
    copies = local_copy(tmp_path / "units")
    service = next(path for path in copies if path.name == "collect-ike-offline.service")
    service.write_text(
        service.read_text(encoding="utf-8").replace("NoNewPrivileges=", "NoNewPrivilege="),
        encoding="utf-8",
    )
    done = analyze("verify", "--man=no", str(service), cwd=tmp_path)
    assert "NoNewPrivilege" in done.stderr


@needs_analyze
@pytest.mark.parametrize(
    "name", ["collect-ike-offline.service", "collect-ike-offline-prune.service"]
)
def test_services_are_hardened(tmp_path: Path, name: str) -> None:
    copies = local_copy(tmp_path / "units")
    service = next(path for path in copies if path.name == name)
    done = analyze("security", "--offline=yes", str(service), cwd=tmp_path)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout + done.stderr)
    assert match is not None, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0, done.stdout  # systemd: 0 safest .. 10 exposed


def test_units_say_what_the_issue_asks() -> None:
    service = directives("collect-ike-offline.service")
    assert service["Type"] == ["oneshot"]
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["collect-ike-offline"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert "/etc/collect-ike-offline/password.env" in service["EnvironmentFile"]
    assert all("PASSWORD" not in value for value in service.get("Environment", []))
    timer = directives("collect-ike-offline.timer")
    assert timer["Persistent"] == ["true"] and timer["WantedBy"] == ["timers.target"]


def expand(command: str, environ: dict[str, str]) -> list[str]:
    """ExecStart as systemd expands it: ``${VAR}`` in place, ``$VAR`` split into words."""
    words: list[str] = []
    for word in shlex.split(command):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            words.extend(environ.get(whole.group(1), "").split())
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: environ[m.group(1)], word))
    return words


def read_environment_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = " ".join(shlex.split(value))
    return values


def test_the_service_command_collects_from_a_fleet(mock_fleet: Any, tmp_path: Path) -> None:
    """The unit's ExecStart, with the directories systemd would create, over real SSH."""
    configuration, state = tmp_path / "etc", tmp_path / "state"
    state.mkdir()
    fleet = mock_fleet(
        {
            "defaults": {"username": "admin", "records": {"generate": {"count": 12, "seed": 4}}},
            "devices": [{"name": "ar-1"}, {"name": "fw-1", "layout": "firewall"}],
        },
        password=PASSWORD,
    )
    fleet.write_inventory(configuration / "inventory")
    write_password_file(configuration / "password.env", PASSWORD)  # IKE_COLLECTOR_PASSWORD=...
    textfile = tmp_path / "ike_offline.prom"
    (configuration / "collect.env").write_text(
        f"IKE_COLLECT_ARGS=--prometheus {textfile} --timeout 15\n", encoding="utf-8"
    )
    service = directives("collect-ike-offline.service")
    environ = {"CONFIGURATION_DIRECTORY": str(configuration), "STATE_DIRECTORY": str(state)}
    for file in service["EnvironmentFile"]:
        path = configuration / Path(file.lstrip("-")).name
        environ.update(read_environment_file(path))
    argv = expand(service["ExecStart"][0], environ)
    assert argv[0] == INSTALLED
    child_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), **environ}
    done = subprocess.run(
        [str(SCRIPT), *argv[1:]],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((state / "latest.json").read_text(encoding="utf-8"))
    assert {device["name"]: len(device["records"]) for device in report["devices"]} == {
        "ar-1": 12,
        "fw-1": 12,
    }
    assert (state / "history.sqlite3").is_file() and (state / "known_hosts").is_file()
    assert "ike_offline_devices" in textfile.read_text(encoding="utf-8")
    assert not (tmp_path / "home").exists()  # everything lives in the state directory
