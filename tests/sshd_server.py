"""pytest plugin: a real OpenSSH ``sshd`` on loopback, the bastion of the jump-host tests.

``bastion`` (session) starts Debian's ``/usr/sbin/sshd -D -e -f <tmp config>`` on a free
port of 127.0.0.2 and 127.0.0.3 (two addresses, so two-hop chains have two distinct
hops), with a fresh host key, public-key authentication only for the current user (root
in CI) with a key made here, ``AllowTcpForwarding yes``, logging to a file the tests read
to see which forwards went through it (``LogLevel DEBUG1``: VERBOSE logs the logins but
not the target of a ``-W`` forward). When ``/usr/sbin/sshd`` is
missing the tests skip, saying how to install it (``make system-deps`` installs
openssh-server; CI always has it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
HOPS = ("127.0.0.2", "127.0.0.3")
_FORWARD = re.compile(
    r"server_request_direct_tcpip: originator \S+ port \d+, target (?P<host>\S+) port (?P<port>\d+)"
)


@dataclass(frozen=True)
class Bastion:
    host: str
    """The first address it listens on (127.0.0.2); the second is :attr:`second_host`."""
    second_host: str
    port: int
    user: str
    key: Path
    """A private key the bastion accepts for :attr:`user`."""
    wrong_key: Path
    """A private key it refuses."""
    known_hosts: Path
    """A known_hosts file with the bastion's host key for both addresses."""
    empty_known_hosts: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def forwards(self, since: int = 0) -> list[tuple[str, int]]:
        """The (host, port) of every ``-W``/direct-tcpip forward logged after byte ``since``."""
        text = self.log_text()[since:]
        return [(m.group("host"), int(m.group("port"))) for m in _FORWARD.finditer(text)]

    def mark(self) -> int:
        """A position in the log: pass it to :meth:`forwards` to see only later lines."""
        return len(self.log_text())


def _free_port(hosts: tuple[str, ...]) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        with contextlib.ExitStack() as stack:
            try:
                for host in hosts[1:]:
                    other = stack.enter_context(socket.socket())
                    other.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free on both bastion addresses")


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path.with_suffix(".pub").read_text(encoding="utf-8").strip()


def _wait_listening(
    process: subprocess.Popen[bytes], log: Path, hosts: tuple[str, ...], port: int
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            for host in hosts:
                with socket.create_connection((host, port), timeout=1):
                    pass
        except OSError:
            time.sleep(0.05)
            continue
        return
    raise RuntimeError(f"sshd did not listen within 20 s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_bastion() -> Iterator[Bastion]:
    """Start sshd on loopback; stop it and remove its files on exit."""
    base = Path(tempfile.mkdtemp(prefix="ike-sshd-"))
    os.chmod(base, 0o700)
    user = pwd.getpwuid(os.getuid()).pw_name
    host_key = base / "host_ed25519"
    host_public = _keygen(host_key, "bastion-host")
    key = base / "client_ed25519"
    authorized = _keygen(key, "collector-test")
    wrong_key = base / "wrong_ed25519"
    _keygen(wrong_key, "not-authorized")
    (base / "authorized_keys").write_text(authorized + "\n", encoding="utf-8")
    port = _free_port(HOPS)
    known_hosts = base / "known_hosts"
    known_hosts.write_text(
        "".join(f"[{host}]:{port} {host_public}\n" for host in HOPS), encoding="utf-8"
    )
    empty_known_hosts = base / "empty_known_hosts"
    empty_known_hosts.write_text("", encoding="utf-8")
    log = base / "sshd.log"
    config = base / "sshd_config"
    config.write_text(
        "".join(f"ListenAddress {host}:{port}\n" for host in HOPS) + f"HostKey {host_key}\n"
        f"PidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\n"
        f"AllowUsers {user}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "AllowTcpForwarding yes\n"
        "PermitTTY no\n"
        "X11Forwarding no\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "MaxStartups 100:30:200\n"
        "LogLevel DEBUG1\n",
        encoding="utf-8",
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        _wait_listening(process, log, HOPS, port)
        yield Bastion(
            host=HOPS[0],
            second_host=HOPS[1],
            port=port,
            user=user,
            key=key,
            wrong_key=wrong_key,
            known_hosts=known_hosts,
            empty_known_hosts=empty_known_hosts,
            log=log,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def bastion() -> Iterator[Bastion]:
    """The session's sshd bastion (skips when OpenSSH's server is not installed)."""
    if not SSHD.is_file() or shutil.which("ssh") is None:
        pytest.skip(
            f"{SSHD} or ssh not installed: run 'make system-deps' (apt-get install "
            "openssh-server openssh-client); CI installs them"
        )
    try:
        with running_bastion() as server:
            yield server
    except RuntimeError as error:
        pytest.fail(f"cannot start the test sshd: {error}", pytrace=False)
