"""Property and fuzz tests of the parser (hypothesis), one suite.

Properties: random records rendered by ``mock_devices.tables`` in each layout parse back
equal, with or without device noise around and between the lines; arbitrary text never
raises anything but ``ParseError``.

Fuzz, the hostile side: valid outputs mutated the way a broken session or a hostile
device mangles them (ANSI sequences, pager remnants, CRLF, random insertions, deletions,
truncation, random bytes decoded with ``errors='replace'``, as the transport decodes).
Whatever comes in:

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

from collector.core.parse import ParseError, ParseResult, ProblemKind, parse
from collector.core.records import REASONS, Device, DeviceStatus, OfflineRecord
from collector.ssh.transport import result_from_output
from mock_devices.tables import (
    LAYOUTS,
    Layout,
    Row,
    firewall_reason,
    group_by_slot,
    render_history,
    render_output,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SETTINGS = settings(max_examples=200, deadline=None)
DEVICE = Device("fuzz", "192.0.2.1")

# --- what a device holds: the strategies both halves draw from ---------------------------

peers = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)
layouts = st.sampled_from(LAYOUTS)
fuzz_rows = st.builds(
    Row,
    peer=peers,
    reason=st.sampled_from(
        ["dpd timeout", "peer request", "phase2 sa replace", "tunnel removed for unknown cause"]
    ),
    version=st.sampled_from([1, 2]),
    time=times,
    port=st.sampled_from([500, 4500]),
)
"""Rows with the common reasons: the fuzz half mangles the text around them."""


def expected_record(row: Row, layout: Layout) -> OfflineRecord:
    """A rendered row as the parser must read it back (firewalls print hyphenated reasons)."""
    if layout == "router":
        return OfflineRecord.build(row.peer, row.reason, row.version, row.time)
    return OfflineRecord.build(
        row.peer, firewall_reason(row.reason), row.version, row.time, row.port
    )


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


@FUZZ
@given(table=st.lists(fuzz_rows, max_size=10), layout=layouts, data=st.data())
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
    table=st.lists(fuzz_rows, min_size=1, max_size=6),
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
    table=st.lists(fuzz_rows, max_size=8),
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
    assert result.records == tuple(expected_record(row, layout) for row in table)
    assert result.complete


# --- properties: rendered tables parse back --------------------------------------------

random_reasons = st.lists(
    st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True), min_size=1, max_size=6
).map(" ".join)
reasons = st.one_of(
    st.sampled_from([reason.text for reason in REASONS]),
    st.sampled_from(["hardware-timeout", "tunnel removed for unknown cause"]),
    random_reasons,
)
rows = st.builds(
    Row,
    peer=peers,
    reason=reasons,
    version=st.sampled_from([1, 2]),
    time=times,
    port=st.sampled_from([500, 4500]),
)
"""Rows with every reason Huawei documents and random new ones."""

# What sessions put around and between the table lines (never an Error: line).
noise_lines = st.sampled_from(
    [
        "",
        "   ",
        "<HUAWEI>",
        "<AR-1>display ike offline-info",
        "HRP_M<USG6000-A>",
        "HRP_S<USG6000-B>display ike offline-info",
        "[~HUAWEI]",
        "display ike offline-info",
        "dis ike offline-info",
        "Info: The max number of VTY users is 10.",
        "Warning: The command output may be long.",
        "2024-03-05 10:11:12.345 +08:00",
        "2021-07-23 11:24:18.392 ",
        "11:01:45  2014/07/08",
        "  ---- More ----",
        "\x1b[16D                \x1b[16D",
    ]
)
# What may stand before the table or after its closing rule (banners, timestamp lines,
# another command's rows): never a row, whatever it looks like.
outside_lines = st.sampled_from(
    [
        "11:01:45  2014/07/08",
        "2021-07-23 11:24:18.392 ",
        "10.9.9.9          dpd timeout                 v2          2024-03-05 09:58:01",
        "10.9.9.9   500   dpd-timeout   v2   2024/03/05  09:58:01",
        "  ------------------",
        "%% banner text",
    ]
)
pager_prefixes = st.sampled_from(
    ["", "  ---- More ----\x1b[16D" + " " * 16 + "\x1b[16D", "\x1b[42D" + " " * 42 + "\x1b[42D"]
)


@SETTINGS
@given(table=st.lists(rows, max_size=12), layout=layouts, newline=st.sampled_from(["\n", "\r\n"]))
def test_rendered_rows_parse_back_equal(table: list[Row], layout: Layout, newline: str) -> None:
    result = parse(render_output(table, layout, newline=newline))
    assert result.records == tuple(expected_record(row, layout) for row in table)
    assert result.problems == ()
    assert result.declared_count == len(table)
    assert result.complete


@SETTINGS
@given(table=st.lists(rows, max_size=8), layout=layouts, data=st.data())
def test_device_noise_between_lines_changes_nothing(
    table: list[Row], layout: Layout, data: st.DataObject
) -> None:
    lines = render_output(table, layout).split("\n")
    noisy: list[str] = []
    for line in lines:
        noisy.extend(data.draw(st.lists(noise_lines, max_size=2)))
        noisy.append(
            data.draw(pager_prefixes) + line + data.draw(st.sampled_from(["", "  ", "\r"]))
        )
    result = parse("\n".join(noisy))
    assert result.records == tuple(expected_record(row, layout) for row in table)
    assert result.problems == ()
    assert result.complete


@SETTINGS
@given(
    table=st.lists(rows, min_size=1, max_size=6),
    layout=layouts,
    before=st.lists(outside_lines, max_size=3),
    after=st.lists(outside_lines, max_size=3),
)
def test_lines_outside_the_table_are_never_rows(
    table: list[Row], layout: Layout, before: list[str], after: list[str]
) -> None:
    text = "\n".join([*before, render_output(table, layout).rstrip("\n"), *after])
    result = parse(text)
    assert result.records == tuple(expected_record(row, layout) for row in table)
    assert result.complete
    assert all(p.kind is ProblemKind.GARBAGE for p in result.problems)


@SETTINGS
@given(text=st.text())
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    parse_or_parse_error(text)


@SETTINGS
@given(
    text=st.text(
        alphabet=st.sampled_from(list("0123456789abcdefv.:/- \t\r\n\x1b[DMore<>^Error[]:Num")),
        max_size=300,
    )
)
def test_row_like_text_raises_only_parse_error(text: str) -> None:
    parse_or_parse_error(text)


@SETTINGS
@given(
    table=st.lists(rows, min_size=1, max_size=6),
    layout=layouts,
    data=st.data(),
)
def test_random_text_mixed_into_valid_output(
    table: list[Row], layout: Layout, data: st.DataObject
) -> None:
    lines = render_output(table, layout).split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(lines)))
        lines.insert(position, data.draw(st.text(max_size=80)))
    parse_or_parse_error("\n".join(lines))


@SETTINGS
@given(table=st.lists(rows, min_size=1, max_size=6), layout=layouts, data=st.data())
def test_cut_anywhere_is_never_silent(
    table: list[Row], layout: Layout, data: st.DataObject
) -> None:
    """A read that ended early never yields a complete result with rows missing."""
    text = render_output(table, layout)
    cut = data.draw(st.integers(0, len(text)))
    try:
        result = parse(text[:cut])
    except ParseError:
        return
    if result.complete:
        assert len(result.records) == len(table)


@SETTINGS
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_row_patterns_yield_one_tuple_per_line(text: str) -> None:
    """parse() numbers lines by the position of findall's tuples: one per line, always."""
    from collector.core.parse import _FIREWALL_ROW, _ROUTER_ROW

    for shape in (_ROUTER_ROW, _FIREWALL_ROW):
        assert len(shape.findall(text)) == text.count("\n") + 1


