"""Nornir SimpleInventory files (hosts, groups, defaults) resolved with Nornir's inheritance
into devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.core.records import Device
from collector.inventory.model import (
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
from collector.inventory.yaml_source import LineMapping, load_yaml, world_readable

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
    if isinstance(mapping, LineMapping):
        return mapping.value_lines.get(key, mapping.line or default)
    return default


def _check_port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InventoryError(f"{where}: port {value!r} is not an integer 1-65535; fix the port")
    return value


def _refuse_unknown_keys(
    path: Path,
    mapping: Mapping[str, Any],
    line: int,
    allowed: frozenset[str],
    where: str,
    hint: str = "",
) -> None:
    """Refuse the first key of ``mapping`` not in ``allowed``, naming its line and ``where``."""
    key_lines = mapping.key_lines if isinstance(mapping, LineMapping) else {}
    for key in mapping:
        if key not in allowed:
            raise InventoryError(
                f"{path}:{key_lines.get(key, line)}: unknown key {key!r} in {where}; "
                f"allowed: {', '.join(sorted(allowed))}{hint}"
            )


def _attributes(
    path: Path, mapping: Mapping[str, Any], line: int, owner: str, prefix: str = ""
) -> tuple[dict[str, Any], dict[str, int]]:
    """The host attributes ``mapping`` sets (``port`` checked, the others text) and the line
    of each; ``prefix``: where they sit (``connection_options.netmiko.``)."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key in _ATTRIBUTES:
        value = mapping.get(key)
        if value is None:
            continue
        lines[key] = _lines(mapping, key, line)
        spot = f"{path}:{lines[key]}"
        if key == "port":
            values[key] = _check_port(value, spot)
        elif not isinstance(value, str):
            # The plain attributes have always named the value they got; the netmiko ones not.
            got = "" if prefix else f", got {type(value).__name__} {value!r}"
            raise InventoryError(f"{spot}: {prefix}{key} of {owner} must be text{got}; quote it")
        else:
            values[key] = value
    return values, lines


def _element(
    path: Path, name: str, raw: Any, line: int, *, kind: str, allowed: frozenset[str]
) -> _Element:
    if raw is None:
        raw = LineMapping()
        raw.line, raw.key_lines, raw.value_lines = line, {}, {}
    if not isinstance(raw, dict):
        raise InventoryError(
            f"{path}:{line}: {kind} {name!r} must be a mapping of "
            f"{', '.join(sorted(allowed))}; got {type(raw).__name__}"
        )
    _refuse_unknown_keys(
        path, raw, line, allowed, f"{kind} {name!r}", " (free-form values go under data:)"
    )

    def where(key: str) -> str:
        return f"{path}:{_lines(raw, key, line)}"

    attributes, attribute_lines = _attributes(path, raw, line, f"{kind} {name!r}")

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
            _refuse_unknown_keys(
                path,
                settings,
                settings_line,
                _CONNECTION_KEYS,
                f"connection_options.{connection} of {kind} {name!r}",
            )
            if settings.get("password") is not None:
                has_password = True
            if connection != "netmiko":
                continue
            netmiko, netmiko_lines = _attributes(
                path, settings, settings_line, f"{kind} {name!r}", "connection_options.netmiko."
            )
            attribute_lines.update((f"netmiko.{key}", n) for key, n in netmiko_lines.items())
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
    key_lines = top.key_lines if isinstance(top, LineMapping) else {}
    elements: dict[str, _Element] = {}
    for name, raw in top.items():
        line = key_lines.get(name, 1)
        if not isinstance(name, str):
            raise InventoryError(f"{path}:{line}: {kind} name {name!r} must be text; quote it")
        if not name.strip() or has_control(name):
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
    hostname = checked_hostname(hostname, host.name, spot("hostname"))
    username = checked_username(values["username"][0], host.name, spot("username"))
    platform_text = values["platform"][0] or DEFAULT_PLATFORM
    platform = checked_platform(platform_text, host.name, spot("platform"))
    port = values["port"][0] if values["port"][0] is not None else DEFAULT_PORT
    device = Device(
        name=host.name,
        hostname=hostname,
        port=port,
        username=username,
        platform=platform,
        groups=host.groups,
        data=MappingProxyType(with_platform_command(_merged(chain, "data"), platform_text)),
        netmiko_extras=MappingProxyType(_merged(chain, "extras")),
    )
    return device, tuple(extended)


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
        if world_readable(path):
            warnings.append(
                f"{path}: contains a password and is readable by every user; run: chmod o-r {path}"
            )
    return warnings


def load_nornir(hosts_path: Path, given: Path) -> Inventory:
    directory = hosts_path.parent
    hosts = _elements(hosts_path, load_yaml(hosts_path), "host")
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
        document = load_yaml(found[0])
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
