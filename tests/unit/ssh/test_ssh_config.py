"""collector.ssh.ssh_config: ProxyJump forms, the ssh command built for them, ProxyCommand
tokens, and how the inventory and the ssh_config combine. The built ``ssh`` command
lines are also handed to OpenSSH's own ``ssh -G`` (parse and print, no connection) to
prove OpenSSH reads them as meant."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import MappingProxyType

import pytest
from helpers import invoke

from collector.core.records import Device
from collector.ssh.ssh_config import (
    Hop,
    SshConfigError,
    expand_tokens,
    jump_argv,
    load_ssh_config,
    parse_proxy_jump,
    resolve,
    resolve_device,
)

# --- ProxyJump forms ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hops"),
    [
        ("bastion", [Hop("bastion")]),
        ("admin@bastion", [Hop("bastion", "admin")]),
        ("admin@bastion:2222", [Hop("bastion", "admin", 2222)]),
        ("bastion:2222", [Hop("bastion", None, 2222)]),
        ("ssh://admin@bastion:2222", [Hop("bastion", "admin", 2222)]),
        ("ssh://admin@bastion:2222/", [Hop("bastion", "admin", 2222)]),
        ("SSH://bastion", [Hop("bastion")]),
        ("10.0.0.1:22", [Hop("10.0.0.1", None, 22)]),
        ("[2001:db8::1]:2222", [Hop("2001:db8::1", None, 2222)]),
        ("ops@[2001:db8::1]", [Hop("2001:db8::1", "ops")]),
        ("2001:db8::1", [Hop("2001:db8::1")]),
        ("j1,ops@j2:2200", [Hop("j1"), Hop("j2", "ops", 2200)]),
        ("j1, ssh://j2:23 ,j3", [Hop("j1"), Hop("j2", None, 23), Hop("j3")]),
        ("none", []),
        ("None", []),
    ],
)
def test_proxy_jump_forms(value: str, hops: list[Hop]) -> None:
    assert list(parse_proxy_jump(value)) == hops


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "empty hop"),
        ("j1,,j2", "empty hop"),
        ("j1,", "empty hop"),
        ("admin@", "not a host name"),
        ("bastion:0", "port '0'"),
        ("bastion:70000", "port '70000'"),
        ("bastion:ssh", "port 'ssh'"),
        ("-oProxyCommand=touch", "not a host name"),
        ("b;reboot", "not a host name"),
        ("ssh://bastion/path", "no path"),
        ("-x@bastion", 'starts with "-"'),
        ("[2001:db8::1", "[address]:port"),
    ],
)
def test_proxy_jump_refused_forms(value: str, words: str) -> None:
    with pytest.raises(SshConfigError, match="ProxyJump") as caught:
        parse_proxy_jump(value)
    assert words in str(caught.value)


def test_hop_spec_round_trips() -> None:
    for text in ("j1", "ops@j2:2200", "[2001:db8::1]:22", "ops@[2001:db8::1]"):
        assert [hop.spec() for hop in parse_proxy_jump(text)] == [text]


# --- the ssh command ------------------------------------------------------------------


def test_one_hop_argv() -> None:
    argv = jump_argv(parse_proxy_jump("bastion"), "10.0.0.1", 22, config_file=None)
    assert argv == ("ssh", "-o", "BatchMode=yes", "-W", "[10.0.0.1]:22", "--", "bastion")


def test_user_port_hops_and_config_argv() -> None:
    argv = jump_argv(
        parse_proxy_jump("a@j1:1,j2,ops@j3:2200"),
        "2001:db8::7",
        830,
        config_file=Path("/etc/ike/ssh_config"),
    )
    assert argv == (
        "ssh",
        "-l",
        "ops",
        "-p",
        "2200",
        "-J",
        "a@j1:1,j2",
        "-F",
        "/etc/ike/ssh_config",
        "-o",
        "BatchMode=yes",
        "-W",
        "[2001:db8::7]:830",
        "--",
        "j3",
    )


def test_no_hops_is_a_bug() -> None:
    with pytest.raises(ValueError):
        jump_argv((), "h", 22, config_file=None)


def _openssh_reads(argv: tuple[str, ...]) -> dict[str, str]:
    """``ssh -G`` with our options: what OpenSSH makes of them (no connection)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("ssh (openssh-client) not installed: make system-deps installs it")
    assert argv[0] == "ssh"
    result = subprocess.run(
        [ssh, "-G", *argv[1:]], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings


def test_openssh_accepts_the_built_command(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host j2\n    HostName 192.0.2.2\n", encoding="utf-8")
    argv = jump_argv(
        parse_proxy_jump("ssh://a@j1:2201,ops@j2:2200"), "10.0.0.1", 22, config_file=config
    )
    settings = _openssh_reads(argv)
    assert settings["hostname"] == "192.0.2.2"  # -F: the same config for the hops
    assert settings["user"] == "ops"
    assert settings["port"] == "2200"
    assert settings["proxyjump"] == "a@j1:2201"
    assert settings["batchmode"] == "yes"  # (-W [host]:port runs in the end-to-end tests)


# --- ProxyCommand tokens --------------------------------------------------------------

TOKENS = {"h": "10.0.0.1", "p": "2222", "r": "ops", "n": "r1.lab"}


@pytest.mark.parametrize(
    ("command", "expanded"),
    [
        ("ssh -W %h:%p bastion", "ssh -W 10.0.0.1:2222 bastion"),
        ("nc -X connect -x proxy:3128 %h %p", "nc -X connect -x proxy:3128 10.0.0.1 2222"),
        ("ssh -l %r -W %n:%p b", "ssh -l ops -W r1.lab:2222 b"),
        ("printf 100%% %h", "printf 100% 10.0.0.1"),
        ("no tokens", "no tokens"),
    ],
)
def test_proxy_command_tokens(command: str, expanded: str) -> None:
    assert expand_tokens(command, TOKENS) == expanded


def test_unknown_token_is_refused_like_openssh() -> None:
    with pytest.raises(SshConfigError, match=r"unknown token %C"):
        expand_tokens("ssh -S /tmp/%C", TOKENS)


def test_token_values_that_are_shell_syntax_are_refused() -> None:
    with pytest.raises(SshConfigError, match="not a plain word"):
        expand_tokens("ssh -l %r b", {**TOKENS, "r": "x$(reboot)"})


# --- resolution: the inventory and the ssh_config -------------------------------------


def device(**kwargs: object) -> Device:
    values: dict[str, object] = {"name": "r1", "hostname": "r1.lab"}
    values.update(kwargs)
    return Device(**values)  # type: ignore[arg-type]


def test_without_settings_the_inventory_is_used() -> None:
    target = resolve({"hostname": "r1.lab"}, device(port=2022), default_user="cli")
    assert (target.hostname, target.port, target.user, target.proxy) == (
        "r1.lab",
        2022,
        "cli",
        None,
    )


def test_config_values_apply_where_the_inventory_is_silent() -> None:
    options = {
        "hostname": "10.0.0.1",
        "port": "2222",
        "user": "ops",
        "identityfile": ["~/.ssh/id_vrp", "/keys/k2"],
        "connecttimeout": "7",
        "serveraliveinterval": "15",
    }
    target = resolve(options, device(), default_user="cli")
    assert (target.hostname, target.port, target.user) == ("10.0.0.1", 2222, "ops")
    assert target.identity_files == (str(Path("~/.ssh/id_vrp").expanduser()), "/keys/k2")
    assert (target.connect_timeout, target.server_alive_interval) == (7.0, 15)


def test_the_inventory_wins() -> None:
    options = {"hostname": "10.0.0.1", "port": "2222", "user": "ops"}
    target = resolve(options, device(port=4022, username="inv"), default_user="cli")
    assert (target.port, target.user) == (4022, "inv")


def test_no_user_anywhere_is_none() -> None:
    assert resolve({"hostname": "r1.lab"}, device()).user is None


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"port": "x"}, "port 'x'"),
        ({"user": "-oops"}, "User '-oops'"),
        ({"hostname": "a b"}, "HostName 'a b'"),
        ({"connecttimeout": "0"}, "ConnectTimeout '0'"),
        ({"serveraliveinterval": "-1"}, "ServerAliveInterval '-1'"),
        ({"proxycommand": "ssh -W %h:%p %Z"}, "unknown token %Z"),
    ],
)
def test_unusable_settings_are_named(options: dict[str, str], words: str) -> None:
    with pytest.raises(SshConfigError) as caught:
        resolve({"hostname": "r1.lab", **options}, device())
    assert words in str(caught.value)


