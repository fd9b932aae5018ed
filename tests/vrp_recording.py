"""Record a VRP conversation over real SSH, and replay it through a fresh dialogue.

:func:`record` logs in to a device with a bare asyncssh client (no collector transport),
lets :class:`~collector.ssh.vrp_dialogue.VrpDialogue` decide what to send (prepare, then the
device's plan: ``display clock`` and its IKE command(s), then ``quit``) and writes down
every chunk received and every byte sent, in order. :func:`replay` feeds the received
bytes to a new dialogue, cut into chunks by a ``chunker``, and returns what it sent and
what happened, to compare with the live run.

A "turn" is what the device sent between two of our sends: a device answers only what it
was asked, so a turn may be cut anywhere, but never merged with the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncssh

from collector.core.limits import OutputLimits
from collector.core.records import Device
from collector.ssh.errors import ConnectionDropped, SessionError
from collector.ssh.transport import Plan, device_plan
from collector.ssh.vrp_dialogue import Event, Output, VrpDialogue

LIMITS = OutputLimits(max_bytes=512 * 1024)
"""Recorded and replayed with a smaller byte cap than a run's 4 MB: an endless stream is
recorded up to here, and the test process stays small (200 rows are about 40 kB)."""

Item = tuple[Literal["recv", "send", "idle", "eof", "refused"], bytes]
"""``refused``: the dialogue itself ended the session (an output over a cap)."""


@dataclass
class Outcome:
    """What one conversation produced."""

    events: list[Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    """What was sent after each turn (joined)."""
    result: tuple[Any, list[Any]] | None = None
    """What the device's plan returned (clock, IKE outputs), if it ran to its end."""
    error: tuple[str, str] | None = None
    """``(kind, message)`` of the SessionError the end raised, ``("dropped", "")``."""


class Conductor:
    """What the recorder and the replay both do with a dialogue: prepare, then the plan."""

    def __init__(self, dialogue: VrpDialogue, plan: Plan) -> None:
        self.dialogue = dialogue
        self.plan = plan
        self.prepared = False
        self.started = False
        self.done = False
        self.events: list[Event] = []
        self.result: tuple[Any, list[Any]] | None = None
        """What the plan returned: the clock and the IKE outputs."""

    def step(self) -> None:
        dialogue = self.dialogue
        events = dialogue.events()
        self.events.extend(events)
        if self.done or not dialogue.ready:
            return
        if not self.prepared:
            self.prepared = True
            dialogue.prepare()
            return
        try:
            if not self.started:
                self.started = True
                command = next(self.plan)
            else:
                outputs = [event for event in events if isinstance(event, Output)]
                command = self.plan.send(outputs[-1].text)
        except StopIteration as finished:
            self.result = finished.value
            self.done = True
            dialogue.quit()
            return
        dialogue.command(command)


def _ended(dialogue: VrpDialogue) -> tuple[str, str]:
    try:
        dialogue.closed()
    except SessionError as exc:
        return exc.kind.value, exc.message
    except ConnectionDropped:
        return "dropped", ""
    return "none", ""  # pragma: no cover (closed() always raises)


async def _record(
    host: str, port: int, username: str, password: str, device: Device, timeout: float
) -> list[Item]:
    items: list[Item] = []
    dialogue = VrpDialogue(device.name, limits=LIMITS)
    conductor = Conductor(dialogue, device_plan(device, None, True))
    finished = asyncio.Event()

    class Session(asyncssh.SSHClientSession[bytes]):
        channel: asyncssh.SSHClientChannel[bytes]

        def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
            self.channel = chan

        def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
            if finished.is_set():
                return
            items.append(("recv", data))
            try:
                dialogue.receive(data)
            except SessionError:
                items.append(("refused", b""))
                finished.set()
                return
            self.flush()

        def flush(self) -> None:
            conductor.step()
            out = dialogue.outgoing()
            if out:
                items.append(("send", out))
                self.channel.write(out)
            if conductor.done:
                finished.set()

        def connection_lost(self, exc: Exception | None) -> None:
            finished.set()

        def eof_received(self) -> bool:
            finished.set()
            return False

    async with asyncssh.connect(
        host,
        port,
        username=username,
        password=password,
        known_hosts=None,
        config=None,
        client_keys=None,
        agent_path=None,
    ) as conn:
        session = Session()
        await conn.create_session(lambda: session, term_type="vt100", encoding=None)
        async with asyncio.timeout(timeout):
            while not finished.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await finished.wait()
                if not finished.is_set() and not dialogue.logged_in and not dialogue.nudged:
                    items.append(("idle", b""))
                    dialogue.idle()
                    session.flush()
        if not conductor.done and items[-1][0] != "refused":
            items.append(("eof", b""))
    return items


def record(
    host: str, port: int, username: str, password: str, device: Device, timeout: float = 30.0
) -> list[Item]:
    """The conversation with one device, as the dialogue conducts it (see module doc)."""
    return asyncio.run(_record(host, port, username, password, device, timeout))


def turns(items: Sequence[Item]) -> list[tuple[list[Item], bytes]]:
    """The conversation as turns: (what came and idles, what was sent after it)."""
    result: list[tuple[list[Item], bytes]] = []
    came: list[Item] = []
    sent = b""
    for kind, data in items:
        if kind == "send":
            sent += data
            continue
        if sent:
            result.append((came, sent))
            came, sent = [], b""
        came.append((kind, data))
    result.append((came, sent))
    return result


Chunker = Callable[[bytes], list[bytes]]


def replay(items: Sequence[Item], device: Device, chunker: Chunker | None = None) -> Outcome:
    """Feed a recorded conversation to a new dialogue, the bytes of each turn re-cut by
    ``chunker`` (None: as they were received)."""
    dialogue = VrpDialogue(device.name, limits=LIMITS)
    conductor = Conductor(dialogue, device_plan(device, None, True))
    outcome = Outcome()

    def feed(pieces: list[bytes]) -> None:
        for piece in pieces:
            if outcome.error is not None:
                return
            try:
                dialogue.receive(piece)
            except SessionError as exc:
                outcome.error = (exc.kind.value, exc.message)
                return
            conductor.step()

    for came, _ in turns(items):
        pending = b""
        for kind, data in came:
            if kind == "recv":
                if chunker is None:
                    feed([data])
                else:
                    pending += data
                continue
            if pending and chunker is not None:
                feed(chunker(pending))
                pending = b""
            if kind == "idle":
                dialogue.idle()
            elif kind == "eof" and outcome.error is None:
                outcome.error = _ended(dialogue)
        if pending and chunker is not None:
            feed(chunker(pending))
        conductor.step()
        outcome.sent.append(dialogue.outgoing())
    outcome.events = conductor.events
    outcome.result = conductor.result
    return outcome


def live_outcome(items: Sequence[Item]) -> list[bytes]:
    """What the live run sent after each turn."""
    return [sent for _, sent in turns(items)]
