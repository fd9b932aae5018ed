"""Verify device SSH host keys the way OpenSSH does, with an OpenSSH known_hosts file.

netmiko's default is ``paramiko.AutoAddPolicy``: any key from anyone is accepted and
forgotten. Here instead:

* keys are read from ``~/.ssh/known_hosts`` (or ``--known-hosts FILE``), OpenSSH format:
  plain and hashed (``|1|salt|hash``) host names, ``[host]:port`` for ports other than 22,
  several names per line, comments, and OpenSSH host patterns (``*`` and ``?``
  wildcards, ``!`` negation: ``10.1.*,!10.1.9.9`` or ``[10.2.*]:2222``, matched without
  regard to case, as ``sshd`` and ``ssh`` do); ``@revoked`` keys are refused,
  ``@cert-authority`` lines and unknown key types are skipped (not supported);
* a device never seen before is trusted on first use (TOFU) and its key is appended to
  the file (created 0600, in a 0700 directory if that is missing too; appends are
  serialised across threads and, with ``flock``, across processes), under its hashed
  name with ``hash_names`` (``--hash-known-hosts``);
* a device whose key differs from the recorded one is refused with one line naming the
  device and both fingerprints (``SHA256:...`` as ``ssh-keygen -l`` prints them);
* ``strict=True`` (``--strict-host-keys``) refuses unknown devices too.

The file is read once per :class:`KnownHosts` (once per run), indexed by name, so a fleet
of thousands does not re-read or re-scan it per device.

Size: just over 500 lines because known_hosts parsing, hashing, trust on first use and the
locked append are one file format's rules.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from collector.core.errors import CollectorError

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "HostKeyError",
    "HostKeyProblem",
    "KnownHosts",
    "KnownHostsFileError",
    "TrustOnFirstUsePolicy",
    "fingerprint",
    "host_entry_name",
]

log = logging.getLogger("collector.ssh.hostkeys")

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it (``SHA256:`` + unpadded base64)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def host_entry_name(host: str, port: int) -> str:
    """The known_hosts name of a host: bare for port 22, ``[host]:port`` otherwise.

    Examples:
        >>> host_entry_name("10.0.0.1", 22), host_entry_name("10.0.0.1", 2222)
        ('10.0.0.1', '[10.0.0.1]:2222')
    """
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyProblem(StrEnum):
    CHANGED = "changed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"


class HostKeyError(CollectorError):
    """A device's host key was refused; ``str()`` is one line for the operator."""

    def __init__(
        self,
        problem: HostKeyProblem,
        device: str,
        entry: str,
        offered: str,
        known: str | None,
        path: Path,
    ) -> None:
        self.problem = problem
        self.device = device
        self.entry = entry
        self.offered = offered
        """Fingerprint of the key the device offered."""
        self.known = known
        """Fingerprint of the key on record (changed keys)."""
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        if self.problem is HostKeyProblem.CHANGED:
            return (
                f"host key of {self.device} ({self.entry}) has CHANGED: {self.path} has"
                f" {self.known}, the device offered {self.offered}; refusing to connect"
                " (if the device was really replaced, remove the old key with:"
                f" ssh-keygen -R '{self.entry}' -f {self.path})"
            )
        if self.problem is HostKeyProblem.REVOKED:
            return (
                f"host key of {self.device} ({self.entry}) is marked @revoked in"
                f" {self.path}: {self.offered}; refusing to connect"
            )
        return (
            f"host key of {self.device} ({self.entry}) is not in {self.path} and strict host"
            f" key checking is on: the device offered {self.offered}; verify it and add it"
            " (ssh-keyscan, or one run without --strict-host-keys)"
        )


class KnownHostsFileError(CollectorError):
    """A known_hosts file that cannot be used (unreadable, or a malformed line)."""


_KEY_TYPE = re.compile(r"^(?:ssh|ecdsa|sk|rsa|x509v3)-[A-Za-z0-9@._+-]+$")


