"""docs/ARCHITECTURE.md's module map stays true: every module it names exists, every
module of collector/ is named, and the dotted names of its tables resolve."""

from __future__ import annotations

import importlib
import re

from helpers import ROOT

DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
MAP = DOC[DOC.index("## Modules") :]


def named() -> set[str]:
    return set(re.findall(r"^\| `(collector/[\w/]+\.py)` \|", MAP, re.M))


def test_every_module_named_exists() -> None:
    names = named()
    assert len(names) > 40
    missing = sorted(name for name in names if not (ROOT / name).is_file())
    assert missing == []


def test_every_module_is_named() -> None:
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "collector").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sorted(modules - named()) == []


def test_the_decisions_table_points_at_real_names() -> None:
    table = DOC[DOC.index("## One place for each decision") : DOC.index("## Modules")]
    for dotted in re.findall(r"`((?:core|ssh|fleet|history|output|cli|inventory)\.[\w.]+)`", table):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                module = importlib.import_module("collector." + ".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            value: object = module
            for attribute in parts[cut:]:
                value = getattr(value, attribute)
            break
        else:
            raise AssertionError(f"{dotted} names no module")
