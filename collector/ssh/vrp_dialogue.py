"""The VRP dialogue, sans I/O: bytes from the device in, bytes to send and events out.

:class:`VrpDialogue` is everything the collector says to and understands from a VRP shell,
with no socket, no clock and no thread: a transport (netmiko's channel in
:mod:`collector.ssh.vrp_session`, an asyncssh session in :mod:`collector.ssh.async_transport`)
feeds it what the device sent (:meth:`~VrpDialogue.receive`), sends what it asks
(:meth:`~VrpDialogue.outgoing`), tells it when the connection ended
(:meth:`~VrpDialogue.closed`) or stayed silent at login (:meth:`~VrpDialogue.idle`), and
collects its :class:`Event` list. So every transport logs in, pages and stays read-only
the same way:

* **login**: the banner is read up to the prompt (``<name>``, ``[name]``, ``[~name]``, with
  an ``HRP_M``/``HRP_S`` prefix on HA firewalls that may flip later); any ``[Y/N]`` or
  ``(y/n)`` question is answered ``N`` (never ``Y``); a device that ends the session after
  its password-change question was declined is an ``auth`` failure that says so;
* **paging**: :meth:`~VrpDialogue.prepare` sends ``screen-length 0 temporary``; when it is
  refused (an ``Error:`` line) ``---- More ----`` pages are turned with a space;
* **commands**: only allow-listed lines are ever queued
  (:func:`collector.core.commands.check_command` and
  :func:`~collector.core.commands.check_keystrokes`); each command's output is read up to this
  device's prompt and returned without its echo, prompt and pager remnants;
* **short reads**: the connection closing during a command is ``incomplete-output`` when some
  output had come, else ``protocol``;
* **bounds**: the login text is capped in bytes (``protocol`` beyond); each output is counted
  as it arrives by :class:`collector.core.limits.OutputGuard` (bytes, declared rows, lines:
  ``oversized-output`` beyond, the text dropped).

The dialogue never looks ahead of what it asked for: a device answers only after it was
sent something, so what it receives between two sends is one "turn", and the events are
the same however a turn is cut into chunks (``tests/unit/ssh/test_vrp_dialogue.py`` checks it).
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass
from enum import Enum

from collector.core import commands, vrp_text
from collector.core.commands import check_command, check_keystrokes
from collector.core.limits import OutputGuard, OutputLimits, OutputTooLarge
from collector.core.records import ErrorKind
from collector.core.terminal import strip_controls
from collector.ssh.errors import ConnectionDropped, SessionError

__all__ = [
    "MAX_LOGIN_BYTES",
    "NUDGE_AFTER",
    "Declined",
    "Event",
    "LoggedIn",
    "Output",
    "PagingRefused",
    "State",
    "VrpDialogue",
    "clean_output",
]

log = logging.getLogger("collector.ssh.transport")

MAX_LOGIN_BYTES = 256 * 1024
"""Banner and login questions: more than this without a prompt is not a VRP shell."""
NUDGE_AFTER = 2.0
"""Seconds of silence at login after which a transport calls :meth:`VrpDialogue.idle`
(the dialogue keeps no clock; both transports wait this long)."""
_TAIL = 512
"""Characters of the end of the text that prompt/question/pager detection looks at."""


def clean_output(text: str) -> str:
    """Remove pager prompts, their erase sequences and every other terminal control
    (:func:`collector.core.terminal.strip_controls`); LF line ends.

    Examples:
        >>> clean_output("a\\r\\n  ---- More ----\\x1b[16D                \\x1b[16Db\\r\\n")
        'a\\nb\\n'
    """
    # The substitutions cost more than the whole parse on a 200-row table: skip them
    # unless there is something to remove.
    if "More" in text:
        text = vrp_text.PAGER.sub("", text)
    # CR LF first: then most outputs hold no control left, and strip_controls returns at
    # once instead of running its substitution over every row (0.5 ms of 3 a device).
    return strip_controls(text.replace("\r\n", "\n"))


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The login banner ended with this prompt (``<AR-1>``, ``HRP_M[USG]``)."""

    prompt: str
    name: str
    """The prompt's device name (``AR-1``): later prompts must carry it."""


@dataclass(frozen=True, slots=True)
class Declined:
    """A ``[Y/N]`` question was answered ``N``."""

    question: str


@dataclass(frozen=True, slots=True)
class PagingRefused:
    """``screen-length 0 temporary`` was refused: pages are turned with a space."""


@dataclass(frozen=True, slots=True)
class Output:
    """One command's output, echo, prompt and pager removed, LF line ends."""

    command: str
    text: str


Event = LoggedIn | Declined | PagingRefused | Output


