"""Tests of ``collect-ike-offline parse`` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from helpers import REFUSALS, SAMPLES, invoke

from collector.core.records import RECORD_FIELDS

RECORD_CASES = sorted(
    path.stem
    for path in SAMPLES.glob("*.txt")
    if "records" in json.loads((SAMPLES / f"{path.stem}.json").read_text("utf-8"))
)


def fixture(case: str) -> str:
    return str(SAMPLES / f"{case}.txt")


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = invoke("parse", *args, stdin=stdin)
    return result.code, result.stdout, result.stderr


@pytest.mark.parametrize("case", RECORD_CASES)
def test_json_output_is_the_golden(case: str) -> None:
    code, out, _ = run("--format", "json", fixture(case))
    assert code == 0
    assert json.loads(out) == json.loads((SAMPLES / f"{case}.json").read_text("utf-8"))


def test_json_record_fields_are_exactly_the_record_fields() -> None:
    code, out, err = run("--format", "json", fixture("usg_port_column"))
    assert code == 0
    assert err == ""
    document = json.loads(out)
    assert set(document) == {"records", "problems"}
    assert all(list(record) == list(RECORD_FIELDS) for record in document["records"])
    assert document["records"][0]["offline_time"] == "2024-03-05T09:58:01"
    assert document["records"][0]["port"] == 4500


def test_table_is_default_and_problems_go_to_stderr() -> None:
    code, out, err = run(fixture("truncated_table"))
    assert code == 0
    assert out.splitlines()[0].split() == list(RECORD_FIELDS)
    assert "10.7.0.3" in out
    assert "truncated_table.txt:3: warning: count-mismatch:" in err
    assert "truncated_table.txt:11: warning: unparsed-row:" in err
    assert "10.7.0.4" in err


def test_csv_has_header_and_rows() -> None:
    code, out, _ = run("--format", "csv", fixture("usg_port_column"))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == list(RECORD_FIELDS)
    assert len(rows) == 7
    assert rows[1][:3] == ["203.0.113.7", "4500", "dpd-timeout"]


def test_ndjson_one_record_per_line() -> None:
    code, out, _ = run("--format", "ndjson", fixture("reference_ar"))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["reason_code"] == "dpd_timeout"


def test_stdin_with_dash_and_with_no_file() -> None:
    data = Path(fixture("reference_ar")).read_bytes()
    for args in (("--format", "ndjson", "-"), ("--format", "ndjson")):
        code, out, _ = run(*args, stdin=data)
        assert code == 0
        assert len(out.splitlines()) == 2


def test_several_files_concatenate_and_name_the_file_in_problems() -> None:
    code, out, _ = run("--format", "json", fixture("reference_ar"), fixture("unparseable_row"))
    assert code == 0
    document = json.loads(out)
    assert len(document["records"]) == 5
    assert {problem["file"] for problem in document["problems"]} == {fixture("unparseable_row")}
    assert [problem["line"] for problem in document["problems"]] == [9, 10]


@pytest.mark.parametrize(("case", "message"), REFUSALS)
def test_refused_command_exits_1_with_device_message(case: str, message: str) -> None:
    code, out, err = run("--format", "json", fixture(case))
    assert code == 1
    assert out == ""  # never an empty record list that reads as "0 records"
    assert err == f"{fixture(case)}: device refused the command: {message}\n"


def test_refused_file_among_good_ones_still_prints_the_good_records() -> None:
    code, out, err = run(
        "--format", "ndjson", fixture("reference_ar"), fixture("rejected_no_permission")
    )
    assert code == 1
    assert len(out.splitlines()) == 2
    assert "device refused the command" in err


def test_not_offline_info_output_exits_1() -> None:
    code, out, err = run(fixture("not_offline_info"))
    assert code == 1
    assert out == ""
    assert err.startswith(f"{fixture('not_offline_info')}: not display ike offline-info output")
    assert len(err.splitlines()) == 1


def test_unreadable_file_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    code, out, err = run(fixture("reference_ar"), str(missing))
    assert code == 2
    assert out == ""
    assert err == f"collect-ike-offline: cannot read {missing}: No such file or directory\n"


def test_directory_exits_2(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path))
    assert code == 2
    assert str(tmp_path) in err
    assert "Traceback" not in err


def test_undecodable_bytes_do_not_crash(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(Path(fixture("reference_ar")).read_bytes() + b"\xff\xfe garbage\n")
    code, out, _ = run("--format", "json", str(path))
    assert code == 0
    document = json.loads(out)
    assert len(document["records"]) == 2
    assert [problem["kind"] for problem in document["problems"]] == ["garbage"]
    assert document["problems"][0]["text"] == "\ufffd\ufffd garbage"


def test_unknown_format_is_a_usage_error() -> None:
    code, _, err = run("--format", "xml", fixture("reference_ar"))
    assert code == 2
    assert "xml" in err