def test_proxy_jump_becomes_the_ssh_command_to_the_resolved_target() -> None:
    options = {"hostname": "10.0.0.1", "port": "2222", "proxyjump": "ops@bastion:22"}
    target = resolve(options, device(), config_file=Path("/cfg"))
    assert target.proxy is not None
    assert target.proxy.argv == (
        "ssh",
        "-l",
        "ops",
        "-p",
        "22",
        "-F",
        "/cfg",
        "-o",
        "BatchMode=yes",
        "-W",
        "[10.0.0.1]:2222",
        "--",
        "bastion",
    )
    assert target.proxy.description == "ProxyJump ops@bastion:22"


def test_proxy_command_runs_in_the_shell_with_the_inventory_values() -> None:
    options = {"hostname": "10.0.0.1", "port": "2222", "proxycommand": "ssh -W %h:%p -l %r b"}
    target = resolve(options, device(port=830, username="inv"))
    assert target.proxy is not None
    assert target.proxy.argv == ("/bin/sh", "-c", "exec ssh -W 10.0.0.1:830 -l inv b")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (("proxyjump", "bastion"), ("proxycommand", "nc %h %p"), "ProxyJump bastion"),
        (("proxycommand", "nc %h %p"), ("proxyjump", "bastion"), "ProxyCommand"),
    ],
)
def test_the_first_of_proxy_jump_and_proxy_command_wins(
    first: tuple[str, str], second: tuple[str, str], expected: str
) -> None:
    options = {"hostname": "10.0.0.1", first[0]: first[1], second[0]: second[1]}
    target = resolve(options, device())
    assert target.proxy is not None and target.proxy.description.startswith(expected)


