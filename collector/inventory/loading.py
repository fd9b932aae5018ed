"""Load the device inventory (Nornir SimpleInventory YAML or a flat CSV) and select from it.

A Nornir ``hosts.yaml`` (with optional ``groups.yaml`` and ``defaults.yaml`` beside
it) is resolved with Nornir's inheritance: a host's attribute comes from the host,
then its groups depth-first (groups can have groups), then the defaults. ``data`` and
``connection_options.netmiko.extras`` are merged key by key in the same order (Nornir
itself takes the first whole ``extras`` mapping; merging lets a group set
``ssh_config_file`` and a host add ``use_keys``).

Everything that reaches a device or a shell is validated here, before anything
connects: hostnames must be DNS names or IP addresses, usernames carry no
whitespace, control characters, shell metacharacters or leading ``-``. Every
error is one line naming the file and line and what to do (:class:`InventoryError`).

The filters (:func:`select`) and the shard split are pure functions over the loaded
inventory.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import ipaddress
import os
import re
import stat
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from collector.core.records import Device

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


def _with_platform_command(data: dict[str, Any], platform_text: str) -> dict[str, Any]:
    """``data`` with ``ike_command: offline-history`` for NE40E-like platforms (unless set)."""
    if platform_text.strip().lower() in HISTORY_PLATFORMS and "ike_command" not in data:
        return {**data, "ike_command": "offline-history"}
    return data


DEFAULT_PLATFORM = "huawei"
DEFAULT_PORT = 22

_ELEMENT_KEYS = frozenset(
    {"hostname", "port", "username", "password", "platform", "groups", "data", "connection_options"}
)
"""The keys Nornir's SimpleInventory knows for a host or a group."""
_DEFAULTS_KEYS = _ELEMENT_KEYS - {"groups"}
_CONNECTION_KEYS = frozenset({"hostname", "port", "username", "password", "platform", "extras"})
_ATTRIBUTES = ("hostname", "port", "username", "platform")

_EXTRAS_REFUSED = MappingProxyType(
    {
        "host": "hostname",
        "ip": "hostname",
        "port": "port",
        "username": "username",
        "device_type": "platform",
    }
)
"""netmiko arguments the collector sets from validated fields; extras may not override them."""
_EXTRAS_SECRETS = frozenset({"password", "secret", "passphrase"})

CSV_COLUMNS: tuple[str, ...] = ("name", "hostname", "port", "platform", "site", "groups")
"""The documented CSV columns; ``username`` is known too, any other column goes to ``data``."""
_CSV_KNOWN = frozenset({*CSV_COLUMNS, "username", "password"})
_CSV_GROUP_SEPARATORS = re.compile(r"[;|]")

_SHELL_METACHARACTERS = frozenset("`$&|;<>()[]{}*?!~'\"\\#%^=,")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class InventoryError(Exception):
    """The inventory cannot be used; the message is one line naming the file and line."""


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


# --------------------------------------------------------------------------- validation


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)


def valid_hostname(value: str) -> bool:
    """True for an IPv4/IPv6 address or a DNS name that is safe to hand to SSH.

    Examples:
        >>> valid_hostname("r1.par.example.net"), valid_hostname("2001:db8::1")
        (True, True)
        >>> valid_hostname("r1; reboot"), valid_hostname("-oProxyCommand=x")
        (False, False)
    """
    if not value or value != value.strip():
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return True
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        # "10.0.0.300" is not an address, and not a name either.
        return False
    return all(_DNS_LABEL.match(label) for label in labels)


def username_problem(value: str) -> str | None:
    """Why ``value`` cannot be a username, or None if it can.

    Examples:
        >>> username_problem("netops") is None
        True
        >>> username_problem("-oProxyCommand")
        'starts with "-"'
    """
    if not value:
        return "is empty"
    if value.startswith("-"):
        return 'starts with "-"'
    if _has_control(value):
        return "contains control characters"
    if any(char.isspace() for char in value):
        return "contains whitespace"
    bad = sorted({char for char in value if char in _SHELL_METACHARACTERS})
    if bad:
        return f"contains shell metacharacters {''.join(bad)!r}"
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------- YAML loading


class _Mapping(dict[Any, Any]):
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


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    # flatten_mapping puts the pairs merged in by "<<" first; an explicit key may
    # override those, but not another explicit key.
    merged = len(node.value) - explicit
    result = _Mapping()
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


