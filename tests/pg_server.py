"""pytest plugin: a throwaway PostgreSQL cluster on a loopback port, once per test session.

``pg_server`` (session) starts ``initdb`` + ``pg_ctl start`` in a temp dir, trust auth,
``listen_addresses=127.0.0.1``, a free port; ``pg_url`` (function) gives each test its
own fresh database. initdb and postgres refuse to run as root, so as root the cluster
runs as the ``postgres`` system user (created as ``ike-pg-test`` if there is none) via
``runuser``; as a normal user it runs as that user.

Binaries: ``$IKE_TEST_PG_BIN``, else ``pg_config --bindir``, else the newest
``/usr/lib/postgresql/*/bin``, else ``initdb`` on PATH. When none is found, tests that
need the server FAIL with a message saying how to install it (``make system-deps``);
``IKE_TEST_SKIP_POSTGRES=1`` skips them instead, for quick local runs only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SKIP_ENV = "IKE_TEST_SKIP_POSTGRES"
BIN_ENV = "IKE_TEST_PG_BIN"
FALLBACK_USER = "ike-pg-test"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    datadir: Path
    pg_bin: Path | None = None
    options: str = ""
    logfile: Path | None = None
    os_user: str | None = None
    """The system user the cluster runs as (None: this one)."""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m MODE``: ``immediate`` is a crash (no shutdown checkpoint)."""
        assert self.pg_bin is not None
        _run(
            _as(
                self.os_user,
                [str(self.pg_bin / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"],
            ),
            "pg_ctl stop",
        )

    def start(self) -> None:
        """Start the cluster again (same port and options) and wait until it accepts."""
        assert self.pg_bin is not None and self.logfile is not None
        _run(
            _as(
                self.os_user,
                [
                    str(self.pg_bin / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-o",
                    self.options,
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            "pg_ctl start",
        )


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        name = path.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """The unprivileged user to run the cluster as when we are root (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_USER


def _as(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def running_server(pg_bin: Path, *, durable: bool = False) -> Iterator[PgServer]:
    """Start a throwaway cluster; stop it and remove its files on exit.

    ``durable``: commits survive a crash (``pg_ctl stop -m immediate``); by default fsync
    and synchronous commit are off, for speed.
    """
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="ike-pg-"))
    datadir = base / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    started = False
    try:
        _run(
            _as(
                user,
                [
                    str(pg_bin / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
            ),
            "initdb",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=60"
        )
        if durable:
            options = options.replace("synchronous_commit=off", "synchronous_commit=on")
        _run(
            _as(
                user,
                [
                    str(pg_bin / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-o",
                    options,
                    "-l",
                    str(base / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            "pg_ctl start",
        )
        started = True
        yield PgServer(
            "127.0.0.1", port, "postgres", datadir, pg_bin, options, base / "server.log", user
        )
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run(
                    _as(user, [str(pg_bin / "pg_ctl"), "-D", str(datadir), "-m", "fast", "stop"]),
                    "pg_ctl stop",
                )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (fails, or skips with IKE_TEST_SKIP_POSTGRES=1)."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"PostgreSQL tests skipped on request ({SKIP_ENV}=1)")
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run 'make system-deps' "
            f"(apt install postgresql) or set {BIN_ENV}; {SKIP_ENV}=1 skips these tests locally",
            pytrace=False,
        )
    try:
        with running_server(pg_bin) as server:
            yield server
    except RuntimeError as error:
        pytest.fail(f"cannot start the test PostgreSQL server: {error}", pytrace=False)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A URL to a fresh, empty database on the session server (dropped afterwards)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_server.url(name)
    finally:
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
