"""SSH credentials: where the password comes from, and keeping it out of every output.

The password never comes from the inventory or the command line (argv is visible in the
process list): it comes from an environment variable (``--password-env``, default
``IKE_COLLECTOR_PASSWORD``), else from a hidden prompt when stdin is a terminal, else the
run stops with :class:`CredentialsError`. Keys (``key_file``) and the SSH agent are passed to
netmiko; an OpenSSH ``ssh_config`` is resolved per device by :mod:`collector.ssh.ssh_config`.

The password is held in a :class:`Secret`, whose ``repr``, ``str`` and ``format`` are
masked, so it cannot end up in a log line, an exception message or a report by accident.
:class:`SecretMasker`, :class:`MaskingFilter` and :class:`MaskingFormatter` mask it in log
records too (the ``-vv`` device conversation).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.core.errors import CollectorError

__all__ = [
    "DEFAULT_PASSWORD_ENV",
    "MASK",
    "Credentials",
    "CredentialsError",
    "MaskingFilter",
    "MaskingFormatter",
    "Secret",
    "SecretMasker",
    "load_credentials",
    "password_from_env",
    "prompt_password",
    "scrub_environment",
]

DEFAULT_PASSWORD_ENV = "IKE_COLLECTOR_PASSWORD"
MASK = "********"


class CredentialsError(CollectorError):
    """No usable credentials; the message says what to set (one line, no secret)."""


class Secret:
    """A string that never prints itself.

    Examples:
        >>> secret = Secret("hunter2")
        >>> secret, str(secret), f"{secret}"
        (Secret('********'), '********', '********')
        >>> secret.reveal()
        'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for handing to the SSH library."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value out (multiprocessing, caches): refuse.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to log in; the inventory may override ``username`` per device.

    Examples:
        >>> Credentials("admin", Secret("hunter2"))
        Credentials(username='admin', password=Secret('********'), key_file=None, \
use_agent=False, ssh_config_file=None, passphrase=None)
    """

    username: str | None = None
    """Default user name for devices that have none in the inventory."""
    password: Secret | None = field(default=None)
    key_file: Path | None = None
    """An SSH private key (OpenSSH format); tried before the password."""
    use_agent: bool = False
    """Offer the keys held by the SSH agent (``SSH_AUTH_SOCK``)."""
    ssh_config_file: Path | None = None
    """An OpenSSH client config, resolved per device by :mod:`collector.ssh.ssh_config`."""
    passphrase: Secret | None = None
    """Passphrase of ``key_file``, if it is encrypted."""

    def __str__(self) -> str:
        return repr(self)

    def username_for(self, device_username: str | None) -> str:
        """The user name for one device: the inventory's (or its ssh_config's, see
        :func:`collector.ssh.ssh_config.resolve`), else this default.

        Raises:
            CredentialsError: none is set.
        """
        name = device_username or self.username
        if not name:
            raise CredentialsError(
                "no SSH user name: set 'username' in the inventory or 'User' in the"
                " ssh_config, or pass --username"
            )
        return name

    def secrets(self) -> tuple[str, ...]:
        """The secret strings to mask in logs (password, passphrase)."""
        return tuple(secret.reveal() for secret in (self.password, self.passphrase) if secret)

    def masker(self) -> SecretMasker:
        """A masker for this login's secrets."""
        return SecretMasker(self.secrets())


def password_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The password in environment variable ``name``, or None when it is not set.

    Raises:
        CredentialsError: the variable is set but empty (a broken cron environment
            should fail loudly, not try an empty password on every device).

    Examples:
        >>> password_from_env("PW", {"PW": "s3cret"})
        Secret('********')
        >>> password_from_env("PW", {}) is None
        True
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return None
    if value == "":
        raise CredentialsError(f"environment variable {name} is set but empty")
    return Secret(value)