def _read_text(path: Path) -> str:
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


def _load_yaml(path: Path) -> Any:
    text = _read_text(path)
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
        problem = _one_line(problem)
        raise InventoryError(
            f"{path}:{line} not valid YAML ({problem}); fix the syntax at that line"
        ) from None
    except yaml.YAMLError as error:
        raise InventoryError(f"{path}: not valid YAML ({_one_line(str(error))})") from None


# ----------------------------------------------------------------- Nornir SimpleInventory


@dataclass(slots=True)
class _Element:
    """A host, group or the defaults, as written (already type-checked)."""

    name: str
    path: Path
    line: int
    attributes: dict[str, Any]
    attribute_lines: dict[str, int]
    groups: tuple[str, ...]
    groups_line: int
    data: dict[str, Any]
    netmiko: dict[str, Any]
    """``connection_options.netmiko`` minus ``extras``."""
    extras: dict[str, Any]
    has_password: bool


def _plain(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Turn the loader's mappings back into plain dicts/lists, recursively.

    YAML aliases share one object; ``memo`` keeps them shared, so a "billion laughs"
    document (aliases of aliases) stays small instead of being expanded.
    """
    if not isinstance(value, dict | list):
        return value
    memo = {} if memo is None else memo
    known = memo.get(id(value))
    if known is not None:
        return known
    if isinstance(value, dict):
        result: Any = {}
        memo[id(value)] = result
        result.update((key, _plain(item, memo)) for key, item in value.items())
    else:
        result = []
        memo[id(value)] = result
        result.extend(_plain(item, memo) for item in value)
    return result


def _lines(mapping: Any, key: str, default: int) -> int:
    if isinstance(mapping, _Mapping):
        return mapping.value_lines.get(key, mapping.line or default)
    return default


def _check_port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InventoryError(f"{where}: port {value!r} is not an integer 1-65535; fix the port")
    return value


def _element(
    path: Path, name: str, raw: Any, line: int, *, kind: str, allowed: frozenset[str]
) -> _Element:
    if raw is None:
        raw = _Mapping()
        raw.line, raw.key_lines, raw.value_lines = line, {}, {}
    if not isinstance(raw, dict):
        raise InventoryError(
            f"{path}:{line}: {kind} {name!r} must be a mapping of "
            f"{', '.join(sorted(allowed))}; got {type(raw).__name__}"
        )
    key_lines = raw.key_lines if isinstance(raw, _Mapping) else {}
    for key in raw:
        if key not in allowed:
            key_line = key_lines.get(key, line)
            raise InventoryError(
                f"{path}:{key_line}: unknown key {key!r} in {kind} {name!r}; "
                f"allowed: {', '.join(sorted(allowed))} (free-form values go under data:)"
            )

    def where(key: str) -> str:
        return f"{path}:{_lines(raw, key, line)}"

    attributes: dict[str, Any] = {}
    attribute_lines: dict[str, int] = {}
    for key in _ATTRIBUTES:
        value = raw.get(key)
        if value is None:
            continue
        attribute_lines[key] = _lines(raw, key, line)
        if key == "port":
            attributes[key] = _check_port(value, where(key))
        elif not isinstance(value, str):
            raise InventoryError(
                f"{where(key)}: {key} of {kind} {name!r} must be text, got "
                f"{type(value).__name__} {value!r}; quote it"
            )
        else:
            attributes[key] = value

    groups_value = raw.get("groups")
    groups: tuple[str, ...] = ()
    if groups_value is not None:
        if not isinstance(groups_value, list) or not all(
            isinstance(group, str) for group in groups_value
        ):
            raise InventoryError(
                f"{where('groups')}: groups of {kind} {name!r} must be a list of group "
                f"names, e.g. groups: [core, paris]"
            )
        groups = tuple(groups_value)

    data_value = raw.get("data")
    if data_value is not None and not isinstance(data_value, dict):
        raise InventoryError(
            f"{where('data')}: data of {kind} {name!r} must be a mapping (key: value)"
        )
    data = _plain(data_value or {})

    has_password = raw.get("password") is not None
    if has_password and not isinstance(raw.get("password"), str):
        # Never echo the value: it is meant to be a secret.
        raise InventoryError(f"{where('password')}: password of {kind} {name!r} must be text")

    netmiko: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    options = raw.get("connection_options")
    if options is not None:
        if not isinstance(options, dict):
            raise InventoryError(
                f"{where('connection_options')}: connection_options of {kind} {name!r} must "
                f"map a connection name (netmiko, napalm) to its options"
            )
        for connection, settings in options.items():
            settings_line = _lines(options, connection, line)
            if settings is None:
                continue
            if not isinstance(settings, dict):
                raise InventoryError(
                    f"{path}:{settings_line}: connection_options.{connection} of {kind} "
                    f"{name!r} must be a mapping"
                )
            setting_keys = settings.key_lines if isinstance(settings, _Mapping) else {}
            for key in settings:
                if key not in _CONNECTION_KEYS:
                    raise InventoryError(
                        f"{path}:{setting_keys.get(key, settings_line)}: unknown key {key!r} "
                        f"in connection_options.{connection} of {kind} {name!r}; allowed: "
                        f"{', '.join(sorted(_CONNECTION_KEYS))}"
                    )
            if settings.get("password") is not None:
                has_password = True
            if connection != "netmiko":
                continue
            for key in _ATTRIBUTES:
                value = settings.get(key)
                if value is None:
                    continue
                spot = f"{path}:{_lines(settings, key, settings_line)}"
                if key == "port":
                    netmiko[key] = _check_port(value, spot)
                elif not isinstance(value, str):
                    raise InventoryError(
                        f"{spot}: connection_options.netmiko.{key} of {kind} {name!r} must "
                        f"be text; quote it"
                    )
                else:
                    netmiko[key] = value
                attribute_lines[f"netmiko.{key}"] = _lines(settings, key, settings_line)
            extras_value = settings.get("extras")
            if extras_value is None:
                continue
            extras_line = _lines(settings, "extras", settings_line)
            if not isinstance(extras_value, dict):
                raise InventoryError(
                    f"{path}:{extras_line}: connection_options.netmiko.extras of {kind} "
                    f"{name!r} must be a mapping of netmiko arguments"
                )
            for key in extras_value:
                spot = f"{path}:{_lines(extras_value, key, extras_line)}"
                if not isinstance(key, str):
                    raise InventoryError(f"{spot}: netmiko extras keys must be text")
                if key in _EXTRAS_REFUSED:
                    raise InventoryError(
                        f"{spot}: netmiko extras may not set {key!r} in {kind} {name!r}; "
                        f"use the inventory field {_EXTRAS_REFUSED[key]!r} instead"
                    )
                if key in _EXTRAS_SECRETS:
                    has_password = True
            extras = _plain(extras_value)
    return _Element(
        name=name,
        path=path,
        line=line,
        attributes=attributes,
        attribute_lines=attribute_lines,
        groups=groups,
        groups_line=_lines(raw, "groups", line),
        data=data,
        netmiko=netmiko,
        extras=extras,
        has_password=has_password,
    )


def _top_mapping(path: Path, document: Any, what: str) -> dict[Any, Any]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InventoryError(
            f"{path}:1: expected a mapping of {what} (name: settings), got "
            f"{type(document).__name__}; see inventory/example/"
        )
    return document


def _elements(path: Path, document: Any, kind: str) -> dict[str, _Element]:
    top = _top_mapping(path, document, f"{kind}s")
    key_lines = top.key_lines if isinstance(top, _Mapping) else {}
    elements: dict[str, _Element] = {}
    for name, raw in top.items():
        line = key_lines.get(name, 1)
        if not isinstance(name, str):
            raise InventoryError(f"{path}:{line}: {kind} name {name!r} must be text; quote it")
        if not name.strip() or _has_control(name):
            raise InventoryError(
                f"{path}:{line}: {kind} name {name!r} is empty or has control characters"
            )
        elements[name] = _element(path, name, raw, line, kind=kind, allowed=_ELEMENT_KEYS)
    return elements


def _extended_groups(
    names: Sequence[str],
    groups: Mapping[str, _Element],
    chain: tuple[str, ...],
    referrer: _Element,
) -> list[str]:
    """Nornir's order: each group, then its own groups depth-first, no repeats."""
    result: list[str] = []
    for name in names:
        if name in chain:
            cycle = " -> ".join((*chain, name))
            raise InventoryError(
                f"{referrer.path}:{referrer.groups_line}: groups form a cycle ({cycle}); "
                f"remove one of them"
            )
        group = groups.get(name)
        if group is None:
            raise InventoryError(
                f"{referrer.path}:{referrer.groups_line}: {referrer.name!r} refers to "
                f"undefined group {name!r}; define it in groups.yaml or fix the name"
            )
        if name not in result:
            result.append(name)
        for parent in _extended_groups(group.groups, groups, (*chain, name), group):
            if parent not in result:
                result.append(parent)
    return result


def _first(
    key: str, chain: Sequence[_Element], *, netmiko: bool = False
) -> tuple[Any, _Element | None]:
    for element in chain:
        source = element.netmiko if netmiko else element.attributes
        if key in source:
            return source[key], element
    return None, None


def _merged(chain: Sequence[_Element], pick: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for element in reversed(chain):
        result.update(getattr(element, pick))
    return result


def _resolve(
    host: _Element, groups: Mapping[str, _Element], defaults: _Element
) -> tuple[Device, tuple[str, ...]]:
    extended = _extended_groups(host.groups, groups, (), host)
    chain = [host, *(groups[name] for name in extended), defaults]
    values: dict[str, Any] = {}
    for key in _ATTRIBUTES:
        # connection_options.netmiko.<key> overrides the plain attribute (Nornir's
        # get_connection_parameters), each searched host -> groups -> defaults.
        value, source = _first(key, chain, netmiko=True)
        label = f"connection_options.netmiko.{key}"
        if source is None:
            value, source = _first(key, chain)
            label = key
        values[key] = (value, source, label)

    def spot(key: str) -> str:
        _, source, label = values[key]
        if source is None:
            return f"{host.path}:{host.line}"
        lookup = f"netmiko.{key}" if label.startswith("connection_options") else key
        return f"{source.path}:{source.attribute_lines.get(lookup, source.line)}"

    hostname = values["hostname"][0] if values["hostname"][0] is not None else host.name
    if not valid_hostname(hostname):
        raise InventoryError(
            f"{spot('hostname')}: hostname {hostname!r} of host {host.name!r} is not a DNS "
            f"name or IP address; fix it (refused before connecting)"
        )
    username = values["username"][0]
    if username is not None:
        problem = username_problem(username)
        if problem is not None:
            raise InventoryError(
                f"{spot('username')}: username {username!r} of host {host.name!r} {problem}; "
                f"fix it (refused before connecting)"
            )
    platform_text = values["platform"][0] or DEFAULT_PLATFORM
    platform = PLATFORMS.get(platform_text.strip().lower())
    if platform is None:
        raise InventoryError(
            f"{spot('platform')}: platform {platform_text!r} of host {host.name!r} is not "
            f"supported; use one of {', '.join(PLATFORMS)}"
        )
    port = values["port"][0] if values["port"][0] is not None else DEFAULT_PORT
    device = Device(
        name=host.name,
        hostname=hostname,
        port=port,
        username=username,
        platform=platform,
        groups=host.groups,
        data=MappingProxyType(_with_platform_command(_merged(chain, "data"), platform_text)),
        netmiko_extras=MappingProxyType(_merged(chain, "extras")),
    )
    return device, tuple(extended)


def _world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def _password_warnings(elements: Iterable[_Element]) -> list[str]:
    warnings: list[str] = []
    files: dict[Path, int] = {}
    for element in elements:
        if element.has_password:
            files.setdefault(element.path, element.line)
    for path, line in files.items():
        warnings.append(
            f"{path}:{line}: a password is set in the inventory; it is not used by the "
            f"collector: pass it through --password-env (or the prompt) and remove it here"
        )
        if _world_readable(path):
            warnings.append(
                f"{path}: contains a password and is readable by every user; run: chmod o-r {path}"
            )
    return warnings


def _load_nornir(hosts_path: Path, given: Path) -> Inventory:
    directory = hosts_path.parent
    hosts = _elements(hosts_path, _load_yaml(hosts_path), "host")
    if not hosts:
        raise InventoryError(f"{hosts_path}:1: no hosts defined; add at least one host")
    groups: dict[str, _Element] = {}
    defaults = _element(hosts_path, "defaults", {}, 1, kind="defaults", allowed=_DEFAULTS_KEYS)
    for stem in ("groups", "defaults"):
        candidates = [directory / f"{stem}.yaml", directory / f"{stem}.yml"]
        found = [candidate for candidate in candidates if candidate.is_file()]
        if len(found) > 1:
            raise InventoryError(
                f"{found[1]}: both {found[0].name} and {found[1].name} exist; keep one"
            )
        if not found:
            continue
        document = _load_yaml(found[0])
        if stem == "groups":
            groups = _elements(found[0], document, "group")
        else:
            top = _top_mapping(found[0], document, "default settings")
            defaults = _element(
                found[0], "defaults", top, 1, kind="defaults", allowed=_DEFAULTS_KEYS
            )
    devices: list[Device] = []
    memberships: dict[str, tuple[str, ...]] = {}
    for host in hosts.values():
        device, extended = _resolve(host, groups, defaults)
        devices.append(device)
        memberships[device.name] = extended
    # Groups nobody uses still have to be valid: check their references too.
    for group in groups.values():
        _extended_groups(group.groups, groups, (group.name,), group)
    warnings = _password_warnings([*hosts.values(), *groups.values(), defaults])
    return Inventory(
        path=given,
        devices=tuple(devices),
        warnings=tuple(warnings),
        memberships=MappingProxyType(memberships),
    )


# ------------------------------------------------------------------------------- CSV


def _load_csv(path: Path) -> Inventory:
    text = _read_text(path)
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
            f"{path}:{reader.line_num}: not valid CSV ({_one_line(str(error))})"
        ) from None
    if not devices:
        raise InventoryError(f"{path}:1: no hosts defined; add a header and one row per device")
    warnings: list[str] = []
    if password_line is not None:
        warnings.append(
            f"{path}:{password_line}: a password is set in the inventory; it is not used by "
            f"the collector: pass it through --password-env (or the prompt) and remove it here"
        )
        if _world_readable(path):
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
    if not name or _has_control(name):
        raise InventoryError(f"{where}: empty name or control characters in {name!r}")
    if name in seen:
        raise InventoryError(
            f"{where}: duplicate host name {name!r} (first at line {seen[name]}); "
            f"each name may appear once"
        )
    seen[name] = line
    hostname = values.get("hostname") or name
    if not valid_hostname(hostname):
        raise InventoryError(
            f"{where}: hostname {hostname!r} of host {name!r} is not a DNS name or IP "
            f"address; fix it (refused before connecting)"
        )
    port = DEFAULT_PORT
    if values.get("port"):
        text = values["port"]
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise InventoryError(f"{where}: port {text!r} is not an integer 1-65535; fix the port")
        port = int(text)
    username = values.get("username") or None
    if username is not None:
        problem = username_problem(username)
        if problem is not None:
            raise InventoryError(
                f"{where}: username {username!r} of host {name!r} {problem}; fix it "
                f"(refused before connecting)"
            )
    platform_text = values.get("platform") or DEFAULT_PLATFORM
    platform = PLATFORMS.get(platform_text.lower())
    if platform is None:
        raise InventoryError(
            f"{where}: platform {platform_text!r} of host {name!r} is not supported; use "
            f"one of {', '.join(PLATFORMS)}"
        )
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
        data=MappingProxyType(_with_platform_command(data, platform_text)),
    )


