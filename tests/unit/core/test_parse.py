"""Tests of collector.core.parse: one fixture per device case, with golden expected records.

Each ``tests/fixtures/offline_info/<case>.txt`` is device output, byte for byte; its
``<case>.json`` holds what ``parse --format json`` prints for it
(``{"records": [...], "problems": [...]}``), or ``{"error": {...}}`` for an output the
parser refuses. ``UPDATE_GOLDENS=1 pytest tests/unit/core/test_parse.py`` rewrites the goldens;
review the diff before committing. The per-case tests below check the meaning of each
case independently of the goldens.
"""

from __future__ import annotations

import doctest
import json
import os
from datetime import datetime
from typing import Any

import pytest
from helpers import REFUSALS, SAMPLES

import collector.core.parse
from collector.core.parse import (
    CommandRejected,
    ParseError,
    ParseResult,
    Problem,
    ProblemKind,
    parse,
    strip_terminal_noise,
)
from collector.core.records import Category, OfflineRecord
from mock_devices.tables import Row, render_output

CASES = sorted(path.stem for path in SAMPLES.glob("*.txt"))
UPDATE_GOLDENS = os.environ.get("UPDATE_GOLDENS") == "1"


def fixture_text(case: str) -> str:
    # Bytes, not read_text(): universal newlines would hide the CRLF case.
    return (SAMPLES / f"{case}.txt").read_bytes().decode("utf-8")


def parse_case(case: str) -> ParseResult:
    return parse(fixture_text(case))


def outcome(text: str) -> dict[str, Any]:
    """What the golden file holds for an output."""
    try:
        return parse(text).to_dict()
    except ParseError as exc:
        return {"error": {"type": type(exc).__name__, "message": exc.message, "line": exc.line}}


def test_every_required_case_has_a_fixture() -> None:
    required = {
        "reference_ar",
        "usg_port_column",
        "long_reasons_single_space",
        "ipv6_peers",
        "empty_table",
        "crlf_trailing_blanks",
        "netmiko_no_echo_no_prompt",
        "netmiko_echo_and_prompt",
        "hrp_m_prompt",
        "info_lines",
        "firewall_clock_line",
        "pager_remnants",
        "unknown_reasons",
        "truncated_table",
        "unparseable_row",
        "rejected_unrecognized",
        "rejected_error_code",
        "rejected_wrong_parameter",
        "rejected_no_permission",
        "hrp_stamp_time_first",
        "hrp_stamp_time_first_no_echo",
        "hrp_stamp_iso_ms_crlf",
        "row_like_noise_after_table",
        "ne40e_offline_history",
        "ne40e_empty_slot",
        "ne40e_truncated_slot",
    }
    assert required <= set(CASES)
    assert (SAMPLES / "SOURCES.md").exists(), "each sample's source is quoted beside it"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    golden = SAMPLES / f"{case}.json"
    actual = outcome(fixture_text(case))
    if UPDATE_GOLDENS:
        golden.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", "utf-8")
    assert golden.exists(), f"no golden {golden.name}: run with UPDATE_GOLDENS=1"
    assert actual == json.loads(golden.read_text("utf-8"))


def test_reference_example_verbatim() -> None:
    text = fixture_text("reference_ar")
    assert text.startswith("<HUAWEI> display ike offline-info\n")
    result = parse(text)
    expected = OfflineRecord(
        peer="2.1.1.2",
        port=None,
        reason="dpd timeout",
        reason_code="dpd_timeout",
        category=Category.LIVENESS,
        ike_version=2,
        offline_time=datetime(2017, 2, 18, 2, 12, 39),
    )
    earlier = expected._replace(offline_time=datetime(2017, 2, 18, 1, 17, 6))
    assert result.records == (expected, earlier)
    assert result.problems == ()
    assert result.declared_count == 2
    assert result.complete


def test_firewall_port_column_and_hyphenated_reasons() -> None:
    result = parse_case("usg_port_column")
    assert [r.port for r in result.records] == [4500, 500, 4500, 500, 500, 500]
    assert result.records[0].reason == "dpd-timeout"
    assert result.records[0].reason_code == "dpd_timeout"
    assert result.records[4].reason == "re-auth-timeout"
    assert result.records[4].reason_code == "reauth_timeout"
    assert result.records[0].offline_time == datetime(2024, 3, 5, 9, 58, 1)
    assert result.complete