class State(Enum):
    LOGIN = "login"
    READY = "ready"
    """At the prompt, nothing asked."""
    COMMAND = "command"
    """A command was sent; its output is being read."""
    CLOSED = "closed"


class VrpDialogue:
    """One VRP shell session's dialogue (see the module doc).

    Args:
        device_name: For log lines.
        line_end: What ends a line sent to the device.
        limits: Caps on one command's output (:class:`collector.core.limits.OutputLimits`).
        max_login_bytes: Cap on the login text before the prompt.

    Use: :meth:`receive` every chunk, then send :meth:`outgoing` and handle
    :meth:`events`; :meth:`idle` when the device stays silent at login;
    :meth:`closed` when the connection ends. :meth:`prepare` once logged in, then
    :meth:`command` whenever :attr:`ready`.
    """

    def __init__(
        self,
        device_name: str = "",
        *,
        line_end: str = "\n",
        limits: OutputLimits | None = None,
        max_login_bytes: int = MAX_LOGIN_BYTES,
    ) -> None:
        self.device_name = device_name
        self.line_end = line_end
        self.limits = limits if limits is not None else OutputLimits()
        self._guard = OutputGuard(self.limits)
        self.max_login_bytes = max_login_bytes
        self.state = State.LOGIN
        self.prompt_name = ""
        self.paging = True
        """Whether the device pages its output (until ``screen-length`` is accepted)."""
        self.declined: list[str] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._parts: list[str] = []
        self._tail = ""
        self._size = 0
        """Characters in ``_parts`` (positions of pager prompts answered)."""
        self._bytes = 0
        """Bytes received in the current login text or output."""
        self._paged_at = -1
        self._nudged = False
        self._stray_prompt = False
        """The login's Enter may still be answered with a prompt of its own (the device was
        slow, not waiting for a key): it can arrive after the first command was sent."""
        self._command = ""
        self._outgoing: list[bytes] = []
        self._events: list[Event] = []

    # -- what the transport asks ---------------------------------------------------------

    @property
    def ready(self) -> bool:
        """At the prompt with nothing pending: :meth:`command` may be called."""
        return self.state is State.READY

    @property
    def logged_in(self) -> bool:
        return self.state in (State.READY, State.COMMAND)

    @property
    def nudged(self) -> bool:
        """Whether Enter was already pressed once for a silent login."""
        return self._nudged

    def outgoing(self) -> bytes:
        """The bytes to send now (and forget)."""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def events(self) -> list[Event]:
        """What happened since the last call (and forget)."""
        events, self._events = self._events, []
        return events

    # -- what the transport tells --------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the device.

        Raises:
            SessionError: ``protocol``: no prompt within the login cap;
                ``oversized-output``: an output over a cap of :class:`OutputLimits`.
        """
        if self.state is State.CLOSED or not data:
            return
        self._bytes += len(data)
        text = self._decoder.decode(data)
        if text and self.state is State.COMMAND:
            try:
                self._guard.feed(text)
            except OutputTooLarge as exc:
                self.state = State.CLOSED
                self._reset()  # the text is dropped now, not when the result is built
                raise SessionError(
                    ErrorKind.OVERSIZED_OUTPUT, f"'{self._command}': {exc}"
                ) from None
        if text:
            self._parts.append(text)
            self._size += len(text)
            self._tail = (self._tail + text)[-_TAIL:]
        if self.state is State.LOGIN:
            self._login_step()
        elif self.state is State.COMMAND:
            self._command_step()
        # READY: the device said something unasked (a log line); it becomes part of the
        # next output's echo line or is dropped with it.

    def idle(self) -> None:
        """The device has said nothing for :data:`NUDGE_AFTER` s at login: press Enter,
        once (some devices print their prompt only after a key press)."""
        if self.state is State.LOGIN and not self._nudged:
            self._nudged = True
            self._stray_prompt = True
            self._send("")

    def closed(self) -> None:
        """The connection ended (EOF or reset).

        Raises:
            SessionError: ``auth`` after a declined password change; during a command,
                ``incomplete-output`` (some output came) or ``protocol`` (none).
            ConnectionDropped: any other time (the caller names the host).
        """
        state, self.state = self.state, State.CLOSED
        if state is State.LOGIN and any("password" in q.lower() for q in self.declined):
            # Some releases end the session when an expired password is not changed.
            raise SessionError(
                ErrorKind.AUTH,
                "the device closed the session after the collector declined its"
                f" password change question ({self.declined[-1]!r}): change the password"
                " interactively; the collector never changes anything",
            )
        if state is State.COMMAND:
            lines = clean_output("".join(self._parts)).count("\n")
            kind = ErrorKind.INCOMPLETE_OUTPUT if lines > 1 else ErrorKind.PROTOCOL
            raise SessionError(
                kind,
                f"connection closed by the device during '{self._command}'"
                f" after {lines} line(s) of output",
            )
        raise ConnectionDropped

    # -- what the transport wants --------------------------------------------------------

    def prepare(self) -> None:
        """Turn paging off for this session (``screen-length 0 temporary``)."""
        self.command(commands.DISABLE_PAGING)

    def command(self, command: str) -> None:
        """Send one allowed command; its :class:`Output` follows when the prompt is back.

        Raises:
            CommandNotAllowed: ``command`` is not on the allowed list.
            SessionError: ``protocol``: not logged in yet.
        """
        check_command(command)
        if self.state is not State.READY:
            raise SessionError(ErrorKind.PROTOCOL, "no prompt seen before the first command")
        self.state = State.COMMAND
        self._command = command
        self._reset()
        self._send(command)

    def quit(self) -> None:
        """Say ``quit`` (the session ends; nothing more is read)."""
        if self.state in (State.READY, State.COMMAND):
            self._send(commands.QUIT)
        self.state = State.CLOSED

    # -- inside ----------------------------------------------------------------------------

    def _send(self, line: str) -> None:
        self._queue(line + self.line_end)

    def _queue(self, data: str) -> None:
        check_keystrokes(data, self.line_end)
        self._outgoing.append(data.encode("utf-8"))

    def _reset(self) -> None:
        self._parts.clear()
        self._tail = ""
        self._size = 0
        self._bytes = 0
        self._paged_at = -1
        self._guard = OutputGuard(self.limits)

    def _login_step(self) -> None:
        tail = self._tail.rstrip("\r\n")
        if vrp_text.QUESTION.search(tail):
            self._decline(tail)
            self._reset()
            return
        match = vrp_text.LOGIN_PROMPT.search(self._tail)
        if match is not None:
            self.prompt_name = (match.group("angle") or match.group("square") or "").strip()
            self.state = State.READY
            self._reset()
            log.debug("%s: prompt %r", self.device_name, match.group("prompt"))
            self._events.append(LoggedIn(match.group("prompt"), self.prompt_name))
            return
        if self._bytes > self.max_login_bytes:
            raise SessionError(ErrorKind.PROTOCOL, "no VRP prompt after login")

    def _decline(self, tail: str) -> None:
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        # Without the ':' some devices print after the brackets: it may come in the next
        # chunk, and the question is the same.
        question = " ".join(lines[-2:]).rstrip(": \t")
        self.declined.append(question)
        log.info("%s: answering N to %r", self.device_name, question)
        self._events.append(Declined(question))
        self._send(commands.ANSWER_NO)

    def _at_prompt(self, text: str) -> bool:
        """Whether ``text`` ends with this device's prompt (any HRP_M/HRP_S prefix: it
        may flip during an HA switchover)."""
        match = vrp_text.PROMPT_AT_END.search(text)
        return match is not None and match.group("name").strip() == self.prompt_name

    def _command_step(self) -> None:
        tail = self._tail
        if self._at_prompt(tail):
            if self._stray_prompt and self._only_a_prompt():
                # The answer to the login's Enter, before the command's echo: not its output.
                log.debug("%s: a prompt before the echo of '%s'", self.device_name, self._command)
                self._stray_prompt = False
                self._reset()
                return
            self._finish()
            return
        # Pages are turned even after screen-length was accepted: a device that pages
        # anyway must not hang the session until its deadline.
        match = vrp_text.MORE_AT_END.search(tail)
        if match is not None:
            at = self._size - len(tail) + match.end()
            if at > self._paged_at:
                self._paged_at = at
                self._queue(commands.PAGER_KEY)

    def _only_a_prompt(self) -> bool:
        """Whether all that came since the command was sent is one prompt (no echo)."""
        text = "".join(self._parts).strip()
        match = vrp_text.PROMPT_AT_END.search(text)
        return match is not None and match.start() == 0

    def _finish(self) -> None:
        self._stray_prompt = False  # the first answer is complete: no Enter is pending
        command = self._command
        text = self._strip_echo_and_prompt(clean_output("".join(self._parts)), command)
        self.state = State.READY
        self._reset()
        if command == commands.DISABLE_PAGING:
            self.paging = bool(vrp_text.ERROR_LINE.search(text))
            if self.paging:
                log.info(
                    "%s: '%s' refused; turning pages with space",
                    self.device_name,
                    commands.DISABLE_PAGING,
                )
                self._events.append(PagingRefused())
        self._events.append(Output(command, text))

    def _strip_echo_and_prompt(self, text: str, command: str) -> str:
        lines = text.split("\n")
        if lines and command in lines[0]:
            lines = lines[1:]
        if lines and self._at_prompt(lines[-1]):
            lines = lines[:-1]
        return "\n".join(lines)