# ---------------------------------------------------------------------------- entry


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load an inventory, picking the format from the path.

    Args:
        path: A directory holding ``hosts.yaml`` (or ``hosts.yml``), a Nornir hosts
            file (``*.yaml``/``*.yml``; ``groups.yaml``/``defaults.yaml`` are read from
            beside it), or a CSV file (``*.csv``).

    Returns:
        The devices in file order, with warnings to show the operator.

    Raises:
        InventoryError: One line naming the file (and line) and what to do.
    """
    given = Path(path)
    if given.is_dir():
        candidates = [given / "hosts.yaml", given / "hosts.yml"]
        found = [candidate for candidate in candidates if candidate.is_file()]
        if not found:
            raise InventoryError(
                f"{given}: directory has no hosts.yaml; give a Nornir inventory directory, "
                f"a hosts.yaml or a .csv file"
            )
        return _load_nornir(found[0], given)
    suffix = given.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _load_nornir(given, given)
    if suffix == ".csv":
        return _load_csv(given)
    if not given.exists():
        raise InventoryError(f"{given}: no such file or directory; check --inventory")
    raise InventoryError(
        f"{given}: not a YAML (.yaml, .yml) or CSV (.csv) inventory; rename it or "
        f"point --inventory at a Nornir inventory directory"
    )


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
