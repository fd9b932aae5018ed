"""Inventory loading (Nornir YAML, CSV), validation errors with file and line, filters, shards."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT

from collector.core.records import Device
from collector.inventory.loading import load_inventory
from collector.inventory.model import Inventory, InventoryError
from collector.inventory.selection import Shard, parse_shard, parse_where, select
from collector.inventory.validation import username_problem, valid_hostname

EXAMPLES = ROOT / "inventory"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def nornir(
    tmp_path: Path, hosts: str, groups: str | None = None, defaults: str | None = None
) -> Path:
    write(tmp_path, "hosts.yaml", hosts)
    if groups is not None:
        write(tmp_path, "groups.yaml", groups)
    if defaults is not None:
        write(tmp_path, "defaults.yaml", defaults)
    return tmp_path


def error_of(path: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


def by_name(inventory: Inventory) -> dict[str, Device]:
    return {device.name: device for device in inventory.devices}


# ----------------------------------------------------------------------- examples


def test_example_nornir_directory_and_hosts_file_agree() -> None:
    from_dir = load_inventory(EXAMPLES / "example")
    from_file = load_inventory(EXAMPLES / "example" / "hosts.yaml")
    assert from_dir.devices == from_file.devices
    assert [d.name for d in from_dir.devices] == [
        "par1-ar-01",
        "par1-ar-02",
        "par1-usg-01",
        "lyo1-ar-01",
        "lyo1-usg-01",
    ]
    assert from_dir.warnings == ()


def test_example_csv_matches_nornir_on_the_basics() -> None:
    yaml_devices = {d.name: d for d in load_inventory(EXAMPLES / "example").devices}
    csv_devices = load_inventory(EXAMPLES / "example.csv").devices
    assert len(csv_devices) == len(yaml_devices)
    for device in csv_devices:
        twin = yaml_devices[device.name]
        assert (device.hostname, device.port, device.platform, device.site, device.groups) == (
            twin.hostname,
            twin.port,
            twin.platform,
            twin.site,
            twin.groups,
        )


# -------------------------------------------------------------------- inheritance


INHERIT_HOSTS = """
r1:
  groups: [g_a, g_b]
  data:
    own: host
r2:
  hostname: 10.0.0.2
  port: 2022
  username: hostuser
  platform: vrpv8
  groups: [g_b]
  data:
    site: host-site
r3: {}
"""
INHERIT_GROUPS = """
g_a:
  groups: [g_1, g_2]
  data:
    level: g_a
g_b:
  groups: [g_2, g_3]
  port: 3022
  data:
    level: g_b
    b_only: yes
g_1:
  groups: [g_x]
  hostname: from-g1.example.net
g_2:
  username: g2user
  data:
    site: g2-site
g_3:
  username: g3user
  platform: huawei_vrpv8
g_x:
  port: 4022
  username: gxuser
  data:
    level: g_x
    x_only: 1
"""
INHERIT_DEFAULTS = """
port: 5022
username: defaultuser
platform: huawei
data:
  timezone: UTC
  level: defaults
connection_options:
  netmiko:
    extras:
      ssh_config_file: /etc/ssh/ssh_config
      fast_cli: false
