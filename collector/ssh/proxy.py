"""The jump-host child process (``ProxyJump``/``ProxyCommand``) as the SSH session's socket.

:class:`ProxyProcess` starts a :class:`~collector.ssh.ssh_config.Proxy` command with one end
of a socket pair as its stdin and stdout; the other end is a real socket that paramiko
reads and writes, and that the deadline watchdog can shut down. The child:

* runs in its own session (no controlling terminal: ``ssh`` cannot prompt for anything,
  on top of ``BatchMode=yes``), and its whole process group is ended on close or abort;
* gets the collector's environment minus every variable that holds a secret (the
  password, the key passphrase); no secret is ever in its argv either;
* has its stderr kept in a bounded buffer (:data:`MAX_STDERR` bytes, the rest dropped),
  so that when it exits before the SSH session is up, :meth:`ProxyProcess.failure` tells
  what the bastion said (its first line, and its last when they differ) and the exit
  status, at once instead of at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterable, Mapping

from collector.core.errors import CollectorError
from collector.ssh.ssh_config import Proxy

__all__ = ["MAX_STDERR", "ProxyProcess", "ProxyStartError", "child_environment", "summarise"]

MAX_STDERR = 16 * 1024
"""Bytes of the proxy's stderr kept; a chatty bastion (banners, ``-v``) cannot grow it."""
_NOISE = ("Warning: Permanently added",)
"""stderr lines that say nothing about a failure."""
_PART = 140


EXIT_WAIT = 1.0
"""After a failed connect, how long to wait for a jump-host proxy's exit status."""


class ProxyStartError(CollectorError):
    """The proxy command could not be started at all (no such program)."""


def child_environment(environ: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """``environ`` without the variables whose value contains one of ``secrets``.

    Examples:
        >>> child_environment({"HOME": "/root", "IKE_COLLECTOR_PASSWORD": "pw1"}, ["pw1"])
        {'HOME': '/root'}
    """
    hidden = [secret for secret in secrets if secret]
    return {
        name: value
        for name, value in environ.items()
        if not any(secret in value for secret in hidden)
    }


def _cut(text: str) -> str:
    return text if len(text) <= _PART else text[: _PART - 3] + "..."


def summarise(stderr: str, status: int | None) -> str:
    """What the proxy said and how it ended, for one line of the device's error.

    Examples:
        >>> summarise("Warning: Permanently added 'b' (ED25519)\\r\\n"
        ...           "admin@b: Permission denied (publickey).\\r\\n", 255)
        'admin@b: Permission denied (publickey). (exit status 255)'
        >>> summarise("", -9)
        'no message (killed by signal 9)'
    """
    lines = [line.strip() for line in stderr.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    if not lines:
        said = "no message"
    elif len(lines) == 1:
        said = _cut(lines[0])
    else:
        said = f"{_cut(lines[0])} ... {_cut(lines[-1])}"
    if status is None:
        ended = "still running"
    elif status < 0:
        ended = f"killed by signal {-status}"
    else:
        ended = f"exit status {status}"
    return f"{said} ({ended})"


class ProxyProcess:
    """A running proxy command; :attr:`sock` carries the SSH connection to the target.

    Raises:
        ProxyStartError: the command cannot be started (the message names it).
    """

    def __init__(self, proxy: Proxy, *, secrets: Iterable[str] = ()) -> None:
        self.proxy = proxy
        self._stderr = bytearray()
        self._terminated = threading.Event()
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                list(proxy.argv),
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.PIPE,
                env=child_environment(os.environ, secrets),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            ours.close()
            raise ProxyStartError(
                f"{proxy.description}: cannot start {proxy.argv[0]!r}: {exc.strerror or exc}"
            ) from None
        finally:
            theirs.close()
        self.sock = ours
        self._reader = threading.Thread(
            target=self._read_stderr, name=f"proxy-stderr-{self.process.pid}", daemon=True
        )
        self._reader.start()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.proxy.description!r}, pid={self.process.pid})"

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        if stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            while True:
                chunk = os.read(stream.fileno(), 4096)
                if not chunk:
                    return
                room = MAX_STDERR - len(self._stderr)
                if room > 0:
                    self._stderr += chunk[:room]

    def stderr_text(self) -> str:
        """What the proxy wrote to stderr so far (the first :data:`MAX_STDERR` bytes)."""
        return bytes(self._stderr).decode("utf-8", "replace")

    def failure(self, wait: float) -> str | None:
        """How the proxy failed, if it ended (within ``wait`` s) with an error, else None.

        None too when we ended it (an abort), or when it exited 0 without a word (the
        target closed the forwarded connection: the target's problem, not the proxy's).
        """
        if self._terminated.is_set():
            return None
        try:
            status = self.process.wait(timeout=max(0.0, wait))
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=max(0.1, wait))
        text = self.stderr_text()
        if status == 0 and not text.strip():
            return None
        return summarise(text, status)

    def jump_host_failure(self, remaining: float, host: str, port: int) -> str | None:
        """The error line of a session to ``host:port`` that failed because this proxy did
        (its :meth:`failure` within :data:`EXIT_WAIT` s, at most ``remaining``), else None."""
        said = self.failure(min(EXIT_WAIT, max(0.0, remaining)))
        if said is None:
            return None
        return f"{said}; {self.proxy.description} to {host}:{port}"

    def terminate(self) -> None:
        """End the proxy and its children now (any thread; the socket stays open)."""
        self._terminated.set()
        self._signal(signal.SIGTERM)

    def _signal(self, number: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, number)

    def close(self) -> None:
        """End the proxy if it still runs, reap it, close the socket and the pipe."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=1.0)
        with contextlib.suppress(OSError):
            self.sock.close()
        self._reader.join(timeout=1.0)
        if self.process.stderr is not None:
            with contextlib.suppress(OSError):
                self.process.stderr.close()
