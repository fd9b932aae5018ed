"""collector.core.limits: the caps of one answer, counted chunk by chunk as the session reads."""

from __future__ import annotations

import pytest

from collector.core.limits import OutputGuard, OutputLimits, OutputTooLarge


def test_a_count_line_split_across_chunks_is_seen_once() -> None:
    guard = OutputGuard(OutputLimits(max_table_rows=10))
    guard.feed("\r\n  Current info N")
    with pytest.raises(OutputTooLarge, match="says 12345, more than the 10 rows"):
        guard.feed("um :12345 \r\n")


def test_a_count_within_the_cap_passes_and_counts_one_table() -> None:
    guard = OutputGuard(OutputLimits(max_table_rows=10))
    guard.feed("  Current info Num :1")
    guard.feed("0\r\n")
    guard.feed("row\n" * 5)
    assert guard.tables == 1


def test_rows_beyond_what_the_tables_declare_are_cut() -> None:
    """A small count, then rows without end: the line cap per table ends it."""
    guard = OutputGuard(OutputLimits(max_table_rows=10))
    guard.feed("Current info Num :2\n")
    with pytest.raises(OutputTooLarge, match="more than 60 lines of output for 1 table"):
        for _ in range(100):
            guard.feed("  10.1.1.1  dpd timeout  v2  2026-01-01 00:00:00\n")


def test_each_table_of_a_multi_slot_device_gets_its_own_rows() -> None:
    """NE40E prints one table per slot: 3 full tables of 100 rows (300 lines, more than one
    table's allowance of 150) fit a 100-rows-per-table cap."""
    guard = OutputGuard(OutputLimits(max_table_rows=100))
    for slot in range(3):
        guard.feed(f"Slot {slot}\nCurrent info Num :100\n" + "row\n" * 100)
    assert guard.tables == 3
    assert guard.lines > 150


def test_bytes_cap() -> None:
    guard = OutputGuard(OutputLimits(max_bytes=1000))
    guard.feed("x" * 1000)
    with pytest.raises(OutputTooLarge, match="more than 1000 bytes"):
        guard.feed("x")