def _line_problem(raw: bytes) -> str | None:
    """What is wrong with one known_hosts line, or None (comments and blanks are fine).

    Examples:
        >>> _line_problem(b"# comment") is None, _line_problem(b"") is None
        (True, True)
        >>> _line_problem(b"host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5") is None
        True
        >>> _line_problem(b"garbage")
        'not a known_hosts line (fewer than 3 fields)'
        >>> _line_problem(b"host ssh-ed25519 not*base64")
        'the key is not base64'
    """
    try:
        line = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return "not text (binary data)"
    if not line or line.startswith("#"):
        return None
    fields = line.split()
    if fields[0].startswith("@"):
        fields = fields[1:]
    if len(fields) < 3:
        return "not a known_hosts line (fewer than 3 fields)"
    if not _KEY_TYPE.match(fields[1]):
        return f"unknown key type {fields[1][:40]!r}"
    try:
        base64.b64decode(fields[2], validate=True)
    except ValueError:
        return "the key is not base64"
    return None


@dataclass(frozen=True, slots=True)
class _HashedEntry:
    salt: bytes
    digest: bytes
    key: paramiko.PKey
    revoked: bool


@dataclass(frozen=True)
class _PatternEntry:
    """A known_hosts line whose names hold wildcards or negations (OpenSSH patterns)."""

    positive: re.Pattern[str]
    negative: re.Pattern[str] | None
    key: paramiko.PKey
    revoked: bool

    def matches(self, name: str) -> bool:
        """The line applies to ``name``: a pattern matches it and no negated one does."""
        if self.negative is not None and self.negative.fullmatch(name):
            return False
        return self.positive.fullmatch(name) is not None


def _is_pattern(name: str) -> bool:
    return name.startswith("!") or "*" in name or "?" in name


def _patterns(names: list[str]) -> re.Pattern[str] | None:
    """One regular expression for OpenSSH patterns: ``*`` any run, ``?`` one character.

    Examples:
        >>> bool(_patterns(["10.1.*", "[10.2.?.1]:2222"]).fullmatch("[10.2.7.1]:2222"))
        True
        >>> bool(_patterns(["*.VPN.example.net"]).fullmatch("hub1.vpn.example.net"))
        True
        >>> _patterns([]) is None
        True
    """
    if not names:
        return None
    parts = [
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name)
        for name in names
    ]
    return re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)


