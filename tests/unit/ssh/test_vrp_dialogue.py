"""The sans-I/O VRP dialogue on recorded byte streams.

Every device of the shipped mock scenarios (``demo``, ``faults``, ``variants``) that lets a
client log in is recorded over real SSH by a bare asyncssh client
(:mod:`vrp_recording`): the bytes it sent and the bytes the dialogue answered. Then:

* replaying each recording through a fresh dialogue sends the same bytes and yields outputs
  that parse into exactly the device's records (the value the user sees);
* hypothesis re-cuts every turn into arbitrary chunks: the events, the bytes sent and the
  way the session ends are the same whatever the chunking;
* hand-made streams cover what the mock does not do (a prompt flipping from ``HRP_M`` to
  ``HRP_S``, ``[~name]``, ``(y/n)``, a closed session after a declined password change,
  the byte caps, a pager prompt cut in two).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vrp_recording import Item, Outcome, live_outcome, record, replay

from collector.core import commands
from collector.core.commands import CommandNotAllowed, check_keystrokes
from collector.core.limits import OutputLimits
from collector.core.parse import parse
from collector.core.records import Device, ErrorKind
from collector.inventory.loading import load_inventory
from collector.ssh.errors import ConnectionDropped, SessionError
from collector.ssh.vrp_dialogue import Declined, LoggedIn, Output, PagingRefused, VrpDialogue
from mock_devices.device import DeviceState
from mock_devices.fleet import start_fleet
from mock_devices.scenario import Fault

PASSWORD = "dialogue-Pw-4410"
NOT_LOGGED_IN = {
    Fault.WRONG_CREDENTIALS,
    Fault.PORT_CLOSED,
    Fault.HANG_NO_BANNER,
    Fault.VERY_SLOW,
}


@dataclass(frozen=True)
class Recording:
    name: str
    device: Device
    items: tuple[Item, ...]
    state: DeviceState


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Recording]]:
    result: dict[str, Recording] = {}
    for scenario in ("demo", "faults", "variants"):
        directory = tmp_path_factory.mktemp(f"dialogue-{scenario}")
        with start_fleet(scenario, password=PASSWORD, inventory=directory) as fleet:
            assert fleet.inventory_path is not None
            inventory = {d.name: d for d in load_inventory(fleet.inventory_path).devices}
            for state in fleet.devices:
                if state.spec.faults & NOT_LOGGED_IN:
                    continue
                device = inventory[state.name]
                items = record(state.host, state.port, state.spec.username, PASSWORD, device)
                result[state.name] = Recording(state.name, device, tuple(items), state)
    yield result


def outputs(outcome: Outcome) -> list[Output]:
    return [event for event in outcome.events if isinstance(event, Output)]


def ike_outputs(outcome: Outcome) -> list[str]:
    """The IKE outputs the device's plan kept (after any fallback)."""
    assert outcome.result is not None
    return [text for _, _, text in outcome.result[1]]


# --- recorded streams -----------------------------------------------------------------------


def test_every_scenario_device_was_recorded(recordings: dict[str, Recording]) -> None:
    # Not vacuous: the scenarios' devices are there, faults and variants included.
    assert len(recordings) >= 30
    for name in ("f-drop-mid-output", "f-reject-screen-length", "fw-spu", "ne40e-slots"):
        assert name in recordings


def test_replay_sends_what_the_live_dialogue_sent(recordings: dict[str, Recording]) -> None:
    for rec in recordings.values():
        outcome = replay(rec.items, rec.device)
        assert outcome.sent == live_outcome(rec.items), rec.name
        for data in outcome.sent:
            check_keystrokes(data.decode())  # only allowed lines, Enter and the pager key
            lines = data.decode().split("\n")
            assert not any(line.strip().lower() in ("y", "yes") for line in lines)


