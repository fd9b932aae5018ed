"""Fuzz the parser with device-like noise (hypothesis).

``tests/test_parse_properties.py`` checks that rendered tables parse back and that
arbitrary text raises only ``ParseError``. This module is the hostile side: valid outputs
mutated the way a broken session or a hostile device mangles them (ANSI sequences, pager
remnants, CRLF, random insertions, deletions, truncation, random bytes decoded with
``errors='replace'``, as the transport decodes). Whatever comes in:

* nothing but :class:`collector.core.parse.ParseError` (or its ``CommandRejected``) escapes;
* what does come out is well formed: valid addresses, versions 1/2, real datetimes, and no
  terminal control character in any text the reports print (a device must not be able to
  drive the operator's terminal through a reason text);
* the transport's output check (:func:`collector.ssh.transport.result_from_output`) never
  raises and always names an error kind for a failed result;
* valid rows surrounded by noise still parse to exactly the rendered records.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.core.parse import ParseError, ParseResult, parse
from collector.core.records import Device, DeviceStatus, OfflineRecord
from collector.ssh.transport import result_from_output
from mock_devices.tables import LAYOUTS, Layout, Row, firewall_reason, render_output

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEVICE = Device("fuzz", "192.0.2.1")

peers = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
rows = st.builds(
    Row,
    peer=peers,
    reason=st.sampled_from(
        ["dpd timeout", "peer request", "phase2 sa replace", "tunnel removed for unknown cause"]
    ),
    version=st.sampled_from([1, 2]),
    time=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
    port=st.sampled_from([500, 4500]),
)
layouts = st.sampled_from(LAYOUTS)

ANSI = st.sampled_from(
    [
        "\x1b[16D",
        "\x1b[42D" + " " * 42 + "\x1b[42D",
        "\x1b[K",
        "\x1b[2J",
        "\x1b[0m",
        "\x1b[1;31m",
        "\x1b]0;title\x07",
        "\x1b[?25l",
        "\x1b7",
        "\x1b",
        "\x07",
        "\x08\x08",
        "\x00",
        "\x7f",
        "\x9b31m",
    ]
)
PAGER = st.sampled_from(
    [
        "  ---- More ----",
        "  ---- More ----\x1b[16D                \x1b[16D",
        "---- More ----",
        "  ---- More ----\r\n",
    ]
)
FRAGMENTS = st.one_of(
    ANSI,
    PAGER,
    st.sampled_from(["\r", "\r\n", "\n", "\n\n", "<HUAWEI>", "HRP_M<fw>", "[~HUAWEI]", "  "]),
    st.text(max_size=20),
    st.binary(max_size=24).map(lambda data: data.decode("utf-8", errors="replace")),
)


def mutate(text: str, data: st.DataObject) -> str:
    """Apply a few random edits a broken session could make."""
    for _ in range(data.draw(st.integers(0, 6), label="edits")):
        operation = data.draw(
            st.sampled_from(["insert", "delete", "truncate", "crlf", "replace"]), label="op"
        )
        position = data.draw(st.integers(0, len(text)), label="at")
        if operation == "insert":
            text = text[:position] + data.draw(FRAGMENTS) + text[position:]
        elif operation == "delete":
            end = data.draw(st.integers(position, min(len(text), position + 40)))
            text = text[:position] + text[end:]
        elif operation == "truncate":
            text = text[:position]
        elif operation == "crlf":
            text = text.replace("\n", "\r\n")
        else:
            end = data.draw(st.integers(position, min(len(text), position + 16)))
            junk = data.draw(st.binary(max_size=16)).decode("utf-8", errors="replace")
            text = text[:position] + junk + text[end:]
    return text


def _control_free(text: str) -> bool:
    """No C0/C1 control character but tab (a column separator, harmless on a terminal)."""
    return not any((ord(char) < 0x20 and char != "\t") or 0x7F <= ord(char) < 0xA0 for char in text)


def assert_well_formed(record: OfflineRecord) -> None:
    ipaddress.ip_address(record.peer)  # raises on anything that is not an address
    assert record.ike_version in (1, 2)
    assert isinstance(record.offline_time, datetime)
    assert record.port in (None, *range(65536))
    assert _control_free(record.peer) and _control_free(record.reason), record


def parse_or_parse_error(text: str) -> ParseResult | None:
    """The parser's result, or None when it raised its own error (anything else escapes)."""
    try:
        result = parse(text)
    except ParseError as error:
        assert str(error)
        return None
    for record in result.records:
        assert_well_formed(record)
    for problem in result.problems:
        assert problem.message
    return result


def check_transport(text: str) -> None:
    result = result_from_output(DEVICE, "display ike offline-info", text, started=datetime.now(UTC))
    if result.status is DeviceStatus.FAILED:
        assert result.error is not None and result.error.message
        assert "\n" not in result.error.message
        assert _control_free(result.error.message), result.error.message
    else:
        for record in result.records:
            assert_well_formed(record)


def expected(row: Row, layout: Layout) -> OfflineRecord:
    if layout == "router":
        return OfflineRecord.build(row.peer, row.reason, row.version, row.time)
    return OfflineRecord.build(
        row.peer, firewall_reason(row.reason), row.version, row.time, row.port
    )


@FUZZ
@given(table=st.lists(rows, max_size=10), layout=layouts, data=st.data())
def test_mutated_outputs_raise_only_parse_error(
    table: list[Row], layout: Layout, data: st.DataObject
) -> None:
    text = mutate(
        render_output(table, layout, newline=data.draw(st.sampled_from(["\n", "\r\n"]))), data
    )
    parse_or_parse_error(text)
    check_transport(text)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_decoded_with_replace(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    parse_or_parse_error(text)
    check_transport(text)


@FUZZ
@given(
    table=st.lists(rows, min_size=1, max_size=6),
    layout=layouts,
    garbage=st.lists(st.binary(max_size=60), min_size=1, max_size=5),
)
def test_device_error_lines_with_control_bytes_stay_one_clean_line(
    table: list[Row], layout: Layout, garbage: list[bytes]
) -> None:
    """A hostile ``Error:`` line (escape sequences, bell, NUL) is reported on one clean line."""
    lines = [f"Error: {chunk.decode('latin-1')}" for chunk in garbage]
    text = "\n".join(["  ^", *lines, render_output(table, layout)])
    parse_or_parse_error(text)
    check_transport(text)


NOISE_LINES = st.one_of(
    st.sampled_from(
        [
            "",
            "<HUAWEI>",
            "HRP_S<USG6000>",
            "Info: The max number of VTY users is 10.",
            "\x1b[1;32mWelcome\x1b[0m",
            "  ---- More ----\x1b[16D                \x1b[16D",
            "2024-03-05 10:11:12.345 +08:00",
        ]
    ),
    # Free text that cannot be mistaken for a row: no digits, no colon.
    st.text(alphabet=st.characters(categories=["L", "Zs"], max_codepoint=0x2FF), max_size=50),
)


@FUZZ
@given(
    table=st.lists(rows, max_size=8),
    layout=layouts,
    before=st.lists(NOISE_LINES, max_size=6),
    after=st.lists(NOISE_LINES, max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_valid_rows_surrounded_by_noise_still_parse(
    table: list[Row],
    layout: Layout,
    before: list[str],
    after: list[str],
    newline: str,
) -> None:
    text = newline.join([*before, render_output(table, layout, newline=newline), *after])
    result = parse(text)
    assert result.records == tuple(expected(row, layout) for row in table)
    assert result.complete
