"""Property tests of collector.core.parse (hypothesis).

Random records rendered by ``mock_devices.tables`` in each layout parse back equal,
with or without device noise around and between the lines; arbitrary text never
raises anything but ``ParseError``.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.core.parse import ParseError, ProblemKind, parse
from collector.core.records import REASONS, OfflineRecord
from mock_devices.tables import (
    LAYOUTS,
    Layout,
    Row,
    firewall_reason,
    group_by_slot,
    render_history,
    render_output,
)

SETTINGS = settings(max_examples=200, deadline=None)

peers = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
random_reasons = st.lists(
    st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True), min_size=1, max_size=6
).map(" ".join)
reasons = st.one_of(
    st.sampled_from([reason.text for reason in REASONS]),
    st.sampled_from(["hardware-timeout", "tunnel removed for unknown cause"]),
    random_reasons,
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)
rows = st.builds(
    Row,
    peer=peers,
    reason=reasons,
    version=st.sampled_from([1, 2]),
    time=times,
    port=st.sampled_from([500, 4500]),
)
layouts = st.sampled_from(LAYOUTS)

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


def expected_record(row: Row, layout: Layout) -> OfflineRecord:
    if layout == "router":
        return OfflineRecord.build(row.peer, row.reason, row.version, row.time)
    return OfflineRecord.build(
        row.peer, firewall_reason(row.reason), row.version, row.time, row.port
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


def _parse_or_parse_error(text: str) -> None:
    try:
        result = parse(text)
    except ParseError:
        return
    # A result is always well formed.
    assert all(problem.message for problem in result.problems)
    assert result.complete in (True, False)


@SETTINGS
@given(text=st.text())
def test_arbitrary_text_raises_only_parse_error(text: str) -> None:
    _parse_or_parse_error(text)


@SETTINGS
@given(
    text=st.text(
        alphabet=st.sampled_from(list("0123456789abcdefv.:/- \t\r\n\x1b[DMore<>^Error[]:Num")),
        max_size=300,
    )
)
def test_row_like_text_raises_only_parse_error(text: str) -> None:
    _parse_or_parse_error(text)


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
    _parse_or_parse_error("\n".join(lines))


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