@pytest.mark.parametrize("case", ["long_reasons_single_space", "usg_long_reasons"])
def test_long_reasons_push_columns(case: str) -> None:
    text = fixture_text(case)
    # The fixture really has the single-space layout.
    assert " ikev1 phase1-phase2 sa dependent offline v1 " in text.replace(
        "ikev1-phase1-phase2-sa-dependent-offline", "ikev1 phase1-phase2 sa dependent offline"
    )
    result = parse(text)
    assert [r.reason_code for r in result.records] == [
        "ikev1_dependent_sa_offline",
        "port_mismatch_hard_expiry",
        "modecfg_address_soft_expiry",
        "invalid_spi_notify",
        "dns_resolution_change",
    ]
    assert [r.ike_version for r in result.records] == [1, 2, 2, 2, 1]
    assert result.complete


@pytest.mark.parametrize("case", ["ipv6_peers", "usg_ipv6_peers"])
def test_ipv6_peers(case: str) -> None:
    result = parse_case(case)
    assert [r.peer for r in result.records] == [
        "2001:db8::1",
        "2001:db8:ffff:1234:5678:9abc:def0:1",
        "fe80::a00:27ff:fe4e:66a1",
        "::ffff:192.0.2.1",
    ]
    assert result.complete


@pytest.mark.parametrize("case", ["empty_table", "usg_empty_table"])
def test_empty_table_is_zero_records_and_complete(case: str) -> None:
    result = parse_case(case)
    assert result.records == ()
    assert result.declared_count == 0
    assert result.problems == ()
    assert result.complete


def test_crlf_and_trailing_blanks() -> None:
    text = fixture_text("crlf_trailing_blanks")
    assert "\r\n" in text
    result = parse(text)
    assert [r.reason for r in result.records] == [
        "heartbeat timeout",
        "aaa cut user",
        "spi conflict",
    ]
    assert result.complete


@pytest.mark.parametrize(
    "case",
    [
        "netmiko_no_echo_no_prompt",
        "netmiko_echo_and_prompt",
        "hrp_m_prompt",
        "firewall_clock_line",
        "bracket_prompt",
        "info_lines",
    ],
)
def test_session_noise_is_not_a_problem(case: str) -> None:
    result = parse_case(case)
    assert result.records
    assert result.problems == ()
    assert result.complete


def test_pager_remnants_with_rows_continuing_after_the_erase() -> None:
    text = fixture_text("pager_remnants")
    assert "---- More ----\x1b[16D" in text
    result = parse(text)
    assert len(result.records) == 30
    assert [r.peer for r in result.records[:3]] == ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
    assert result.complete


def test_pager_remnants_42_columns() -> None:
    result = parse_case("pager_remnants_42d")
    assert len(result.records) == 20
    assert {r.port for r in result.records} == {4500}
    assert result.complete


@pytest.mark.parametrize("case", ["unknown_reasons", "usg_unknown_reasons"])
def test_extra_reasons_classified_unknown_kept_verbatim(case: str) -> None:
    result = parse_case(case)
    codes = {r.reason: (r.reason_code, r.category) for r in result.records}
    # Reasons beyond the command reference's 17 (Huawei troubleshooting tables, the USG
    # reference) have codes, hyphenated or spaced alike; anything else stays "unknown".
    assert codes["hardware-timeout"] == ("hardware_timeout", Category.HARDWARE)
    kick = next(text for text in codes if text.startswith("kick"))
    assert codes[kick] == ("kick_old_sa_same_flow", Category.REKEY)
    unknown = [r for r in result.records if r.reason_code == "unknown"]
    expected = ["ipsec sa deleted by remote end for unknown cause"]
    assert [r.reason for r in unknown] == (expected if case == "unknown_reasons" else [])
    assert all(r.category is Category.UNKNOWN for r in unknown)
    assert result.problems == ()


def test_truncated_table_is_reported() -> None:
    result = parse_case("truncated_table")
    assert len(result.records) == 3
    assert result.declared_count == 6
    assert not result.complete
    kinds = [p.kind for p in result.problems]
    assert kinds == [ProblemKind.COUNT_MISMATCH, ProblemKind.UNPARSED_ROW]
    assert result.problems[0].line == 3
    assert "truncated" in result.problems[0].message
    assert result.problems[1].line == 11
    assert result.problems[1].text == "  10.7.0.4          dpd tim"


def test_truncated_at_a_row_boundary() -> None:
    result = parse_case("truncated_at_row_boundary")
    assert len(result.records) == 2
    assert not result.complete
    assert [p.kind for p in result.problems] == [ProblemKind.COUNT_MISMATCH]


