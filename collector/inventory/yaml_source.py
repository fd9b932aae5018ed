"""Inventory files read safely and bounded; YAML whose every mapping remembers the line of
each key and value, duplicate keys refused (so every error names its file and line).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from collector.core.terminal import one_line
from collector.inventory.model import MAX_INVENTORY_BYTES, InventoryError

# ------------------------------------------------------------------------- YAML loading


class LineMapping(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys and values start."""

    line: int = 0
    key_lines: dict[Any, int]
    value_lines: dict[Any, int]


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line
        self.first_line = first_line


# libyaml's C scanner/parser when PyYAML has it (same safe constructors, same marks):
# 1,000 hosts load in 0.27 s instead of 1.16 s, a millisecond per device per run.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineMapping:
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    # flatten_mapping puts the pairs merged in by "<<" first; an explicit key may
    # override those, but not another explicit key.
    merged = len(node.value) - explicit
    result = LineMapping()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.value_lines = {}
    explicit_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        line = key_node.start_mark.line + 1
        if index >= merged:
            if key in explicit_keys:
                raise _DuplicateKey(key, line, result.key_lines[key])
            explicit_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        result.value_lines[key] = value_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_INVENTORY_BYTES:
            raise InventoryError(
                f"{path}: {size} bytes is too big for an inventory "
                f"(limit {MAX_INVENTORY_BYTES}); check the path"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such file; check --inventory") from None
    except IsADirectoryError:
        raise InventoryError(f"{path}: is a directory, expected a file") from None
    except OSError as error:
        raise InventoryError(f"{path}: cannot read: {error.strerror}") from None
    if b"\x00" in data:
        raise InventoryError(f"{path}:1: binary data, not a YAML or CSV inventory")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InventoryError(
            f"{path}:{line}: not UTF-8 text; save the inventory as UTF-8"
        ) from None


def load_yaml(path: Path) -> Any:
    text = read_text(path)
    try:
        # _Loader is a SafeLoader: no arbitrary Python objects.
        return yaml.load(text, Loader=_Loader)
    except _DuplicateKey as error:
        raise InventoryError(
            f"{path}:{error.line}: duplicate key {error.key!r} (first at line "
            f"{error.first_line}); each name may appear once"
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = "" if mark is None else f"{mark.line + 1}:"
        problem = error.problem or error.context or "invalid YAML"
        context = error.context_mark
        # An unclosed [ or { is found lines later: say where it was opened too.
        if (
            error.problem
            and error.context
            and context is not None
            and mark is not None
            and context.line != mark.line
        ):
            problem += f" {error.context} started at line {context.line + 1}"
        problem = one_line(problem)
        raise InventoryError(
            f"{path}:{line} not valid YAML ({problem}); fix the syntax at that line"
        ) from None
    except yaml.YAMLError as error:
        raise InventoryError(f"{path}: not valid YAML ({one_line(str(error))})") from None


def world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False