def _hash_matches(name: str, entry: _HashedEntry) -> bool:
    mac = hmac.new(entry.salt, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(mac, entry.digest)


class KnownHosts:
    """One known_hosts file, read once, shared by every connection of a run (thread-safe).

    Args:
        path: The file; ``~/.ssh/known_hosts`` when None. It need not exist yet.
        strict: Refuse devices whose key is not in the file (no trust on first use).
        record: Append keys trusted on first use to the file (else keep them in memory).
        hash_names: Write the names of keys trusted on first use hashed (``|1|salt|hash``,
            as OpenSSH does with ``HashKnownHosts yes``), so the file does not list the
            fleet's addresses.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        strict: bool = False,
        record: bool = True,
        hash_names: bool = False,
    ) -> None:
        self.path = Path(path if path is not None else DEFAULT_KNOWN_HOSTS).expanduser()
        self.strict = strict
        self.record = record
        self.hash_names = hash_names
        self._lock = threading.RLock()
        self._loaded = False
        self._plain: dict[str, dict[str, paramiko.PKey]] = {}
        self._revoked: dict[str, set[str]] = {}
        self._hashed: list[_HashedEntry] = []
        self._patterns: list[_PatternEntry] = []
        self.trusted: list[tuple[str, str, str]] = []
        """``(device, known_hosts name, fingerprint)`` of every key trusted on first use in
        this run, for one summary line (each is also logged at INFO)."""

    def __repr__(self) -> str:
        return f"KnownHosts({str(self.path)!r}, strict={self.strict})"

    # -- reading -------------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                text = ""
            except OSError as exc:
                log.warning("cannot read known hosts file %s: %s", self.path, exc.strerror)
                text = ""
            for number, line in enumerate(text.splitlines(), 1):
                self._add_line(line.strip(), number)
            self._loaded = True

    def check(self) -> None:
        """Before a run: the file (if it exists) is readable and every line is a
        known_hosts line (``[@marker] names key-type base64-key [comment]``).

        Raises:
            KnownHostsFileError: one line naming the file, the line number and what to do.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise KnownHostsFileError(
                f"--known-hosts {self.path}: cannot read it: {exc.strerror or exc}"
            ) from None
        for number, raw in enumerate(data.splitlines(), 1):
            problem = _line_problem(raw)
            if problem is not None:
                raise KnownHostsFileError(
                    f"--known-hosts {self.path}:{number}: {problem}: fix or remove the line"
                    " (OpenSSH format: host[,host...] key-type base64-key)"
                )

    def reload(self) -> None:
        """Read the file again at next use (other processes may have appended keys)."""
        with self._lock:
            self._loaded = False
            self._plain, self._revoked, self._hashed, self._patterns = {}, {}, [], []

    def _add_line(self, line: str, number: int) -> None:
        if not line or line.startswith("#"):
            return
        revoked = False
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            if marker != "@revoked":
                return  # @cert-authority: certificates are not supported
            revoked = True
            line = line.strip()
        try:
            entry = HostKeyEntry.from_line(line, number)
        except (InvalidHostKey, paramiko.SSHException, ValueError):
            log.debug("%s:%d: unreadable known_hosts line skipped", self.path, number)
            return
        if entry is None or entry.key is None:
            return
        if any(_is_pattern(name) for name in entry.hostnames):
            # Negation is per line: the line's names form one pattern list.
            positive = _patterns([n for n in entry.hostnames if not n.startswith(("!", "|1|"))])
            if positive is not None:
                negative = _patterns([n[1:] for n in entry.hostnames if n.startswith("!")])
                self._patterns.append(_PatternEntry(positive, negative, entry.key, revoked))
            for name in entry.hostnames:
                if name.startswith("|1|"):
                    self._index(name, entry.key, revoked)
            return
        for name in entry.hostnames:
            self._index(name, entry.key, revoked)

    def _index(self, name: str, key: paramiko.PKey, revoked: bool) -> None:
        if name.startswith("|1|"):
            parts = name.split("|")
            if len(parts) != 4:
                return
            try:
                salt = base64.b64decode(parts[2])
                digest = base64.b64decode(parts[3])
            except ValueError:
                return
            self._hashed.append(_HashedEntry(salt, digest, key, revoked))
        elif revoked:
            self._revoked.setdefault(name, set()).add(fingerprint(key))
        else:
            self._plain.setdefault(name, {})[key.get_name()] = key

    def lookup(self, name: str) -> dict[str, paramiko.PKey]:
        """The keys on record for a known_hosts name (``host`` or ``[host]:port``), by type."""
        self._load()
        with self._lock:
            keys = dict(self._plain.get(name, {}))
            for entry in self._hashed:
                if not entry.revoked and _hash_matches(name, entry):
                    keys.setdefault(entry.key.get_name(), entry.key)
            for pattern in self._patterns:
                if not pattern.revoked and pattern.matches(name):
                    keys.setdefault(pattern.key.get_name(), pattern.key)
        return keys

    def is_revoked(self, name: str, key: paramiko.PKey) -> bool:
        """Whether ``key`` is listed ``@revoked`` for ``name`` (or for every host)."""
        self._load()
        print_ = fingerprint(key)
        with self._lock:
            for plain in (name, "*"):
                if print_ in self._revoked.get(plain, set()):
                    return True
            if any(
                pattern.revoked and pattern.key == key and pattern.matches(name)
                for pattern in self._patterns
            ):
                return True
            return any(
                entry.revoked and entry.key == key and _hash_matches(name, entry)
                for entry in self._hashed
            )

    # -- connecting ----------------------------------------------------------------------

    def prepare(self, client: paramiko.SSHClient, host: str, port: int, device: str) -> None:
        """Load this host's recorded keys into ``client`` and set the verifying policy.

        With the keys loaded, paramiko prefers the recorded key type during negotiation
        (as OpenSSH does) and raises ``BadHostKeyException`` on a mismatch (turn it into a
        :class:`HostKeyError` with :meth:`changed_error`); an unknown host goes to
        :class:`TrustOnFirstUsePolicy`.
        """
        name = host_entry_name(host, port)
        client_keys = client.get_host_keys()
        for key_type, key in self.lookup(name).items():
            client_keys.add(name, key_type, key)
        client.set_missing_host_key_policy(TrustOnFirstUsePolicy(self, device))

    def changed_error(
        self, device: str, host: str, port: int, offered: paramiko.PKey
    ) -> HostKeyError:
        """The error for a device that offered a key different from the recorded one."""
        name = host_entry_name(host, port)
        known = self.lookup(name)
        recorded = known.get(offered.get_name()) or next(iter(known.values()), None)
        return HostKeyError(
            HostKeyProblem.CHANGED,
            device,
            name,
            fingerprint(offered),
            fingerprint(recorded) if recorded is not None else None,
            self.path,
        )

    def verify_new(self, device: str, name: str, key: paramiko.PKey) -> None:
        """Decide about a key for a name paramiko had no key for: accept, record, or raise.

        Raises:
            HostKeyError: revoked key, a key recorded meanwhile that differs, or an
                unknown key in strict mode.
        """
        with self._lock:
            if self.is_revoked(name, key):
                raise HostKeyError(
                    HostKeyProblem.REVOKED, device, name, fingerprint(key), None, self.path
                )
            known = self.lookup(name)  # another thread may have recorded it meanwhile
            if known:
                same = known.get(key.get_name())
                if same is not None and same == key:
                    return
                recorded = same or next(iter(known.values()))
                raise HostKeyError(
                    HostKeyProblem.CHANGED,
                    device,
                    name,
                    fingerprint(key),
                    fingerprint(recorded),
                    self.path,
                )
            if self.strict:
                raise HostKeyError(
                    HostKeyProblem.UNKNOWN, device, name, fingerprint(key), None, self.path
                )
            self._plain.setdefault(name, {})[key.get_name()] = key
            self.trusted.append((device, name, fingerprint(key)))
            # INFO, not WARNING: the first run over a fleet of thousands would print
            # thousands of lines; the CLI prints one summary from ``trusted``.
            log.info(
                "%s: new host key %s %s trusted on first use (%s)",
                device,
                key.get_name(),
                fingerprint(key),
                name,
            )
            if self.record:
                written = paramiko.HostKeys.hash_host(name) if self.hash_names else name
                self._append(f"{written} {key.get_name()} {key.get_base64()}\n")

    def _append(self, line: str) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning(
                "cannot record the host key in %s (%s): it is trusted for this run only",
                self.path,
                exc.strerror,
            )
            return
        with os.fdopen(fd, "ab") as handle, _flocked(handle.fileno()):
            size = os.fstat(handle.fileno()).st_size
            prefix = b""
            if size:
                with open(self.path, "rb") as reader:
                    reader.seek(size - 1)
                    if reader.read(1) != b"\n":
                        prefix = b"\n"
            handle.write(prefix + line.encode("utf-8"))


@contextlib.contextmanager
def _flocked(fd: int) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``fd`` (other collectors appending at once)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # e.g. NFS without locks: the thread lock still serialises us
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class TrustOnFirstUsePolicy(paramiko.MissingHostKeyPolicy):
    """paramiko's hook for hosts without a recorded key: TOFU, or refuse when strict.

    Raises :class:`HostKeyError` (not an ``SSHException``, so netmiko does not rewrap it
    into a "timeout").
    """

    def __init__(self, known_hosts: KnownHosts, device: str) -> None:
        self.known_hosts = known_hosts
        self.device = device

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.known_hosts.verify_new(self.device, hostname, key)
