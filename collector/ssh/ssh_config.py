"""One device's OpenSSH client settings, resolved from an ssh_config file.

:func:`resolve` (pure) looks the device's inventory ``hostname`` up in a parsed
``paramiko.SSHConfig`` and returns an :class:`SshTarget`: where to connect (``HostName``,
``Port``), as whom (``User``), with which keys (``IdentityFile``), ``ConnectTimeout``,
``ServerAliveInterval`` and, for a jump host, the proxy command to start (:class:`Proxy`).
The inventory wins where it sets a value (``username``; a ``port`` other than 22), and
``--username`` applies only where neither the inventory nor the ssh_config names a user.

Jump hosts are built the way OpenSSH builds them:

* ``ProxyJump`` in every form ``ssh`` accepts (``host``, ``user@host``, ``user@host:port``,
  ``ssh://user@host:port``, ``[v6addr]:port``, several hops separated by commas, ``none``)
  becomes ``ssh [-l user] [-p port] [-J earlier,hops] [-F config] -o BatchMode=yes
  -W [target]:port -- lasthop`` (:func:`jump_argv`), exactly what OpenSSH itself runs for
  ``ProxyJump``, plus ``BatchMode`` so a bastion never prompts. It runs without a shell.
* ``ProxyCommand`` has its ``%h %p %r %n %%`` tokens expanded (:func:`expand_tokens`) and
  runs as ``/bin/sh -c 'exec COMMAND'``, as OpenSSH runs it. Token values that would be
  shell syntax are refused.
* Whichever of the two comes first in the file wins, as in OpenSSH.

:func:`load_ssh_config` (the I/O edge) reads and parses a file once per change.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from collector.core.errors import CollectorError
from collector.core.records import Device
from collector.inventory.validation import username_problem, valid_hostname

__all__ = [
    "DEFAULT_PORT",
    "Hop",
    "Proxy",
    "SshConfigError",
    "SshTarget",
    "config_path_for",
    "expand_tokens",
    "jump_argv",
    "load_ssh_config",
    "parse_proxy_jump",
    "resolve",
    "resolve_device",
]

DEFAULT_PORT = 22
SHELL = "/bin/sh"


class SshConfigError(CollectorError, ValueError):
    """A setting of the ssh_config that cannot be used; the message names it."""


class _RawSSHConfig(paramiko.SSHConfig):
    """paramiko's parser, without its token expansion in ``ProxyCommand``/``ProxyJump``.

    paramiko fills ``%p``/``%r`` from the ssh_config alone and knows no ``%n``; the
    inventory's port and user must win, so :func:`expand_tokens` does it instead.
    """

    TOKENS_BY_CONFIG_KEY = {
        **paramiko.SSHConfig.TOKENS_BY_CONFIG_KEY,
        "proxycommand": [],
        "proxyjump": [],
    }


# --- ProxyJump ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    """One jump host of a ``ProxyJump`` list."""

    host: str
    user: str | None = None
    port: int | None = None

    def spec(self) -> str:
        """The hop as ``ssh -J`` takes it (``[user@]host[:port]``, v6 addresses bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{host}{port}"


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SshConfigError(f"{where}: port {text!r} is not a number 1-65535")
    return int(text)


def _hop(text: str, value: str) -> Hop:
    where = f"ProxyJump {value!r}"
    rest = text.strip()
    if rest.lower().startswith("ssh://"):
        rest = rest[len("ssh://") :]
        if rest.endswith("/"):
            rest = rest[:-1]
        if "/" in rest:
            raise SshConfigError(f"{where}: an ssh:// URI has no path ({text!r})")
    user: str | None = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
        problem = username_problem(user)
        if problem is not None:
            raise SshConfigError(f"{where}: user {user!r} {problem}")
    port: int | None = None
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise SshConfigError(f"{where}: {text!r} is not [address]:port")
        if tail:
            port = _port(tail[1:], where)
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = _port(port_text, where)
    else:
        host = rest  # a name, an IPv4 address, or a bare IPv6 address (no port)
    if not valid_hostname(host):
        raise SshConfigError(f"{where}: {host!r} is not a host name or address")
    return Hop(host, user, port)


def parse_proxy_jump(value: str) -> tuple[Hop, ...]:
    """The hops of a ``ProxyJump`` value, first hop first; ``()`` for ``none``.

    Raises:
        SshConfigError: a hop OpenSSH would refuse too (empty, bad port, bad user).

    Examples:
        >>> parse_proxy_jump("admin@bastion:2222")
        (Hop(host='bastion', user='admin', port=2222),)
        >>> [hop.spec() for hop in parse_proxy_jump("ssh://j1, j2:22")]
        ['j1', 'j2:22']
        >>> parse_proxy_jump("none")
        ()
    """
    text = value.strip()
    if text.lower() == "none":
        return ()
    parts = text.split(",")
    if any(not part.strip() for part in parts):
        raise SshConfigError(f"ProxyJump {value!r}: an empty hop")
    return tuple(_hop(part, value) for part in parts)


def _forward_target(host: str, port: int) -> str:
    # The form OpenSSH uses itself ('[%h]:%p'): also right for IPv6 addresses.
    return f"[{host}]:{port}"


def jump_argv(
    hops: tuple[Hop, ...], host: str, port: int, *, config_file: Path | None
) -> tuple[str, ...]:
    """The ``ssh`` command that reaches ``host:port`` through ``hops`` (OpenSSH's own form).

    The last hop forwards (``-W``) to the target; the earlier ones are its ``-J`` list;
    ``-F`` makes every ``ssh`` read the same ssh_config (the hops' ``User``, ``Port``,
    ``IdentityFile``, known hosts), ``BatchMode=yes`` forbids any prompt.

    Examples:
        >>> jump_argv(parse_proxy_jump("j1,admin@j2:2200"), "10.0.0.1", 22, config_file=None)
        ('ssh', '-l', 'admin', '-p', '2200', '-J', 'j1', '-o', 'BatchMode=yes', \
'-W', '[10.0.0.1]:22', '--', 'j2')
    """
    if not hops:
        raise ValueError("no hops")
    last = hops[-1]
    argv = ["ssh"]
    if last.user:
        argv += ["-l", last.user]
    if last.port is not None:
        argv += ["-p", str(last.port)]
    if len(hops) > 1:
        argv += ["-J", ",".join(hop.spec() for hop in hops[:-1])]
    if config_file is not None:
        argv += ["-F", str(config_file)]
    argv += ["-o", "BatchMode=yes", "-W", _forward_target(host, port), "--", last.host]
    return tuple(argv)


# --- ProxyCommand ---------------------------------------------------------------------

_TOKEN = re.compile(r"%(.?)")
_SHELL_SAFE = re.compile(r"[A-Za-z0-9._:@+=,%\[\]-]+")
"""Token values that are plain words to ``/bin/sh`` (names, addresses, ports, users)."""


def expand_tokens(command: str, values: Mapping[str, str], *, setting: str = "ProxyCommand") -> str:
    """``command`` with ``%h %p %r %n %%`` replaced, as OpenSSH expands ``ProxyCommand``.

    Raises:
        SshConfigError: an unknown token, or a value that is not a plain shell word.

    Examples:
        >>> expand_tokens("nc %h %p # %%", {"h": "10.0.0.1", "p": "22", "r": "u", "n": "r1"})
        'nc 10.0.0.1 22 # %'
    """

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "%":
            return "%"
        if key == "r" and "r" not in values:
            raise SshConfigError(
                f"{setting}: %r in {command!r} needs a user name: set 'username' in the"
                " inventory or User in the ssh_config, or pass --username"
            )
        if key not in values:
            accepted = ", ".join(f"%{name}" for name in ("%", *sorted(values)))
            raise SshConfigError(
                f"{setting}: unknown token %{key} in {command!r} (accepted: {accepted})"
            )
        value = values[key]
        if not _SHELL_SAFE.fullmatch(value):
            raise SshConfigError(
                f"{setting}: %{key} would be {value!r}, which is not a plain word for the shell"
            )
        return value

    return _TOKEN.sub(one, command)


# --- resolution -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proxy:
    """A command whose stdin/stdout carry the SSH connection to the target."""

    argv: tuple[str, ...]
    """Run without a shell (a ``ProxyCommand`` is ``/bin/sh -c 'exec ...'`` itself)."""
    description: str
    """For messages: ``ProxyJump admin@bastion`` or ``ProxyCommand 'nc %h %p'``."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to reach one device: the inventory and its ssh_config combined."""

    hostname: str
    port: int
    user: str | None
    identity_files: tuple[str, ...] = ()
    connect_timeout: float | None = None
    server_alive_interval: int | None = None
    proxy: Proxy | None = None
    config_file: Path | None = field(default=None, compare=False)


def _positive_int(options: Mapping[str, Any], key: str, name: str, *, zero: bool) -> int | None:
    text = options.get(key)
    if text is None:
        return None
    text = str(text).strip()
    if not text.isdigit() or (int(text) == 0 and not zero):
        raise SshConfigError(f"{name} {text!r} is not a whole number of seconds")
    return int(text)


def _first_proxy_setting(options: Mapping[str, Any]) -> str | None:
    """``proxycommand`` or ``proxyjump``: the first one the file sets wins, as in OpenSSH
    (paramiko keeps the settings in the order they were first seen)."""
    for key in options:
        if key in ("proxycommand", "proxyjump"):
            return key
    return None


def resolve(
    options: Mapping[str, Any],
    device: Device,
    *,
    default_user: str | None = None,
    config_file: Path | None = None,
) -> SshTarget:
    """Combine a device's inventory entry with its ssh_config ``options`` (pure).

    ``options`` is ``SSHConfig.lookup(device.hostname)`` (keys lower case). The inventory
    wins: its ``username``, and its ``port`` unless it is the default 22 (the inventory
    cannot tell "22" from "not set"). ``default_user`` (``--username``) comes last.

    Raises:
        SshConfigError: a setting that cannot be used (the message names it).

    Examples:
        >>> target = resolve({"hostname": "10.0.0.1", "port": "2222", "user": "ops"},
        ...                  Device("r1", "r1.lab"))
        >>> target.hostname, target.port, target.user
        ('10.0.0.1', 2222, 'ops')
    """
    hostname = str(options.get("hostname") or device.hostname)
    if not valid_hostname(hostname):
        raise SshConfigError(f"HostName {hostname!r} is not a host name or address")
    port = device.port
    if port == DEFAULT_PORT and options.get("port") is not None:
        port = _port(str(options["port"]).strip(), "Port")
    config_user = options.get("user")
    if config_user is not None:
        problem = username_problem(str(config_user))
        if problem is not None:
            raise SshConfigError(f"User {config_user!r} {problem}")
    user = device.username or (str(config_user) if config_user else None) or default_user
    identity_files = tuple(str(Path(path).expanduser()) for path in options.get("identityfile", ()))
    connect_timeout = _positive_int(options, "connecttimeout", "ConnectTimeout", zero=False)
    alive = _positive_int(options, "serveraliveinterval", "ServerAliveInterval", zero=True)
    tokens = {"h": hostname, "p": str(port), "n": device.hostname}
    if user:
        tokens["r"] = user
    proxy: Proxy | None = None
    setting = _first_proxy_setting(options)
    if setting == "proxyjump":
        value = expand_tokens(str(options["proxyjump"]), tokens, setting="ProxyJump")
        hops = parse_proxy_jump(value)
        if hops:
            argv = jump_argv(hops, hostname, port, config_file=config_file)
            proxy = Proxy(argv, f"ProxyJump {value}")
    elif setting == "proxycommand":
        raw = str(options["proxycommand"]).strip()
        if raw.lower() != "none":
            command = expand_tokens(raw, tokens)
            proxy = Proxy((SHELL, "-c", f"exec {command}"), f"ProxyCommand {command!r}")
    return SshTarget(
        hostname=hostname,
        port=port,
        user=user,
        identity_files=identity_files,
        connect_timeout=float(connect_timeout) if connect_timeout else None,
        server_alive_interval=alive or None,
        proxy=proxy,
        config_file=config_file,
    )


# --- the file -------------------------------------------------------------------------

_CACHE: dict[Path, tuple[tuple[int, int], paramiko.SSHConfig]] = {}
_CACHE_LOCK = threading.Lock()


def load_ssh_config(path: Path) -> paramiko.SSHConfig:
    """The parsed ssh_config at ``path`` (parsed again only when the file changes).

    Raises:
        SshConfigError: the file cannot be read or parsed (the message names it).
    """
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with _CACHE_LOCK:
            cached = _CACHE.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        config = _RawSSHConfig()
        with path.open(encoding="utf-8") as handle:
            config.parse(handle)
    except FileNotFoundError:
        raise SshConfigError(f"ssh_config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as exc:
        raise SshConfigError(f"ssh_config {path}: {exc}") from None
    with _CACHE_LOCK:
        _CACHE[path] = (stamp, config)
    return config


def config_path_for(device: Device, ssh_config_file: Path | None) -> Path | None:
    """The ssh_config for ``device``: ``--ssh-config``, else its inventory extra
    ``ssh_config_file`` (``connection_options.netmiko.extras``), else none."""
    if ssh_config_file is not None:
        return ssh_config_file.expanduser().absolute()
    extra = device.netmiko_extras.get("ssh_config_file")
    if extra:
        return Path(str(extra)).expanduser().absolute()
    return None


def resolve_device(
    device: Device, ssh_config_file: Path | None, default_user: str | None
) -> SshTarget:
    """:func:`resolve` for ``device`` with its ssh_config file (read here), if any.

    Raises:
        SshConfigError: the file, or one of the settings for this device, is unusable;
            the message names the file and the device.
    """
    path = config_path_for(device, ssh_config_file)
    if path is None:
        return SshTarget(device.hostname, device.port, device.username or default_user)
    config = load_ssh_config(path)
    try:
        options = config.lookup(device.hostname)
        return resolve(options, device, default_user=default_user, config_file=path)
    except Exception as exc:  # ours, or paramiko's (a broken Match, canonicalisation)
        raise SshConfigError(f"ssh_config {path}, host {device.hostname}: {exc}") from None