def test_unparseable_row_among_good_rows() -> None:
    result = parse_case("unparseable_row")
    assert [r.peer for r in result.records] == ["10.8.0.1", "10.8.0.2", "10.8.0.5"]
    assert [(p.kind, p.line) for p in result.problems] == [
        (ProblemKind.UNPARSED_ROW, 9),
        (ProblemKind.UNPARSED_ROW, 10),
    ]
    assert "10.8.0.300" in result.problems[0].message
    assert result.problems[1].text is not None and "2024-02-30" in result.problems[1].text
    # The count (5) matches the rows seen: no mismatch, but not complete either.
    assert result.declared_count == 5
    assert not result.complete


@pytest.mark.parametrize(("case", "message"), REFUSALS)
def test_refused_command_raises_with_device_message(case: str, message: str) -> None:
    with pytest.raises(CommandRejected) as caught:
        parse_case(case)
    assert caught.value.message == message
    assert str(caught.value) == f"device refused the command: {message}"
    assert isinstance(caught.value, ParseError)


def test_refusal_after_table_text_is_still_a_refusal() -> None:
    text = render_output([Row("10.0.0.1", "dpd timeout", 2, datetime(2024, 1, 1))], "router")
    with pytest.raises(CommandRejected):
        parse(text + "Error: Too many parameters found at '^' position.\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty output"),
        ("  \r\n\n", "empty output"),
        ("<HUAWEI>", "only prompts"),
        ("<HUAWEI>display ike offline-info\n<HUAWEI>", "only prompts"),
        ("hello\nworld\n", "line 1: 'hello'"),
    ],
)
def test_not_offline_info_output(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert not isinstance(caught.value, CommandRejected)
    assert fragment in str(caught.value)


def test_other_command_output_is_a_parse_error_with_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse_case("not_offline_info")
    assert caught.value.line == 3


def test_rows_without_count_line() -> None:
    text = "\n".join(
        line
        for line in render_output(
            [Row("10.0.0.1", "dpd timeout", 2, datetime(2024, 1, 1))], "router"
        ).split("\n")
        if "Current info Num" not in line
    )
    result = parse(text)
    assert len(result.records) == 1
    assert result.declared_count is None
    assert [p.kind for p in result.problems] == [ProblemKind.MISSING_COUNT]
    assert not result.complete


def test_garbage_line_is_reported_but_not_truncation() -> None:
    text = render_output([Row("10.0.0.1", "dpd timeout", 2, datetime(2024, 1, 1))], "router")
    result = parse(text + "%% something odd\n")
    assert [p.kind for p in result.problems] == [ProblemKind.GARBAGE]
    assert result.problems[0].text == "%% something odd"
    assert result.complete


def test_header_in_upper_case_and_rule_lengths() -> None:
    text = (
        "  CURRENT INFO NUM : 1\n"
        "  IKE OFFLINE INFORMATION:\n"
        "  ----\n"
        "  PEER   OFFLINE-REASON  VERSION  OFFLINE-TIME\n"
        "  ===============\n"
        "  10.0.0.1 peer request v1 2024-01-01 00:00:00\n"
        "  " + "-" * 200 + "\n"
    )
    result = parse(text)
    assert [r.reason for r in result.records] == ["peer request"]
    assert result.problems == ()


def test_reason_containing_version_like_word() -> None:
    result = parse("Current info Num :1\n  10.0.0.1  foo v2 bar  v1  2024-01-01 00:00:00\n")
    assert result.records[0].reason == "foo v2 bar"
    assert result.records[0].ike_version == 1


def test_second_count_line_is_reported() -> None:
    one = render_output([Row("10.0.0.1", "dpd timeout", 2, datetime(2024, 1, 1))], "router")
    result = parse(one + one)
    # The second table stands after the first one's closing rule: not rows of this
    # output. Its count line is reported; the first table is complete.
    assert len(result.records) == 1
    assert {p.kind for p in result.problems} == {ProblemKind.GARBAGE}
    assert "second 'Current info Num'" in result.problems[0].message
    assert result.complete


def test_port_out_of_range_is_unparsed_row() -> None:
    result = parse(
        "Current info Num :1\n  10.0.0.1  70000  dpd-timeout  v2  2024/01/01  00:00:00\n"
    )
    assert result.records == ()
    assert result.problems[-1].kind is ProblemKind.UNPARSED_ROW
    assert "70000" in result.problems[-1].message


def test_problem_and_result_to_dict() -> None:
    problem = Problem(ProblemKind.UNPARSED_ROW, "row not parsed", 4, "  1.2.3")
    assert problem.to_dict() == {
        "kind": "unparsed-row",
        "message": "row not parsed",
        "line": 4,
        "text": "  1.2.3",
    }
    result = parse_case("reference_ar")
    data = result.to_dict()
    assert set(data) == {"records", "problems"}
    assert list(data["records"][0]) == [
        "peer",
        "port",
        "reason",
        "reason_code",
        "category",
        "ike_version",
        "offline_time",
        "slot",
        "cpu",
        "vpn_instance",
    ]
    assert data["records"][0]["offline_time"] == "2017-02-18T02:12:39"


def test_strip_terminal_noise_keeps_line_structure() -> None:
    text = "a\r\n  ---- More ----\x1b[42D" + " " * 42 + "\x1b[42Db\n\x07c"
    assert strip_terminal_noise(text) == "a\n" + " " * 42 + "b\nc"


def test_doctests() -> None:
    failures, tried = doctest.testmod(collector.core.parse)
    assert tried > 0
    assert failures == 0


# --- device variants (issue 15): HA timestamp lines, NE40E offline history -------------


@pytest.mark.parametrize(
    ("case", "count"),
    [
        ("firewall_clock_line", 2),
        ("hrp_stamp_time_first", 3),
        ("hrp_stamp_time_first_no_echo", 1),
        ("hrp_stamp_iso_ms_crlf", 2),
    ],
)
def test_every_ha_timestamp_form_is_noise(case: str, count: int) -> None:
    result = parse_case(case)
    assert result.complete
    assert len(result.records) == count == result.declared_count
    assert result.problems == ()
    assert all(record.port in (500, 4500) for record in result.records)


def test_time_first_stamp_keeps_every_record_and_classifies_ha_housekeeping() -> None:
    records = parse_case("hrp_stamp_time_first").records
    assert [(r.peer, r.reason_code, r.category) for r in records] == [
        ("10.10.10.10", "dpd_timeout", Category.LIVENESS),
        ("3.3.3.3", "backup_delete_info", Category.HA),
        ("10.2.2.2", "hardware_timeout", Category.HARDWARE),
    ]
    assert records[0].offline_time == datetime(2014, 7, 8, 10, 58, 1)


def test_row_like_line_after_the_closing_rule_is_not_a_record() -> None:
    result = parse_case("row_like_noise_after_table")
    assert [r.peer for r in result.records] == ["10.20.0.1"]
    assert result.complete
    assert [(p.kind, p.text) for p in result.problems] == [
        (
            ProblemKind.GARBAGE,
            "  10.99.0.1         dpd timeout                 v2          2024-03-05 09:00:00",
        )
    ]


def test_ne40e_history_keeps_slot_vpn_and_port_and_identical_rows_of_two_slots() -> None:
    result = parse_case("ne40e_offline_history")
    assert result.complete and result.declared_count == 3
    assert [
        (r.peer, r.port, r.slot, r.vpn_instance, r.reason, r.reason_code, r.ike_version)
        for r in result.records
    ] == [
        ("192.168.1.2", 500, "1", None, "Receive phase1 delete info", "peer_phase1_delete", None),
        ("10.1.1.9", 4500, "1", "vpna", "DPD timeout", "dpd_timeout", None),
        ("192.168.1.2", 500, "3", None, "Receive phase1 delete info", "peer_phase1_delete", None),
    ]
    assert result.records[0].buffer == ("1", None)


def test_ne40e_empty_slot_is_complete_and_a_short_slot_is_not() -> None:
    empty = parse_case("ne40e_empty_slot")
    assert empty.records == () and empty.declared_count == 0 and empty.complete
    short = parse_case("ne40e_truncated_slot")
    assert not short.complete
    assert short.problems[0].kind is ProblemKind.COUNT_MISMATCH
    assert short.problems[0].message.startswith("slot 2:")


def test_ne40e_refusal_of_offline_info_is_command_rejected() -> None:
    text = (
        "<HUAWEI>display ike offline-info\n"
        "                        ^\n"
        "Error: Unrecognized command found at '^' position.\n<HUAWEI>"
    )
    with pytest.raises(CommandRejected, match="Unrecognized command"):
        parse(text)
