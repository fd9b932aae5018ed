"""``collect`` usage and configuration errors (exit 2, one line, nothing connects), the
internal-error guard, and the pure helpers behind the command: option values, logging,
the progress bar."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import Run, invoke

import collector.fleet.collect
from collector.core.options import (
    breached,
    format_duration,
    parse_duration,
    parse_moment,
    parse_threshold,
    threshold_counts,
)
from collector.core.protocols import Progress
from collector.output.logs import cli_logging, color_enabled
from collector.output.progress import ProgressBar, progress_line

PASSWORD = "canary-Cli-pw-5150"


def write_inventory(directory: Path, text: str | None = None) -> Path:
    path = directory / "hosts.yaml"
    path.write_text(
        text or "r1:\n  hostname: 127.0.0.1\n  port: 1\n  username: admin\n  data: {site: par1}\n"
    )
    return path


def collect(tmp_path: Path, *args: str, env: dict[str, str | None] | None = None) -> Run:
    db, known_hosts = str(tmp_path / "h.sqlite3"), str(tmp_path / "kh")
    return invoke(
        "collect", "--db", db, "--known-hosts", known_hosts, *args, password=PASSWORD, env=env
    )


def test_help_documents_the_exit_codes() -> None:
    result = invoke("collect", "--help")
    assert result.code == 0
    for line in (
        "0   every device",
        "1   some devices",
        "2   usage",
        "3   every device failed",
        "4   a --fail-on",
        "75  another run holds the lock",
    ):
        assert line in result.stdout


def test_missing_password_is_a_clear_error(tmp_path: Path) -> None:
    result = collect(
        tmp_path, "-i", str(write_inventory(tmp_path)), env={"IKE_COLLECTOR_PASSWORD": None}
    )
    assert result.code == 2
    assert "IKE_COLLECTOR_PASSWORD" in result.stderr
    assert result.stderr.count("\n") == 1


def test_password_env_names_another_variable(tmp_path: Path) -> None:
    result = collect(
        tmp_path, "-i", str(write_inventory(tmp_path)), "--password-env", "MY_PW", env={"MY_PW": ""}
    )
    assert result.code == 2
    assert "MY_PW is set but empty" in result.stderr


def test_broken_inventory_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_inventory(tmp_path, "r1:\n  hostname: 127.0.0.1\n  port: [22\n")
    result = collect(tmp_path, "-i", str(path))
    assert result.code == 2
    assert str(path) in result.stderr
    assert result.stderr.startswith("collect-ike-offline: error:")


def test_no_device_matches_the_filters(tmp_path: Path) -> None:
    result = collect(tmp_path, "-i", str(write_inventory(tmp_path)), "--where", "site=lyo1")
    assert result.code == 2
    assert "no device matches the filters" in result.stderr


def test_device_without_username_needs_username_option(tmp_path: Path) -> None:
    path = write_inventory(tmp_path, "r1:\n  hostname: 127.0.0.1\n")
    result = collect(tmp_path, "-i", str(path))
    assert result.code == 2
    assert "--username" in result.stderr


def test_bad_timezone_in_the_inventory_is_refused_before_connecting(tmp_path: Path) -> None:
    path = write_inventory(
        tmp_path, "r1:\n  hostname: 127.0.0.1\n  username: a\n  data: {timezone: Mars/Base}\n"
    )
    result = collect(tmp_path, "-i", str(path))
    assert result.code == 2
    assert "r1" in result.stderr and "Mars/Base" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--shard", "3/2"], "--shard"),
        (["--where", "site"], "--where"),
        (["--fail-on", "bogus>1"], "unknown key"),
        (["--fail-on", "dpd_timeout"], "KEY>N"),
        (["--fail-on", "new>1", "--no-store"], "--no-store"),
        (["--workers", "0"], "--workers"),
        (["--timeout", "0"], "--timeout"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    result = collect(tmp_path, "-i", str(write_inventory(tmp_path)), *args)
    assert result.code == 2
    assert words in result.stderr


def test_internal_error_is_one_masked_line_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom with {PASSWORD} inside")

    monkeypatch.setattr(collector.fleet.collect.RunFold, "report", broken)
    result = collect(tmp_path, "-i", str(write_inventory(tmp_path)), "--retries", "0")
    assert result.code == 70
    assert "internal error: RuntimeError: boom with ******** inside" in result.stderr
    assert PASSWORD not in result.stderr


def test_unreachable_only_device_exits_3_and_run_is_stored(tmp_path: Path) -> None:
    result = collect(tmp_path, "-i", str(write_inventory(tmp_path)), "--retries", "0")
    assert result.code == 3
    assert "r1: unreachable" in result.stderr
    assert (tmp_path / "h.sqlite3").exists()
    assert (tmp_path / "h.sqlite3.lock").exists()


# --- option values -----------------------------------------------------------------------


def test_durations_and_moments() -> None:
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration("2w") == timedelta(days=14)
    for bad in ("", "7", "7y", "-1d", "0d", "1 d 2h"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert parse_moment("24h", now) == datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert parse_moment("2026-03-01T08:00+08:00", now) == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_moment("yesterday", now)
    assert format_duration(timedelta(days=3, hours=5)) == "3 d 5 h"


def test_thresholds() -> None:
    assert parse_threshold("DPD timeout >= 3").key == "dpd_timeout"
    assert parse_threshold("liveness>0").key == "liveness"
    counts = threshold_counts({"dpd_timeout": 4, "unknown": 2}, failed=1, gaps=0)
    assert counts["liveness"] == 4 and counts["unknown"] == 2 and counts["new"] == 6
    rules = [parse_threshold(t) for t in ("dpd_timeout>3", "new>=7", "failed=1", "gaps>0")]
    assert [(rule.text, count) for rule, count in breached(rules, counts)] == [
        ("dpd_timeout>3", 4),
        ("failed=1", 1),
    ]


# --- logging and progress -----------------------------------------------------------------


def test_logging_masks_secrets_and_restores_the_root_logger(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    with cli_logging(verbose=1) as masker:
        masker.add(PASSWORD)
        logging.getLogger("collector.test").info("login with %s", PASSWORD)
        logging.getLogger("paramiko.transport").info("library chatter")
        logging.getLogger("collector.test").debug("not shown at -v")
    err = capsys.readouterr().err
    assert "collect-ike-offline: login with ********" in err
    assert PASSWORD not in err and "chatter" not in err and "not shown" not in err
    assert (root.level, root.handlers) == (level, handlers)
    with cli_logging(quiet=True):
        logging.getLogger("collector.test").warning("a warning")
    assert capsys.readouterr().err == ""


def test_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert color_enabled(Tty())
    assert not color_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_enabled(Tty())


def test_progress_bar_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet_stream = io.StringIO()
    bar = ProgressBar(quiet_stream)
    bar(Progress(total=2, done=2, failed=1, elapsed=1.0))
    bar.close()
    assert quiet_stream.getvalue() == ""

    tty = Tty()
    bar = ProgressBar(tty)
    bar(Progress(total=4, done=1, failed=0, elapsed=0.5))
    bar(Progress(total=4, done=4, failed=1, elapsed=2.0))
    bar.close()
    text = tty.getvalue()
    assert "4/4 devices, 1 failed, 2.0/s" in text
    assert text.endswith("\r\x1b[K")  # erased in place at the end
    assert progress_line(Progress(total=10, done=5, failed=0, elapsed=10.0)).endswith("ETA 10 s")
