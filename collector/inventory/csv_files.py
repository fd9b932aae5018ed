"""A flat CSV inventory: one device a row, its line named in every error."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from types import MappingProxyType

from collector.core.records import Device
from collector.core.terminal import one_line
from collector.inventory.model import (
    CSV_COLUMNS,
    DEFAULT_PLATFORM,
    DEFAULT_PORT,
    Inventory,
    InventoryError,
    checked_hostname,
    checked_platform,
    checked_username,
    with_platform_command,
)
from collector.inventory.validation import has_control
from collector.inventory.yaml_source import read_text, world_readable

_CSV_KNOWN = frozenset({*CSV_COLUMNS, "username", "password"})
_CSV_GROUP_SEPARATORS = re.compile(r"[;|]")


# ------------------------------------------------------------------------------- CSV


def load_csv(path: Path) -> Inventory:
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    devices: list[Device] = []
    seen: dict[str, int] = {}
    password_line: int | None = None
    line_end = 0
    try:
        for row in reader:
            # A quoted field may span lines: report the line the row starts on.
            line, line_end = line_end + 1, reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                header_line = line
                if "name" not in header:
                    raise InventoryError(
                        f"{path}:{line}: the first row must be a header with at least "
                        f"'name' (columns: {','.join(CSV_COLUMNS)})"
                    )
                duplicates = sorted({cell for cell in header if header.count(cell) > 1})
                if duplicates or "" in header:
                    raise InventoryError(
                        f"{path}:{line}: header has duplicate or empty column names "
                        f"{duplicates}; name each column once"
                    )
                continue
            if len(row) != len(header):
                raise InventoryError(
                    f"{path}:{line}: {len(row)} fields, the header (line {header_line}) "
                    f"has {len(header)}; fix the row (quote values holding commas)"
                )
            values = dict(zip(header, (cell.strip() for cell in row), strict=True))
            if values.get("password"):
                password_line = password_line or line
            devices.append(_csv_device(path, line, values, seen))
    except csv.Error as error:
        raise InventoryError(
            f"{path}:{reader.line_num}: not valid CSV ({one_line(str(error))})"
        ) from None
    if not devices:
        raise InventoryError(f"{path}:1: no hosts defined; add a header and one row per device")
    warnings: list[str] = []
    if password_line is not None:
        warnings.append(
            f"{path}:{password_line}: a password is set in the inventory; it is not used by "
            f"the collector: pass it through --password-env (or the prompt) and remove it here"
        )
        if world_readable(path):
            warnings.append(
                f"{path}: contains a password and is readable by every user; run: chmod o-r {path}"
            )
    return Inventory(
        path=path,
        devices=tuple(devices),
        warnings=tuple(warnings),
        memberships=MappingProxyType({device.name: device.groups for device in devices}),
    )


def _csv_device(path: Path, line: int, values: dict[str, str], seen: dict[str, int]) -> Device:
    where = f"{path}:{line}"
    name = values["name"]
    if not name or has_control(name):
        raise InventoryError(f"{where}: empty name or control characters in {name!r}")
    if name in seen:
        raise InventoryError(
            f"{where}: duplicate host name {name!r} (first at line {seen[name]}); "
            f"each name may appear once"
        )
    seen[name] = line
    hostname = checked_hostname(values.get("hostname") or name, name, where)
    port = DEFAULT_PORT
    if values.get("port"):
        text = values["port"]
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise InventoryError(f"{where}: port {text!r} is not an integer 1-65535; fix the port")
        port = int(text)
    username = checked_username(values.get("username") or None, name, where)
    platform_text = values.get("platform") or DEFAULT_PLATFORM
    platform = checked_platform(platform_text, name, where)
    groups = tuple(
        group.strip()
        for group in _CSV_GROUP_SEPARATORS.split(values.get("groups", ""))
        if group.strip()
    )
    data = {key: value for key, value in values.items() if key not in _CSV_KNOWN and value != ""}
    if values.get("site"):
        data["site"] = values["site"]
    return Device(
        name=name,
        hostname=hostname,
        port=port,
        username=username,
        platform=platform,
        groups=groups,
        data=MappingProxyType(with_platform_command(data, platform_text)),
    )