@SETTINGS
@given(table=st.lists(rows, min_size=1, max_size=6), layout=layouts, data=st.data())
def test_problem_line_numbers_point_at_their_line(
    table: list[Row], layout: Layout, data: st.DataObject
) -> None:
    lines = render_output(table, layout).split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(lines)))
        lines.insert(position, data.draw(st.text(alphabet="0123456789abcv.: -/", max_size=40)))
    text = "\n".join(lines)
    try:
        result = parse(text)
    except ParseError:
        return
    for problem in result.problems:
        if problem.line is not None:
            assert problem.text is not None
            assert lines[problem.line - 1].rstrip() == problem.text


# --- NE40E / NetEngine 8000 offline history -----------------------------------------

ne40e_reasons = st.sampled_from(
    [
        "Receive phase1 delete info",
        "DPD timeout",
        "Phase2 SA replace",
        "Config modify or manual offline",
    ]
)
ne40e_rows = st.builds(
    Row,
    peer=peers,
    reason=ne40e_reasons,
    version=st.just(2),
    time=times,
    port=st.sampled_from([500, 4500]),
    slot=st.sampled_from([1, 3, 9]),
    vpn=st.sampled_from([None, "vpna", "cust-blue"]),
)


@SETTINGS
@given(
    table=st.lists(ne40e_rows, min_size=1, max_size=12),
    newline=st.sampled_from(["\n", "\r\n"]),
    before=st.lists(outside_lines, max_size=2),
)
def test_ne40e_sections_parse_back_equal_per_slot(
    table: list[Row], newline: str, before: list[str]
) -> None:
    sections = group_by_slot(table)
    text = newline.join([*before, *render_history(sections)]) + newline
    result = parse(text)
    expected = tuple(
        OfflineRecord.build(
            row.peer,
            row.reason,
            None,
            row.time,
            row.port,
            slot=str(slot),
            vpn_instance=row.vpn,
        )
        for slot, rows in sections
        for row in rows
    )
    assert result.records == expected
    assert result.complete
    assert result.declared_count == len(table)