def scrub_environment(name: str) -> None:
    """Remove variable ``name`` from this process's environment, including the bytes the
    kernel shows in ``/proc/<pid>/environ``, so that neither this process nor the children
    it forks (``--processes``: they inherit the secret in memory, not through an
    environment) nor any program it starts (an ssh_config ``ProxyCommand``) carries it.

    ``os.environ.pop`` alone is not enough: ``unsetenv`` drops the pointer, but the
    process's initial environment block, which ``/proc/<pid>/environ`` reads, keeps the
    text. So the value's bytes are overwritten in place first (libc ``getenv`` points into
    that block, or into memory ``setenv`` allocated).
    """
    value = os.environ.get(name)
    if value is None:
        return
    with contextlib.suppress(OSError, AttributeError, ValueError):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_void_p
        libc.getenv.argtypes = [ctypes.c_char_p]
        pointer = libc.getenv(os.fsencode(name))
        if pointer:
            size = len(ctypes.string_at(pointer))
            ctypes.memset(pointer, ord("*"), size)
    os.environ.pop(name, None)


def prompt_password(prompt: str = "SSH password") -> Secret:
    """Ask for the password on the terminal without echoing it (click's hidden prompt)."""
    import click

    value = click.prompt(prompt, hide_input=True, default="", show_default=False, err=True)
    if not value:
        raise CredentialsError("no password entered")
    return Secret(str(value))


def load_credentials(
    username: str | None = None,
    *,
    password_env: str = DEFAULT_PASSWORD_ENV,
    key_file: Path | str | None = None,
    use_agent: bool = False,
    ssh_config_file: Path | str | None = None,
    passphrase_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    interactive: bool | None = None,
    prompt: Callable[[], Secret] = prompt_password,
) -> Credentials:
    """Gather the credentials of a run.

    Order for the password: the environment variable ``password_env``; else a hidden
    prompt when ``interactive`` (default: stdin is a terminal); else none if a key file,
    the agent or an ssh_config (its ``IdentityFile``) can log in; else
    :class:`CredentialsError`.

    Raises:
        CredentialsError: one line saying what to set.
    """
    password = password_from_env(password_env, environ)
    key_path = Path(key_file).expanduser() if key_file else None
    if key_path is not None and not key_path.is_file():
        raise CredentialsError(f"--key-file {key_path}: no such file")
    config_path = Path(ssh_config_file).expanduser() if ssh_config_file else None
    if config_path is not None and not config_path.is_file():
        raise CredentialsError(f"--ssh-config {config_path}: no such file")
    passphrase = password_from_env(passphrase_env, environ) if passphrase_env else None
    if password is None:
        if interactive is None:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        if interactive:
            password = prompt()
        elif key_path is None and not use_agent and config_path is None:
            raise CredentialsError(
                f"no SSH password: set the environment variable {password_env} "
                "(or name another with --password-env), run from a terminal to be prompted, "
                "or log in with --key-file / --ssh-agent"
            )
    return Credentials(
        username=username,
        password=password,
        key_file=key_path,
        use_agent=use_agent,
        ssh_config_file=config_path,
        passphrase=passphrase,
    )


class SecretMasker:
    """Replaces known secrets in text with ``********``.

    Examples:
        >>> SecretMasker(["hunter2"]).mask("login admin/hunter2 ok")
        'login admin/******** ok'
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str | Secret | None) -> None:
        """Mask one more secret from now on."""
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and value not in self._secrets:
            self._secrets = sorted([*self._secrets, value], key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class MaskingFilter(logging.Filter):
    """A handler (or logger) filter that masks secrets in the rendered message.

    The record's message is rendered once (``msg % args``), masked, and stored back with
    no args, so every formatter downstream sees only the masked text; exception text is
    masked too.
    """

    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.masker:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = self.masker.mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.masker.mask(record.stack_info)
        return True


class MaskingFormatter(logging.Formatter):
    """A formatter whose whole output (message, exception, stack) is masked."""

    def __init__(self, masker: SecretMasker, fmt: str | None = None, **kwargs: object) -> None:
        super().__init__(fmt, **kwargs)  # type: ignore[arg-type]
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        return self.masker.mask(super().format(record))
