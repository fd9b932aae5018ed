"""The filters (``--device``, ``--group``, ``--site``, ``--where``) and the ``--shard`` split:
pure functions over the loaded inventory.
"""

from __future__ import annotations

import fnmatch
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collector.core.records import Device
from collector.inventory.model import Inventory

# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based), as ``--shard K/N`` gives it."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: K must be 1..N")

    def holds(self, name: str) -> bool:
        """True when the device named ``name`` belongs to this shard.

        crc32 of the UTF-8 name: the same on every host and Python version (Python's
        ``hash()`` of a str changes with every process).
        """
        return zlib.crc32(name.encode("utf-8")) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """Read ``--shard K/N``.

    Examples:
        >>> parse_shard("2/4")
        Shard(index=2, count=4)

    Raises:
        ValueError: Not ``K/N`` with integers 1 <= K <= N.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N, and N at least 1")
    return Shard(index, count)


def parse_where(text: str) -> tuple[str, str]:
    """Read ``--where key=value``.

    Examples:
        >>> parse_where("site=par1")
        ('site', 'par1')

    Raises:
        ValueError: No ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--where {text!r}: expected key=value, e.g. site=paris")
    return key.strip(), value.strip()


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select(
    inventory: Inventory,
    *,
    hosts: Sequence[str] = (),
    groups: Sequence[str] = (),
    where: Sequence[tuple[str, str]] = (),
    shard: Shard | None = None,
) -> tuple[Device, ...]:
    """The devices that pass every filter given, in inventory order.

    Args:
        inventory: The loaded inventory.
        hosts: ``--host`` globs on the device name (fnmatch, case-sensitive); any matches.
        groups: ``--group`` names; the device is a member of any, directly or via nested
            groups.
        where: ``--where`` (key, value) pairs on ``data``; all must hold, values compared
            as text (YAML ``true`` as ``true``).
        shard: Keep only this shard's devices.
    """
    selected: list[Device] = []
    for device in inventory.devices:
        if hosts and not any(fnmatch.fnmatchcase(device.name, glob) for glob in hosts):
            continue
        if groups and not set(groups) & set(inventory.groups_of(device)):
            continue
        if any(
            key not in device.data or _as_text(device.data[key]) != value for key, value in where
        ):
            continue
        if shard is not None and not shard.holds(device.name):
            continue
        selected.append(device)
    return tuple(selected)