def test_replayed_outputs_parse_into_the_devices_records(
    recordings: dict[str, Recording],
) -> None:
    checked = 0
    for rec in recordings.values():
        if rec.state.spec.faults & {
            Fault.DROP_MID_OUTPUT,
            Fault.COMMAND_UNSUPPORTED,
            Fault.TRUNCATED_TABLE,
            Fault.GARBAGE_OUTPUT,
            Fault.HUGE_TABLE,
            Fault.ENDLESS_OUTPUT,
        }:
            continue
        outcome = replay(rec.items, rec.device)
        assert outcome.error is None, rec.name
        parsed = [parse(text) for text in ike_outputs(outcome)]
        assert parsed, rec.name
        got = sum(len(result.records) for result in parsed)
        assert all(result.complete for result in parsed), rec.name
        peers = sorted(r.peer for result in parsed for r in result.records)
        expected = rec.state.records()
        if rec.device.data.get("ike_spus") is None and "slots" not in rec.name:
            assert got == len(expected), rec.name
            assert peers == sorted(r.peer for r in expected), rec.name
        else:
            assert got >= len(expected) > 0, rec.name
        for o in outputs(outcome):
            assert "More" not in o.text and "\x1b" not in o.text and "\r" not in o.text
            assert o.command not in o.text.split("\n", 1)[0], "echo left in"
        checked += 1
    assert checked >= 25


def test_faults_end_the_way_the_fault_matrix_says(recordings: dict[str, Recording]) -> None:
    drop = replay(recordings["f-drop-mid-output"].items, recordings["f-drop-mid-output"].device)
    assert drop.error is not None
    kind, message = drop.error
    assert kind == ErrorKind.INCOMPLETE_OUTPUT.value
    assert message.startswith("connection closed by the device during 'display ike offline-info'")
    for name in ("f-huge-table", "f-endless-output"):
        outcome = replay(recordings[name].items, recordings[name].device)
        assert outcome.error is not None and outcome.error[0] == "oversized-output", name
        assert outcome.error[1].startswith("'display ike offline-info': "), outcome.error
    paging = replay(
        recordings["f-reject-screen-length"].items, recordings["f-reject-screen-length"].device
    )
    assert any(isinstance(e, PagingRefused) for e in paging.events)
    assert any(data == commands.PAGER_KEY.encode() for data in paging.sent)
    for name in ("f-save-prompt", "f-password-change-prompt"):
        outcome = replay(recordings[name].items, recordings[name].device)
        declined = [e for e in outcome.events if isinstance(e, Declined)]
        assert declined, name
        assert b"N\n" in outcome.sent
    prompts = {
        event.prompt
        for rec in recordings.values()
        for event in replay(rec.items, rec.device).events
        if isinstance(event, LoggedIn)
    }
    assert any(prompt.startswith("HRP_M<") for prompt in prompts)  # the HA firewalls


MARKERS = (b"More", b"----", b"[Y/N]", b"(y/n)", b"<", b">", b"[", b"]", b"HRP_", b"\r\n", b"\x1b")
"""Where a cut is most likely to matter: cuts are drawn near these as well as anywhere."""


@st.composite
def cut_points(draw: st.DrawFn, blob: bytes) -> list[int]:
    size = len(blob)
    if size <= 1:
        return []
    points = draw(st.lists(st.integers(1, size - 1), max_size=min(20, size - 1), unique=True))
    near = sorted(
        {
            index + offset
            for marker in MARKERS
            for index in _find_all(blob, marker)
            for offset in range(-2, len(marker) + 3)
            if 0 < index + offset < size
        }
    )
    if near:
        points += draw(st.lists(st.sampled_from(near), max_size=60))
    return sorted(set(points))


def _find_all(blob: bytes, marker: bytes) -> Iterator[int]:
    start = blob.find(marker)
    while start != -1:
        yield start
        start = blob.find(marker, start + 1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_events_whatever_the_chunking(
    recordings: dict[str, Recording], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(recordings)))
    rec = recordings[name]

    def chunker(blob: bytes) -> list[bytes]:
        points = [0, *data.draw(cut_points(blob)), len(blob)]
        return [blob[a:b] for a, b in itertools.pairwise(points) if b > a]

    expected = replay(rec.items, rec.device)
    again = replay(rec.items, rec.device, chunker)
    assert again.events == expected.events, name
    assert again.sent == expected.sent, name
    assert again.error == expected.error, name


def test_same_events_with_every_marker_cut_to_single_bytes(
    recordings: dict[str, Recording],
) -> None:
    """Deterministic companion of the test above: every byte near a prompt, pager or
    question marker is its own chunk, in every recording."""

    def chunker(blob: bytes) -> list[bytes]:
        if len(blob) > 64 * 1024:  # the hostile streams: cut by hypothesis above only
            return [blob]
        points = {0, len(blob)}
        for marker in MARKERS:
            for index in _find_all(blob, marker):
                points.update(
                    index + offset
                    for offset in range(-2, len(marker) + 3)
                    if 0 < index + offset < len(blob)
                )
        ordered = sorted(points)
        return [blob[a:b] for a, b in itertools.pairwise(ordered)]

    for rec in recordings.values():
        expected = replay(rec.items, rec.device)
        again = replay(rec.items, rec.device, chunker)
        assert (again.events, again.sent, again.error) == (
            expected.events,
            expected.sent,
            expected.error,
        ), rec.name


