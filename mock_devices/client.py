"""A minimal interactive SSH client (paramiko shell) for poking mock devices in tests.

Unlike netmiko it hides nothing: what the device sent comes back byte for byte (echo, CR LF,
``---- More ----`` and its erase sequence), so tests can check the device's exact behaviour.
"""

from __future__ import annotations

import contextlib
import re
import time
from types import TracebackType

import paramiko


class ShellTimeout(TimeoutError):
    """The expected text did not arrive in time; ``received`` holds what did."""

    def __init__(self, pattern: str, received: str) -> None:
        super().__init__(f"pattern {pattern!r} not seen; got {received[-200:]!r}")
        self.received = received


class ShellClient:
    """An interactive shell on one device."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str | None = None,
        key_filename: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.timeout = timeout
        self._client = paramiko.SSHClient()
        self._client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self._client.connect(
            host,
            port=port,
            username=username,
            password=password,
            key_filename=key_filename,
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        self.channel = self._client.invoke_shell(width=200)
        self.channel.settimeout(0.2)
        self.received = ""

    @property
    def host_key(self) -> paramiko.PKey:
        """The server's host key as the client saw it."""
        transport = self._client.get_transport()
        assert transport is not None
        return transport.get_remote_server_key()

    def read_until(self, pattern: str, timeout: float | None = None) -> str:
        """Read until the regex ``pattern`` matches the new text; return the new text."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        start = len(self.received)
        while not re.search(pattern, self.received[start:]):
            if time.monotonic() > deadline:
                raise ShellTimeout(pattern, self.received[start:])
            try:
                chunk = self.channel.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise EOFError(self.received[start:])
            self.received += chunk.decode("utf-8", "replace")
        return self.received[start:]

    def read_all(self, timeout: float | None = None) -> str:
        """Read until the device closes the channel; return the new text."""
        start = len(self.received)
        with contextlib.suppress(EOFError):
            self.read_until(r"(?!)", timeout)
        return self.received[start:]

    def send(self, text: str) -> None:
        """Type ``text`` (add ``\\r`` or ``\\n`` yourself)."""
        self.channel.sendall(text.encode())

    def command(self, line: str, prompt: str = r"[>\]]$", timeout: float | None = None) -> str:
        """Type a line, return everything up to and including the next prompt."""
        self.send(line + "\r")
        return self.read_until(prompt, timeout)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()

    def __enter__(self) -> ShellClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
