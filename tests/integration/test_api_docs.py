"""docs/API.md is run as a doctest, in order, against a mock fleet over real SSH; and it
lists every public name of ``collector.api``."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
from helpers import ROOT

import collector.api

API_DOC = ROOT / "docs" / "API.md"


def test_api_doc_examples_run_and_print_what_they_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The examples pass their own known_hosts and history, but nothing may leak into
    # the real home if one forgot to.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    results = doctest.testfile(
        str(API_DOC),
        module_relative=False,
        optionflags=doctest.ELLIPSIS,
        raise_on_error=False,
        verbose=False,
    )
    assert results.failed == 0
    assert results.attempted >= 30
    assert (tmp_path / "history.sqlite3").is_file()
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()


def test_api_doc_lists_every_public_name() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    listed = {name for span in re.findall(r"`([^`]+)`", text) for name in re.findall(r"\w+", span)}
    missing = [name for name in collector.api.__all__ if name not in listed]
    assert missing == []
    for name in collector.api.__all__:
        assert getattr(collector.api, name) is not None
