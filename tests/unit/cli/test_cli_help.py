"""Each command's --help is its own (exit codes, -q/-v texts), and the words a new user reads
are right: plurals, the JSON schema version, ``parse`` saying it waits for stdin."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import collect_argv, invoke, on_a_terminal

from collector.cli.main import main
from mock_devices.fleet import start_fleet


def help_text(command: str) -> str:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    return " ".join(result.stdout.split())


def test_collect_help_lists_its_exit_codes() -> None:
    text = help_text("collect")
    for code in ("0 every device was read", "3 every device failed", "5 the history database"):
        assert code in text
    assert "75 another run holds the lock" in text and "130 interrupted" in text
    assert "-v each device" in text and "one summary line" in text


@pytest.mark.parametrize("command", ["report", "prune", "export"])
def test_report_and_prune_help_list_their_own(command: str) -> None:
    text = help_text(command)
    assert "every device failed" not in text and "holds the lock" not in text
    assert "-v each device" not in text and "progress bar" not in text
    assert "130 interrupted" in text and "70 internal error" in text
    if command == "prune":
        assert "1 cancelled at the confirmation question" in text
    elif command == "report":
        assert "0 the report was written" in text
    else:
        assert "0 the deletions of the window were written" in text


def test_plurals_and_schema_version(tmp_path: Path) -> None:
    spec = {
        "defaults": {"username": "admin", "records": {"generate": {"count": 1, "seed": 1}}},
        "devices": [{"name": "solo"}],
    }
    with start_fleet(spec, password="plural-pw", inventory=tmp_path / "inv") as fleet:
        assert fleet.inventory_path is not None
        common = collect_argv(fleet.inventory_path, tmp_path, "--no-store")
        env = {"IKE_COLLECTOR_PASSWORD": "plural-pw", "NO_COLOR": "1"}
        table = invoke(*common, "-v", env=env)
        document = invoke(*common, "--format", "json", env=env)
    assert table.code == 0, table.stderr
    assert "collecting from 1 device (1 worker, asyncssh transport)" in table.stderr
    assert "trusted the host keys of 1 new device on first use" in table.stderr
    assert "Totals: 1 device (1 ok, 0 failed), " in table.stdout
    assert re.search(r"Totals: .*, 1 (disruptive )?deletion(,| \().*\b1 peer\b", table.stdout)
    assert json.loads(document.stdout)["schema_version"] == 1


def test_parse_says_it_reads_the_terminal() -> None:
    """``parse`` without a FILE on a terminal says what it waits for instead of hanging mute."""
    _, stdout, stderr = on_a_terminal(
        "parse", "--format", "json", typed=b"  Current info Num :0\n\x04"
    )
    assert "reading display ike offline-info output from the terminal; end with Ctrl-D" in stderr
    assert json.loads(stdout)["records"] == []
