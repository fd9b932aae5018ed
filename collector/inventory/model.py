"""The inventory's values: platforms, defaults, :class:`Inventory`, :class:`InventoryError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.core.errors import CollectorError
from collector.core.records import Device
from collector.inventory.validation import username_problem, valid_hostname

MAX_INVENTORY_BYTES = 20 * 1024 * 1024
"""Refuse bigger files: an inventory of 100,000 devices is a few MB."""

PLATFORMS: MappingProxyType[str, str] = MappingProxyType(
    {
        "huawei": "huawei",
        "huawei_vrp": "huawei",
        "vrp": "huawei",
        "huawei_vrpv8": "huawei_vrpv8",
        "vrpv8": "huawei_vrpv8",
        "huawei_ne40e": "huawei_vrpv8",
        "ne40e": "huawei_vrpv8",
        "ne8000": "huawei_vrpv8",
        "netengine8000": "huawei_vrpv8",
    }
)
"""Inventory ``platform`` (lower case) -> netmiko device type."""

HISTORY_PLATFORMS = frozenset({"huawei_ne40e", "ne40e", "ne8000", "netengine8000"})
"""Platforms that list deleted tunnels with ``display ike offline history`` (VRP8 carrier
routers): ``data.ike_command`` defaults to it for them."""


def with_platform_command(data: dict[str, Any], platform_text: str) -> dict[str, Any]:
    """``data`` with ``ike_command: offline-history`` for NE40E-like platforms (unless set)."""
    if platform_text.strip().lower() in HISTORY_PLATFORMS and "ike_command" not in data:
        return {**data, "ike_command": "offline-history"}
    return data


DEFAULT_PLATFORM = "huawei"
DEFAULT_PORT = 22

CSV_COLUMNS: tuple[str, ...] = ("name", "hostname", "port", "platform", "site", "groups")
"""The documented CSV columns; ``username`` is known too, any other column goes to ``data``."""


class InventoryError(CollectorError):
    """The inventory cannot be used; the message is one line naming the file and line."""


# Checks every inventory reader applies to a device's fields, ``where``: the file and line.


def checked_hostname(hostname: str, host: str, where: str) -> str:
    """``hostname``, unless it is not a DNS name or an IP address safe to hand to SSH."""
    if not valid_hostname(hostname):
        raise InventoryError(
            f"{where}: hostname {hostname!r} of host {host!r} is not a DNS name or IP "
            f"address; fix it (refused before connecting)"
        )
    return hostname


def checked_username(username: str | None, host: str, where: str) -> str | None:
    """``username`` (None: none given), unless it could not be a user name."""
    problem = None if username is None else username_problem(username)
    if problem is not None:
        raise InventoryError(
            f"{where}: username {username!r} of host {host!r} {problem}; fix it "
            f"(refused before connecting)"
        )
    return username


def checked_platform(platform_text: str, host: str, where: str) -> str:
    """The netmiko device type of an inventory ``platform``, unless it is not supported."""
    platform = PLATFORMS.get(platform_text.strip().lower())
    if platform is None:
        raise InventoryError(
            f"{where}: platform {platform_text!r} of host {host!r} is not supported; use "
            f"one of {', '.join(PLATFORMS)}"
        )
    return platform


@dataclass(frozen=True, slots=True)
class Inventory:
    """A loaded inventory."""

    path: Path
    """The file given (``hosts.yaml``, the CSV) or the directory holding ``hosts.yaml``."""
    devices: tuple[Device, ...]
    """In file order."""
    warnings: tuple[str, ...] = ()
    """One line each (password in the inventory, world-readable file ...)."""
    memberships: MappingProxyType[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Device name -> every group it belongs to, directly or through nested groups."""

    def groups_of(self, device: Device) -> tuple[str, ...]:
        """All groups of ``device``, nested ones included (Nornir's ``extended_groups``)."""
        return self.memberships.get(device.name, device.groups)
