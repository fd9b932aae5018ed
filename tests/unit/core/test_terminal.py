"""collector.core.terminal: every terminal control sequence out, the text and its lines kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.core.parse import parse, strip_terminal_noise
from collector.core.terminal import has_controls, strip_controls
from collector.ssh.vrp_session import clean_output
from mock_devices.tables import Row, render_table

SETTINGS = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize(
    ("noisy", "clean"),
    [
        ("dpd\x9b2J timeout", "dpd timeout"),  # C1 CSI: the "dpd2J timeout"
        ("\x1b[1;31mdpd\x1b[0m timeout", "dpd timeout"),
        ("\x1b[?25l\x1b[16D", ""),
        ("\x1b]0;title\x07row", "row"),  # OSC ended by BEL
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST ends
        ("\x9d0;title\x9crow", "row"),  # C1 OSC and C1 ST
        ("a\x1bP1$r0m\x1b\\b", "ab"),  # DCS
        ("a\x1bXsos\x1b\\b", "ab"),  # SOS
        ("a\x1b^pm\x9cb", "ab"),  # PM
        ("a\x1b_apc\x1b\\b", "ab"),  # APC
        ("a\x90dcs\x9cb", "ab"),  # C1 DCS
        ("a\x1b7b\x1b8c", "abc"),  # save/restore cursor
        ("a\x1b(Bb", "ab"),  # charset designation
        ("end\x1b", "end"),  # lone ESC
        ("a\x85b\x84c", "abc"),  # C1 controls (NEL, IND)
        ("a\x07\x08\x00\x7fb", "ab"),  # C0 controls and DEL
        ("a\tb\nc", "a\tb\nc"),  # tab and LF kept
        ("a\r\nb\r", "a\nb"),
    ],
)
def test_strip_controls_examples(noisy: str, clean: str) -> None:
    assert strip_controls(noisy) == clean


def test_unterminated_string_ends_at_the_line_end() -> None:
    """An OSC that never ends must not swallow the table that follows it."""
    assert strip_controls("\x1b]0;title never ended\nrow 1\nrow 2") == "\nrow 1\nrow 2"


def test_parse_and_session_cleaning_use_it() -> None:
    assert strip_terminal_noise("dpd\x9b2J timeout") == "dpd timeout"
    assert clean_output("\x1b]0;t\x07a\r\n\x9b2Jb\r\n") == "a\nb\n"


def test_osc_title_in_a_row_still_parses() -> None:
    """The issue: ``ESC ] 0;title BEL`` inside a row made it unparsable."""
    from datetime import datetime

    row = Row("10.1.1.1", "dpd timeout", 2, datetime(2026, 1, 2, 3, 4, 5))
    lines = render_table([row], "router")
    lines[6] = "\x1b]0;pwned\x07" + lines[6].replace("dpd timeout", "dpd\x9b2J timeout")
    result = parse("\n".join(lines))
    assert result.complete
    assert [record.reason for record in result.records] == ["dpd timeout"]


controls = st.sampled_from(
    [
        "\x1b[2J",
        "\x9b2J",
        "\x1b]0;t\x07",
        "\x1b]2;x\x1b\\",
        "\x1bPq#0\x1b\\",
        "\x1b_x\x9c",
        "\x1b7",
        "\x1b(B",
        "\x1b",
        "\x9b",
        "\x85",
        "\x07",
        "\r",
        "\x08",
    ]
)
plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from(["\t", "\n"]),
    max_size=40,
)


@SETTINGS
@given(st.text(max_size=200))
def test_no_control_survives(text: str) -> None:
    cleaned = strip_controls(text)
    assert not has_controls(cleaned)
    assert strip_controls(cleaned) == cleaned


@SETTINGS
@given(plain)
def test_plain_text_unchanged(text: str) -> None:
    assert strip_controls(text) == text


@SETTINGS
@given(st.lists(st.tuples(plain, controls), max_size=8), plain)
def test_sequences_between_plain_text_vanish(parts: list[tuple[str, str]], last: str) -> None:
    """Complete sequences between plain text leave exactly the plain text (a lone ESC or
    C1 CSI before a letter would eat it, as a terminal would, so one is put last)."""
    noisy = "".join(text + control for text, control in parts) + last
    expected = "".join(text for text, _ in parts) + last
    terminated = all(control not in ("\x1b", "\x9b") for _, control in parts)
    if terminated:
        assert strip_controls(noisy) == expected
    assert strip_controls(noisy).count("\n") <= noisy.count("\n")