# --- hand-made streams ----------------------------------------------------------------------


def logged_in(banner: bytes = b"\r\nInfo: welcome\r\n<fw-1>") -> VrpDialogue:
    dialogue = VrpDialogue("fw-1")
    dialogue.receive(banner)
    assert dialogue.ready
    assert [type(e) for e in dialogue.events()] == [LoggedIn]
    return dialogue


def test_square_and_tilde_prompts_and_hrp_prefixes_are_prompts() -> None:
    for banner, name in (
        (b"\r\n[~CE-1]", "CE-1"),
        (b"\r\n[USG]", "USG"),
        (b"\r\nHRP_S<fw-b>", "fw-b"),
        (b"Info: ...\r\n  HRP_M[fw-c]  ", "fw-c"),
    ):
        dialogue = VrpDialogue()
        dialogue.receive(banner)
        assert dialogue.ready and dialogue.prompt_name == name, banner


def test_prompt_prefix_may_flip_during_a_command() -> None:
    dialogue = logged_in(b"\r\nHRP_M<fw-1>")
    dialogue.command(commands.CLOCK)
    assert dialogue.outgoing() == b"display clock\n"
    dialogue.receive(b"display clock\r\n2026-12-01 10:00:00\r\n")
    assert not dialogue.ready
    dialogue.receive(b"HRP_S<fw-1>")  # the pair switched over meanwhile
    (event,) = dialogue.events()
    assert event == Output(commands.CLOCK, "2026-12-01 10:00:00")


def test_another_devices_prompt_does_not_end_the_output() -> None:
    dialogue = logged_in()
    dialogue.command(commands.CLOCK)
    dialogue.receive(b"display clock\r\n<other>")
    assert not dialogue.ready


def test_every_question_is_answered_no_never_yes() -> None:
    dialogue = VrpDialogue()
    dialogue.receive(b"\r\nWarning: The password will expire. Change now? [Y/N]:")
    assert dialogue.outgoing() == b"N\n"
    dialogue.receive(b"N\r\nSave the configuration (y/n) ")
    assert dialogue.outgoing() == b"N\n"
    dialogue.receive(b"N\r\n<ar>")
    events = dialogue.events()
    assert [type(e) for e in events] == [Declined, Declined, LoggedIn]
    assert "Change now?" in events[0].question  # type: ignore[union-attr]


def test_a_session_closed_after_a_declined_password_change_is_auth() -> None:
    dialogue = VrpDialogue()
    dialogue.receive(b"The password needs to be changed. Change now? [Y/N]: ")
    assert dialogue.outgoing() == b"N\n"
    with pytest.raises(SessionError) as info:
        dialogue.closed()
    assert info.value.kind is ErrorKind.AUTH
    assert "change the password interactively" in info.value.message


def test_closed_at_login_otherwise_is_a_dropped_connection() -> None:
    dialogue = VrpDialogue()
    dialogue.receive(b"\r\nInfo: banner\r\n")
    with pytest.raises(ConnectionDropped):
        dialogue.closed()


def test_short_reads_incomplete_output_or_protocol() -> None:
    dialogue = logged_in()
    dialogue.command(commands.OFFLINE_INFO)
    dialogue.receive(b"display ike offline-info\r\n")
    with pytest.raises(SessionError) as info:
        dialogue.closed()
    assert info.value.kind is ErrorKind.PROTOCOL
    dialogue = logged_in()
    dialogue.command(commands.OFFLINE_INFO)
    dialogue.receive(b"display ike offline-info\r\nCurrent info Num :3\r\nrow 1\r\n")
    with pytest.raises(SessionError) as info:
        dialogue.closed()
    assert info.value.kind is ErrorKind.INCOMPLETE_OUTPUT
    assert "after 3 line(s)" in info.value.message


