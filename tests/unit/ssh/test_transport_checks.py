"""The transport's pure parts: the checks of a device's answer (the parser's samples as
output, the session's cleaning) and the mapping of library errors to error kinds."""

from __future__ import annotations

import errno
import inspect
import socket
from datetime import UTC, datetime

import paramiko
from helpers import SAMPLES
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

from collector.core.commands import CommandNotAllowed
from collector.core.records import Device, DeviceResult, ErrorKind
from collector.ssh.credentials import SecretMasker
from collector.ssh.deadline import Deadline
from collector.ssh.errors import SessionError, classify_error
from collector.ssh.transport import result_from_output
from collector.ssh.vrp_dialogue import clean_output
from collector.ssh.vrp_session import _GatedClient

PASSWORD = "canary-Pw-7f3a9"


# --- pure parts: output checks --------------------------------------------------------


def _result(text: str, keep_raw: bool = False) -> DeviceResult:
    return result_from_output(
        Device("r1", "192.0.2.1"),
        "display ike offline-info",
        text,
        started=datetime.now(UTC),
        keep_raw=keep_raw,
    )


def test_output_checks_on_parser_fixtures() -> None:
    ok = _result((SAMPLES / "reference_ar.txt").read_text(), keep_raw=True)
    assert ok.ok and ok.records and ok.raw is not None
    rejected = _result((SAMPLES / "rejected_unrecognized.txt").read_text())
    assert rejected.error is not None and rejected.error.kind is ErrorKind.COMMAND_REJECTED
    assert "Error" in rejected.error.message
    truncated = _result((SAMPLES / "truncated_table.txt").read_text())
    assert truncated.error is not None
    assert truncated.error.kind is ErrorKind.INCOMPLETE_OUTPUT
    garbage = _result((SAMPLES / "not_offline_info.txt").read_text())
    assert garbage.error is not None and garbage.error.kind is ErrorKind.PROTOCOL
    empty = _result("")
    assert empty.error is not None and empty.error.kind is ErrorKind.PROTOCOL


def test_clean_output_removes_pager_and_ansi() -> None:
    text = "row1\r\n  ---- More ----\x1b[42D" + " " * 42 + "\x1b[42D  row2\r\n\x1b[1m<r1>"
    assert clean_output(text) == "row1\n  row2\n<r1>"


# --- pure parts: error mapping --------------------------------------------------------


def _classify(exc: BaseException, **kwargs: object) -> tuple[ErrorKind, str]:
    return classify_error(exc, host="192.0.2.9", port=22, username="admin", **kwargs)  # type: ignore[arg-type]


def _wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - netmiko rewraps without "from"
    except BaseException as exc:
        return exc


def test_error_mapping() -> None:
    assert _classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))[0] is (
        ErrorKind.UNREACHABLE
    )
    assert _classify(socket.gaierror(-2, "Name or service not known"))[0] is (ErrorKind.UNREACHABLE)
    assert _classify(OSError(errno.EHOSTUNREACH, "No route to host"))[0] is (ErrorKind.UNREACHABLE)
    assert _classify(TimeoutError())[0] is ErrorKind.TIMEOUT
    auth = _wrapped(paramiko.AuthenticationException("no"), NetmikoAuthenticationException("x"))
    assert _classify(auth) == (
        ErrorKind.AUTH,
        "authentication failed for user 'admin' (password or key refused)",
    )
    kind, message = _classify(
        _wrapped(
            paramiko.IncompatiblePeer("Incompatible ssh peer (no acceptable kex algorithm)"),
            NetmikoTimeoutException("A paramiko SSHException occurred\n\nsomething"),
        )
    )
    assert kind is ErrorKind.PROTOCOL and "negotiation failed" in message and "\n" not in message
    dropped = _classify(EOFError())
    assert dropped[0] is ErrorKind.PROTOCOL
    assert _classify(SessionError(ErrorKind.INCOMPLETE_OUTPUT, "cut"))[0] is (
        ErrorKind.INCOMPLETE_OUTPUT
    )
    assert _classify(CommandNotAllowed("refusing"))[0] is ErrorKind.PROTOCOL


def test_deadline_wins_over_the_library_error_but_not_over_auth() -> None:
    deadline = Deadline(5)
    deadline.fire()
    kind, message = _classify(EOFError(), deadline=deadline, phase="login")
    assert kind is ErrorKind.TIMEOUT and "within 5 s" in message and "login" in message
    assert _classify(paramiko.AuthenticationException(), deadline=deadline)[0] is ErrorKind.AUTH


def test_error_messages_are_masked_and_one_line() -> None:
    masker = SecretMasker([PASSWORD])
    kind, message = _classify(RuntimeError(f"boom {PASSWORD}\nsecond line"), masker=masker)
    assert kind is ErrorKind.PROTOCOL
    assert PASSWORD not in message and "\n" not in message


# --- the auth breaker's gate in paramiko ----------------------------------------------


def test_paramiko_still_authenticates_in_sshclient_auth() -> None:
    """The netmiko and NAPALM transports take the auth breaker's gate in paramiko's private
    ``SSHClient._auth`` (``vrp_session._GatedClient``). If a paramiko release renames it,
    the gate would be skipped without a sound: this fails instead (run with paramiko 5 and,
    in ``make test-legacy-ssh``, paramiko<5)."""
    assert callable(getattr(paramiko.SSHClient, "_auth", None))
    connect = inspect.getsource(paramiko.SSHClient.connect)
    # After the host key was checked, before any credential is sent.
    assert connect.index("missing_host_key") < connect.index("self._auth(")


def test_the_gate_runs_before_paramiko_authenticates() -> None:
    """Whatever the gate raises (the breaker open: ``skipped-auth``) ends the login before
    paramiko's own ``_auth`` looks at a transport (there is none here)."""
    calls: list[str] = []

    def gate() -> None:
        calls.append("gate")
        raise SessionError(ErrorKind.SKIPPED_AUTH, "not tried")

    client = _GatedClient(gate)
    try:
        client._auth("admin", PASSWORD, None, None, False, False, None)
    except SessionError as exc:
        assert exc.kind is ErrorKind.SKIPPED_AUTH
    else:
        raise AssertionError("the gate did not stop the login")
    assert calls == ["gate"]