@pytest.mark.parametrize("setting", ["proxyjump", "proxycommand"])
def test_none_means_direct(setting: str) -> None:
    assert resolve({"hostname": "r1.lab", setting: "none"}, device()).proxy is None


# --- from a file ----------------------------------------------------------------------

CONFIG = """\
Host bastion
    HostName 192.0.2.1
    User jump
    ProxyJump none

Host *.lab
    ProxyJump bastion
    User netops
    Port 2222
    ConnectTimeout 5

Host r2.lab
    HostName 10.0.0.2

Host *
    ServerAliveInterval 30
"""


def test_lookup_by_inventory_hostname_first_value_wins(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG, encoding="utf-8")
    r2 = resolve_device(device(name="r2", hostname="r2.lab"), path, "cli")
    assert (r2.hostname, r2.port, r2.user) == ("10.0.0.2", 2222, "netops")
    assert (r2.connect_timeout, r2.server_alive_interval) == (5.0, 30)
    assert r2.proxy is not None
    assert r2.proxy.argv[-3:] == ("[10.0.0.2]:2222", "--", "bastion")
    assert ("-F", str(path)) == r2.proxy.argv[1:3]
    other = resolve_device(device(name="x", hostname="10.9.9.9"), path, "cli")
    assert (other.hostname, other.port, other.user, other.proxy) == ("10.9.9.9", 22, "cli", None)


def test_inventory_extra_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "per-device"
    path.write_text("Host r1.lab\n    User viaextra\n", encoding="utf-8")
    extras = MappingProxyType({"ssh_config_file": str(path)})
    assert resolve_device(device(netmiko_extras=extras), None, None).user == "viaextra"


def test_file_parsed_again_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    path.write_text("Host a\n    User one\n", encoding="utf-8")
    first = load_ssh_config(path)
    assert load_ssh_config(path) is first
    path.write_text("Host a\n    User second\n", encoding="utf-8")
    assert load_ssh_config(path).lookup("a")["user"] == "second"


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(SshConfigError, match="no such file"):
        load_ssh_config(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.write_text("Host a\n    ProxyCommand\n", encoding="utf-8")
    with pytest.raises(SshConfigError, match=str(broken)):
        load_ssh_config(broken)


def test_cli_refuses_a_bad_setting_before_connecting(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("r1:\n  hostname: 192.0.2.1\n  username: ops\n", encoding="utf-8")
    config = tmp_path / "ssh_config"
    config.write_text("Host 192.0.2.1\n    ProxyJump bastion:99999\n", encoding="utf-8")
    result = invoke(
        "collect",
        "--inventory",
        str(inventory),
        "--ssh-config",
        str(config),
        "--no-store",
        password="x",
    )
    assert result.code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "device r1" in lines[0] and str(config) in lines[0] and "99999" in lines[0]


def test_cli_takes_the_user_from_the_ssh_config(tmp_path: Path) -> None:
    """No username in the inventory, none on the command line: the ssh_config's counts
    (the run then fails to connect, but not for want of a user name)."""
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("r1:\n  hostname: 127.0.0.1\n  port: 9\n", encoding="utf-8")
    config = tmp_path / "ssh_config"
    config.write_text("Host 127.0.0.1\n    User ops\n", encoding="utf-8")
    base = ["collect", "--inventory", str(inventory), "--no-store", "--retries", "0"]
    env = {"IKE_COLLECTOR_PASSWORD": "x"}
    without = invoke(*base, env=env)
    assert without.code == 2 and "no SSH user name for r1" in without.stderr
    with_config = invoke(*base, "--ssh-config", str(config), env=env)
    assert with_config.code == 3, with_config.stderr
    assert "unreachable" in with_config.stderr