"""


@pytest.fixture
def inherited(tmp_path: Path) -> Inventory:
    return load_inventory(nornir(tmp_path, INHERIT_HOSTS, INHERIT_GROUPS, INHERIT_DEFAULTS))


def test_nested_groups_depth_first_order(inherited: Inventory) -> None:
    # Nornir's extended_groups: [g_a, g_1, g_x, g_2, g_b, g_3]
    r1 = by_name(inherited)["r1"]
    assert inherited.groups_of(r1) == ("g_a", "g_1", "g_x", "g_2", "g_b", "g_3")


def test_attributes_come_from_first_group_depth_first(inherited: Inventory) -> None:
    r1 = by_name(inherited)["r1"]
    # hostname: g_1 (depth-first before g_b's nothing); port: g_x (4022) comes before g_b
    # (3022) in depth-first order; username: g_x before g_2, g_3.
    assert r1.hostname == "from-g1.example.net"
    assert r1.port == 4022
    assert r1.username == "gxuser"
    # platform: only g_3 (last group) sets one; it wins over the defaults.
    assert r1.platform == "huawei_vrpv8"
    assert r1.groups == ("g_a", "g_b")


def test_data_merged_key_by_key(inherited: Inventory) -> None:
    r1 = by_name(inherited)["r1"]
    assert dict(r1.data) == {
        "own": "host",
        "level": "g_a",
        "x_only": 1,
        "site": "g2-site",
        "b_only": True,
        "timezone": "UTC",
    }


def test_host_values_win_and_platform_alias(inherited: Inventory) -> None:
    r2 = by_name(inherited)["r2"]
    assert (r2.hostname, r2.port, r2.username, r2.platform) == (
        "10.0.0.2",
        2022,
        "hostuser",
        "huawei_vrpv8",
    )
    assert r2.site == "host-site"


def test_defaults_and_hostname_defaults_to_name(inherited: Inventory) -> None:
    r3 = by_name(inherited)["r3"]
    assert (r3.hostname, r3.port, r3.username, r3.platform) == (
        "r3",
        5022,
        "defaultuser",
        "huawei",
    )
    assert dict(r3.netmiko_extras) == {
        "ssh_config_file": "/etc/ssh/ssh_config",
        "fast_cli": False,
    }
    assert dict(r3.data) == {"timezone": "UTC", "level": "defaults"}


def test_data_is_read_only(inherited: Inventory) -> None:
    r1 = inherited.devices[0]
    with pytest.raises(TypeError):
        r1.data["site"] = "x"  # type: ignore[index]


def test_extras_merged_and_netmiko_overrides(tmp_path: Path) -> None:
    inventory = load_inventory(
        nornir(
            tmp_path,
            """
            r1:
              hostname: 10.0.0.1
              groups: [g]
              connection_options:
                netmiko:
                  port: 8022
                  extras:
                    use_keys: true
            """,
            """
            g:
              connection_options:
                netmiko:
                  username: viaconn
                  extras:
                    use_keys: false
                    key_file: /k
                napalm:
                  extras:
                    optional_args: {}
            """,
            """
            username: plain
            """,
        )
    )
    (device,) = inventory.devices
    assert dict(device.netmiko_extras) == {"use_keys": True, "key_file": "/k"}
    assert device.port == 8022
    assert device.username == "viaconn"


def test_platform_aliases(tmp_path: Path) -> None:
    inventory = load_inventory(
        nornir(
            tmp_path,
            """
            a: {hostname: 10.0.0.1, platform: huawei_vrp}
            b: {hostname: 10.0.0.2, platform: VRP}
            c: {hostname: 10.0.0.3, platform: vrpv8}
            d: {hostname: 10.0.0.4, platform: huawei_vrpv8}
            e: {hostname: 10.0.0.5}
            """,
        )
    )
    assert [d.platform for d in inventory.devices] == [
        "huawei",
        "huawei",
        "huawei_vrpv8",
        "huawei_vrpv8",
        "huawei",
    ]


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    inventory = load_inventory(
        nornir(
            tmp_path,
            """
            r1: &base
              hostname: 10.0.0.1
              port: 22
            r2:
              <<: *base
              hostname: 10.0.0.2
            """,
        )
    )
    assert [(d.hostname, d.port) for d in inventory.devices] == [
        ("10.0.0.1", 22),
        ("10.0.0.2", 22),
    ]


def test_yml_extension_and_bare_host_entries(tmp_path: Path) -> None:
    write(tmp_path, "hosts.yml", "r1:\nr2:\n  hostname: 10.0.0.2\n")
    inventory = load_inventory(tmp_path)
    assert [(d.name, d.hostname) for d in inventory.devices] == [("r1", "r1"), ("r2", "10.0.0.2")]


# ------------------------------------------------------------------------ errors


def assert_location(message: str, path: Path, line: int) -> None:
    assert message.startswith(f"{path}:{line}:"), message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  port: [22\nr2:\n  x: 1\n")
    message = error_of(directory)
    assert re.match(rf"{re.escape(str(directory / 'hosts.yaml'))}:\d+: not valid YAML", message)
    # The error is detected lines later; the message also names where the [ was opened.
    assert "started at line 3" in message


def test_duplicate_host_names(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\nr2: {}\nr1:\n  hostname: 10.0.0.9\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 4)
    assert "duplicate key 'r1'" in message and "line 1" in message


def test_duplicate_key_inside_host(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  hostname: 10.0.0.2\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 3)


def test_duplicate_group_names(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [g]}\n", "g: {}\nh: {}\ng: {port: 22}\n")
    assert_location(error_of(directory), directory / "groups.yaml", 3)


def test_unknown_host_key(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  site: par1\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "unknown key 'site'" in message and "data" in message


def test_unknown_group_key(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [g]}\n", "g:\n  port: 22\n  vrf: x\n")
    assert_location(error_of(directory), directory / "groups.yaml", 3)


def test_unknown_defaults_key_and_groups_not_allowed_in_defaults(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {}\n", None, "port: 22\ngroups: [g]\n")
    message = error_of(directory)
    assert_location(message, directory / "defaults.yaml", 2)
    assert "unknown key 'groups'" in message


def test_unknown_connection_option_key(tmp_path: Path) -> None:
    directory = nornir(
        tmp_path,
        "r1:\n  connection_options:\n    netmiko:\n      extra: {}\n",
    )
    assert_location(error_of(directory), directory / "hosts.yaml", 4)


@pytest.mark.parametrize("port", ["'22'", "0", "65536", "true", "22.5", "[22]"])
def test_bad_port(tmp_path: Path, port: str) -> None:
    directory = nornir(tmp_path, f"r1:\n  hostname: 10.0.0.1\n  port: {port}\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "1-65535" in message


def test_bad_port_in_group(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [g]}\n", "g:\n  data: {}\n  port: ssh\n")
    assert_location(error_of(directory), directory / "groups.yaml", 3)


def test_groups_not_a_list(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  groups: core\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "list" in message


def test_data_not_a_mapping(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  data: [1, 2]\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 2)


def test_hostname_not_text(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 2)


def test_host_not_a_mapping(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {}\nr2: just text\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 2)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "- r1\n- r2\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 1)


def test_no_hosts(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "# nothing yet\n")
    assert "no hosts" in error_of(directory)


def test_undefined_group(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {}\nr2:\n  groups: [core, nope]\n", "core: {}\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "undefined group 'nope'" in message


def test_undefined_nested_group(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [a]}\n", "a:\n  groups: [b]\n")
    assert_location(error_of(directory), directory / "groups.yaml", 2)


def test_group_cycle(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [a]}\n", "a:\n  groups: [b]\nb:\n  groups: [a]\n")
    message = error_of(directory)
    assert "cycle" in message and str(directory / "groups.yaml") in message


def test_unknown_platform(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  platform: cisco_ios\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "'cisco_ios'" in message and "'r1'" in message


def test_unknown_platform_from_group_names_group_line(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {groups: [g]}\n", "g:\n  data: {}\n  platform: junos\n")
    message = error_of(directory)
    assert_location(message, directory / "groups.yaml", 3)
    assert "'r1'" in message


@pytest.mark.parametrize(
    "hostname",
    [
        "10.0.0.1; reboot",
        "r1\\nsystem-view",
        "-oProxyCommand=touch x",
        "host name",
        "$(id)",
        "`id`",
        "a|b",
        "10.0.0.300",
        "r1\\tx",
        "bad..name",
        "x" * 64 + ".example",
    ],
)
def test_hostile_hostname_refused(tmp_path: Path, hostname: str) -> None:
    directory = nornir(tmp_path, f'r1:\n  data: {{}}\n  hostname: "{hostname}"\n')
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "refused before connecting" in message


@pytest.mark.parametrize(
    "username", ["admin\\nsave", "-l root", "ad min", "a;b", "$(id)", "x\\u0007", "a`b`"]
)
def test_hostile_username_refused(tmp_path: Path, username: str) -> None:
    directory = nornir(tmp_path, f'r1:\n  hostname: 10.0.0.1\n  username: "{username}"\n')
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 3)
    assert "refused before connecting" in message


def test_hostile_username_from_defaults(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: {}\n", None, 'port: 22\nusername: "a\\nb"\n')
    assert_location(error_of(directory), directory / "defaults.yaml", 2)


@pytest.mark.parametrize("key", ["host", "ip", "port", "username", "device_type"])
def test_extras_may_not_override_validated_fields(tmp_path: Path, key: str) -> None:
    directory = nornir(
        tmp_path,
        f"r1:\n  connection_options:\n    netmiko:\n      extras:\n        {key}: x\n",
    )
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 5)


def test_valid_hostnames() -> None:
    for value in ["10.0.0.1", "2001:db8::1", "fe80::1%eth0", "r1", "r1.example.net.", "a_b.lab"]:
        assert valid_hostname(value), value
    assert username_problem("netops@corp.example") is None
    assert username_problem("") == "is empty"


def test_not_yaml_or_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.txt", "r1 10.0.0.1\n")
    message = error_of(path)
    assert message.startswith(f"{path}:") and "YAML" in message and "CSV" in message


def test_binary_and_non_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "hosts.yaml"
    binary.write_bytes(b"r1:\n\x00\x01\x02")
    assert "binary" in error_of(binary)
    latin = tmp_path / "b.csv"
    latin.write_bytes(b"name,hostname\nr1,10.0.0.1\nr\xe9,10.0.0.2\n")
    assert_location(error_of(latin), latin, 3)


def test_directory_without_hosts(tmp_path: Path) -> None:
    assert "no hosts.yaml" in error_of(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in error_of(tmp_path / "nope.yaml")


def test_python_tags_refused(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: !!python/object/apply:os.system ['id']\n")
    assert_location(error_of(directory), directory / "hosts.yaml", 1)


def test_yaml_alias_to_itself_is_an_error(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1: &a\n  data:\n    self: *a\n")
    assert str(directory / "hosts.yaml") in error_of(directory)


# ---------------------------------------------------------------------- passwords


def test_password_warns_and_never_echoes(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  hostname: 10.0.0.1\n  password: Canary-s3cret\n")
    os.chmod(directory / "hosts.yaml", 0o600)
    inventory = load_inventory(directory)
    assert len(inventory.warnings) == 1
    assert "password" in inventory.warnings[0]
    assert inventory.warnings[0].startswith(f"{directory / 'hosts.yaml'}:1:")
    everything = repr(inventory) + "".join(inventory.warnings)
    assert "Canary-s3cret" not in everything


def test_world_readable_password_file_warns(tmp_path: Path) -> None:
    directory = nornir(
        tmp_path,
        "r1: {}\n",
        None,
        "connection_options:\n  netmiko:\n    password: Canary-s3cret\n",
    )
    os.chmod(directory / "defaults.yaml", 0o644)
    inventory = load_inventory(directory)
    readable = [w for w in inventory.warnings if "readable by every user" in w]
    assert readable and str(directory / "defaults.yaml") in readable[0]
    assert "Canary-s3cret" not in repr(inventory) + "".join(inventory.warnings)


def test_password_of_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    directory = nornir(tmp_path, "r1:\n  password: 123456789\n")
    message = error_of(directory)
    assert_location(message, directory / "hosts.yaml", 2)
    assert "123456789" not in message


def test_no_password_no_warning(tmp_path: Path) -> None:
    assert load_inventory(nornir(tmp_path, "r1: {}\n")).warnings == ()


# ---------------------------------------------------------------------------- CSV


def test_csv_columns_groups_and_extra_data(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fleet.csv",
        """
        # comment lines and blank lines are skipped
        name,hostname,port,platform,site,groups,username,rack

        r1,10.0.0.1,2222,vrp,par1,core;paris,netops,R12
        r2,,,,,,,
        "r3",2001:db8::3,22,huawei_vrpv8,lyo1,core|lyon,,
        """,
    )
    devices = {d.name: d for d in load_inventory(path).devices}
    r1, r2, r3 = devices["r1"], devices["r2"], devices["r3"]
    assert (r1.hostname, r1.port, r1.platform, r1.groups, r1.username) == (
        "10.0.0.1",
        2222,
        "huawei",
        ("core", "paris"),
        "netops",
    )
    assert dict(r1.data) == {"site": "par1", "rack": "R12"}
    assert (r2.hostname, r2.port, r2.platform, r2.groups, r2.username, dict(r2.data)) == (
        "r2",
        22,
        "huawei",
        (),
        None,
        {},
    )
    assert r3.groups == ("core", "lyon") and r3.platform == "huawei_vrpv8"


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("r1,10.0.0.1,22\nr1,10.0.0.2,22\n", 3, "duplicate host name 'r1'"),
        ("r1,10.0.0.1,abc\n", 2, "1-65535"),
        ("r1,10.0.0.1,70000\n", 2, "1-65535"),
        ("r1,10.0.0.1\n", 2, "fields"),
        ("r1,'10.0.0.1;id',22\n", 2, "refused before connecting"),
        ('r1,"r1\nreboot",22\n', 2, "refused before connecting"),
        ("r1,-oProxyCommand=x,22\n", 2, "refused before connecting"),
    ],
)
def test_csv_errors(tmp_path: Path, body: str, line: int, needle: str) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("name,hostname,port\n" + body, encoding="utf-8")
    message = error_of(path)
    assert_location(message, path, line)
    assert needle in message


def test_csv_bad_platform_and_username(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("name,hostname,platform,username\nr1,10.0.0.1,ios,x\n", encoding="utf-8")
    assert_location(error_of(path), path, 2)
    path.write_text("name,hostname,platform,username\nr1,10.0.0.1,vrp,a;b\n", encoding="utf-8")
    assert "refused before connecting" in error_of(path)


def test_csv_header_needs_name(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("host,ip\nr1,10.0.0.1\n", encoding="utf-8")
    assert_location(error_of(path), path, 1)
    path.write_text("name,name\nr1,r2\n", encoding="utf-8")
    assert "duplicate" in error_of(path)


def test_csv_password_column_warns(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("name,hostname,password\nr1,10.0.0.1,Canary-s3cret\n", encoding="utf-8")
    os.chmod(path, 0o644)
    inventory = load_inventory(path)
    assert len(inventory.warnings) == 2
    assert "Canary-s3cret" not in repr(inventory) + "".join(inventory.warnings)
    assert "password" not in inventory.devices[0].data


# ------------------------------------------------------------------------ filters


@pytest.fixture
def example() -> Inventory:
    return load_inventory(EXAMPLES / "example")


def names(devices: tuple[Device, ...]) -> list[str]:
    return [d.name for d in devices]


def test_no_filter_keeps_all(example: Inventory) -> None:
    assert select(example) == example.devices


def test_host_globs_are_or(example: Inventory) -> None:
    assert names(select(example, hosts=["par1-ar-*"])) == ["par1-ar-01", "par1-ar-02"]
    assert names(select(example, hosts=["*usg*", "lyo1-ar-01"])) == [
        "par1-usg-01",
        "lyo1-ar-01",
        "lyo1-usg-01",
    ]
    assert select(example, hosts=["PAR1-*"]) == ()


def test_group_direct_and_nested(example: Inventory) -> None:
    assert names(select(example, groups=["firewalls"])) == ["par1-usg-01", "lyo1-usg-01"]
    assert len(select(example, groups=["europe"])) == 5
    assert names(select(example, groups=["lyon", "nope"])) == ["lyo1-ar-01", "lyo1-usg-01"]


def test_where_is_and_and_compares_text(tmp_path: Path, example: Inventory) -> None:
    assert names(select(example, where=[("site", "lyo1"), ("region", "europe")])) == [
        "lyo1-ar-01",
        "lyo1-usg-01",
    ]
    assert select(example, where=[("site", "lyo1"), ("role", "vpn-hub")]) == ()
    inventory = load_inventory(
        nornir(tmp_path, "r1:\n  data: {rack: 12, vip: true}\nr2:\n  data: {rack: '12'}\n")
    )
    assert names(select(inventory, where=[("rack", "12")])) == ["r1", "r2"]
    assert names(select(inventory, where=[("vip", "true")])) == ["r1"]


def test_filters_combine(example: Inventory) -> None:
    chosen = select(example, hosts=["*-01"], groups=["routers"], where=[("site", "par1")])
    assert names(chosen) == ["par1-ar-01"]


def test_parse_where_and_shard() -> None:
    assert parse_where("site = par1") == ("site", "par1")
    assert parse_where("note=a=b") == ("note", "a=b")
    assert parse_shard(" 3/8 ") == Shard(3, 8)
    assert str(Shard(1, 2)) == "1/2"
    for bad in ["", "site", "=x"]:
        with pytest.raises(ValueError):
            parse_where(bad)
    for bad in ["0/4", "5/4", "1/0", "a/b", "1", "-1/4", "1/4/2"]:
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_shards_partition_the_fleet_deterministically(tmp_path: Path) -> None:
    hosts = "".join(
        f"dev-{index:04d}:\n  hostname: 10.0.{index // 250}.{index % 250}\n" for index in range(600)
    )
    inventory = load_inventory(nornir(tmp_path, hosts))
    for count in (1, 2, 3, 7):
        shards = [select(inventory, shard=Shard(k, count)) for k in range(1, count + 1)]
        seen = [device.name for shard in shards for device in shard]
        assert sorted(seen) == sorted(d.name for d in inventory.devices)  # each exactly once
        assert len(seen) == len(set(seen))
        if count > 1:
            assert all(shards), "no shard is empty for 600 devices"
    # Fixed values: the split must not change between processes or Python versions.
    assert Shard(1, 4).holds("dev-0000") == (zlib_crc("dev-0000") % 4 == 0)
    assert [k for k in range(1, 5) if Shard(k, 4).holds("par1-ar-01")] == [
        zlib_crc("par1-ar-01") % 4 + 1
    ]


def zlib_crc(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode())


def test_shard_stable_across_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "from collector.inventory.selection import Shard;"
        "print([k for n in ['a','bb','r1','dev-0042'] for k in range(1,6) if Shard(k,5).holds(n)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_billion_laughs_stays_small(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    body = "\n".join(f"    {line}" for line in levels)
    directory = nornir(tmp_path, f"r1:\n  hostname: 10.0.0.1\n  data:\n{body}\n")
    (device,) = load_inventory(directory).devices
    assert len(device.data["a8"]) == 10