def test_outputs_and_login_text_are_bounded() -> None:
    dialogue = VrpDialogue(limits=OutputLimits(max_bytes=1000))
    dialogue.receive(b"<ar>")
    dialogue.command(commands.OFFLINE_INFO)
    assert dialogue.outgoing() == b"display ike offline-info\n"
    with pytest.raises(SessionError) as info:
        for _ in range(20):
            dialogue.receive(b"x" * 100 + b"\r\n")
    assert info.value.kind is ErrorKind.OVERSIZED_OUTPUT
    assert info.value.message.startswith("'display ike offline-info': more than 1000 bytes")
    assert dialogue.outgoing() == b"" and not dialogue.ready  # nothing more is read or sent
    rows = VrpDialogue()
    rows.receive(b"<ar>")
    rows.command(commands.OFFLINE_INFO)
    with pytest.raises(SessionError) as info:
        rows.receive(b"display ike offline-info\r\nCurrent info Num :5000\r\n")
    assert info.value.kind is ErrorKind.OVERSIZED_OUTPUT and "5000" in info.value.message
    login = VrpDialogue(max_login_bytes=1000)
    with pytest.raises(SessionError) as info:
        for _ in range(20):
            login.receive(b"banner " * 20)
    assert info.value.message == "no VRP prompt after login"


def test_a_pager_prompt_cut_in_two_is_answered_once() -> None:
    dialogue = logged_in()
    dialogue.command(commands.OFFLINE_INFO)
    dialogue.outgoing()
    dialogue.receive(b"display ike offline-info\r\nrow 1\r\n  ---- More --")
    assert dialogue.outgoing() == b""
    dialogue.receive(b"--")
    assert dialogue.outgoing() == b" "
    dialogue.receive(b"\x1b[16D                \x1b[16Drow 2\r\n<fw-1>")
    assert dialogue.outgoing() == b""
    (event,) = dialogue.events()
    assert event == Output(commands.OFFLINE_INFO, "row 1\nrow 2")


def test_refused_screen_length_turns_paging_on() -> None:
    dialogue = logged_in()
    dialogue.prepare()
    assert dialogue.outgoing() == b"screen-length 0 temporary\n"
    dialogue.receive(b"screen-length 0 temporary\r\n")
    dialogue.receive(
        b"              ^\r\nError: Unrecognized command found at '^' position.\r\n<fw-1>"
    )
    assert dialogue.paging
    assert PagingRefused() in dialogue.events()
    accepted = logged_in()
    accepted.prepare()
    accepted.receive(
        b"screen-length 0 temporary\r\nInfo: The configuration takes effect.\r\n<fw-1>"
    )
    assert not accepted.paging


def test_only_allowed_lines_are_ever_queued() -> None:
    dialogue = logged_in()
    for line in ("save", "Y", "system-view", "display ike offline-info\nsave"):
        with pytest.raises(CommandNotAllowed):
            dialogue.command(line)
    assert dialogue.outgoing() == b""
    assert dialogue.ready


def test_a_silent_login_gets_one_enter() -> None:
    dialogue = VrpDialogue()
    dialogue.idle()
    dialogue.idle()
    assert dialogue.outgoing() == b"\n"
    dialogue.receive(b"<ar>")
    assert dialogue.ready


def test_the_prompt_answering_the_login_enter_is_not_the_first_commands_output() -> None:
    # A slow device: the banner and prompt were on their way when the Enter was pressed,
    # so the device answers that Enter with a second prompt, after the first command went.
    dialogue = VrpDialogue("fw-1")
    dialogue.idle()
    assert dialogue.outgoing() == b"\n"
    dialogue.receive(b"\r\nInfo: The max number of VTY users is 10.\r\n<fw-1>")
    dialogue.prepare()
    assert dialogue.outgoing() == b"screen-length 0 temporary\n"
    dialogue.receive(b"\r\n<fw-1>")
    assert not dialogue.ready
    dialogue.receive(b"screen-length 0 temporary\r\nInfo: The configuration takes effect.\r\n")
    dialogue.receive(b"<fw-1>")
    assert dialogue.events()[-1] == Output(
        commands.DISABLE_PAGING, "Info: The configuration takes effect."
    )
    dialogue.command(commands.CLOCK)
    dialogue.receive(b"\r\n<fw-1>")  # no Enter is pending any more: this is the answer
    assert dialogue.events() == [Output(commands.CLOCK, "")]


def test_without_a_pending_enter_a_bare_prompt_ends_the_command() -> None:
    dialogue = logged_in()
    dialogue.prepare()
    dialogue.receive(b"\r\n<fw-1>")  # a device that echoes nothing and prints nothing
    assert dialogue.events() == [Output(commands.DISABLE_PAGING, "")]
    assert dialogue.ready


def test_no_command_before_the_prompt() -> None:
    with pytest.raises(SessionError):
        VrpDialogue().command(commands.CLOCK)
