"""collector.ssh.proxy: the proxy child on a socket pair, its stderr, its environment, its end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.ssh.proxy import (
    MAX_STDERR,
    ProxyProcess,
    ProxyStartError,
    child_environment,
    summarise,
)
from collector.ssh.ssh_config import Proxy


def shell(command: str) -> Proxy:
    return Proxy(("/bin/sh", "-c", command), f"ProxyCommand {command!r}")


def test_environment_without_secrets() -> None:
    environ = {"HOME": "/root", "PW": "s3cret", "OTHER": "x-s3cret-y", "PATH": "/bin"}
    assert child_environment(environ, ["s3cret", ""]) == {"HOME": "/root", "PATH": "/bin"}


@pytest.mark.parametrize(
    ("stderr", "status", "expected"),
    [
        (
            "Host key verification failed.\r\n",
            255,
            "Host key verification failed. (exit status 255)",
        ),
        (
            "No ED25519 host key is known for b.\r\nHost key verification failed.\r\n",
            255,
            "No ED25519 host key is known for b. ... Host key verification failed."
            " (exit status 255)",
        ),
        ("", 1, "no message (exit status 1)"),
        ("x" * 500, 2, "x" * 137 + "... (exit status 2)"),
        ("oops\n", None, "oops (still running)"),
    ],
)
def test_summary(stderr: str, status: int | None, expected: str) -> None:
    assert summarise(stderr, status) == expected


def test_socket_carries_the_bytes_both_ways() -> None:
    process = ProxyProcess(shell("exec cat"))
    try:
        process.sock.sendall(b"SSH-2.0-test\r\n")
        process.sock.settimeout(5)
        assert process.sock.recv(100) == b"SSH-2.0-test\r\n"
        assert process.failure(0.1) is None  # still running: not a failure
    finally:
        process.close()
    assert process.process.returncode is not None


def test_early_exit_is_reported_with_stderr_and_status() -> None:
    process = ProxyProcess(shell("echo 'bastion: Permission denied (publickey).' >&2; exit 255"))
    try:
        process.sock.settimeout(5)
        assert process.sock.recv(10) == b""  # EOF at once, not at a deadline
        assert process.failure(5) == "bastion: Permission denied (publickey). (exit status 255)"
    finally:
        process.close()


def test_clean_silent_exit_is_not_a_proxy_failure() -> None:
    process = ProxyProcess(shell("exit 0"))
    try:
        assert process.failure(5) is None
    finally:
        process.close()


def test_stderr_is_bounded() -> None:
    process = ProxyProcess(shell("head -c 200000 /dev/zero | tr '\\0' x >&2; exit 1"))
    try:
        assert process.failure(10) is not None
        assert len(process.stderr_text()) == MAX_STDERR
    finally:
        process.close()


def test_terminate_ends_the_whole_group_and_is_no_failure() -> None:
    process = ProxyProcess(shell("sleep 30 & echo $!; sleep 30; wait"))
    try:
        process.sock.settimeout(5)
        child = int(process.sock.recv(100).decode().strip())
        process.terminate()
        assert process.process.wait(timeout=5) != 0
        assert process.failure(1) is None  # we ended it: the caller reports its own reason
        assert _ended(child)  # the background child of the proxy too
    finally:
        process.close()


def _ended(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_no_secret_reaches_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IKE_COLLECTOR_PASSWORD", "Canary-proxy-1234")
    process = ProxyProcess(shell("env"), secrets=["Canary-proxy-1234"])
    try:
        process.sock.settimeout(5)
        received = b""
        while chunk := process.sock.recv(65536):
            received += chunk
    finally:
        process.close()
    assert b"PATH=" in received
    assert b"Canary-proxy-1234" not in received
    assert b"IKE_COLLECTOR_PASSWORD" not in received


def test_runs_in_its_own_session() -> None:
    """Session leader, so no controlling terminal: ssh in it cannot open /dev/tty to prompt."""
    process = ProxyProcess(shell("cat /proc/$$/stat"))
    try:
        process.sock.settimeout(5)
        fields = process.sock.recv(4096).decode().rsplit(")", 1)[1].split()
    finally:
        process.close()
    pgrp, session = int(fields[2]), int(fields[3])
    assert session == pgrp == process.process.pid


def test_missing_program_is_named() -> None:
    proxy = Proxy(("/nonexistent/ssh", "-W", "h:22", "b"), "ProxyJump b")
    with pytest.raises(ProxyStartError, match="ProxyJump b: cannot start '/nonexistent/ssh'"):
        ProxyProcess(proxy)
