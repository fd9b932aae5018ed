"""Device time: zones, display clock, UTC conversion, skew."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from collector.core import clock
from collector.core.clock import (
    ClockParseError,
    DeviceClock,
    ZoneError,
    clock_skew,
    parse_display_clock,
    parse_zone,
    resolve_zone,
    skew_exceeds,
    to_utc,
)


def test_doctests() -> None:
    assert doctest.testmod(clock, raise_on_error=False).failed == 0


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("+08:00", timedelta(hours=8)),
        ("+0800", timedelta(hours=8)),
        ("UTC+8", timedelta(hours=8)),
        ("utc+08:00", timedelta(hours=8)),
        ("GMT-5", timedelta(hours=-5)),
        ("-0530", -timedelta(hours=5, minutes=30)),
        (" UTC ", timedelta(0)),
        ("Z", timedelta(0)),
        ("+00:00", timedelta(0)),
    ],
)
def test_offsets(text: str, offset: timedelta) -> None:
    assert parse_zone(text).utcoffset(None) == offset


def test_iana_names() -> None:
    assert parse_zone("Asia/Shanghai") == ZoneInfo("Asia/Shanghai")
    assert parse_zone("Etc/GMT-8").utcoffset(datetime(2026, 1, 1)) == timedelta(hours=8)


@pytest.mark.parametrize("text", ["", "Mars/Base", "+25:00", "UTC+8:75", "../etc/passwd", "/x"])
def test_bad_zones(text: str) -> None:
    with pytest.raises(ZoneError, match="IANA name"):
        parse_zone(text)


def test_to_utc_dst() -> None:
    berlin = parse_zone("Europe/Berlin")
    # 02:30 on 25 Oct 2026 happens twice in Berlin; fold=0 reads the first (CEST, +2).
    assert to_utc(datetime(2026, 10, 25, 2, 30), berlin) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert to_utc(datetime(2026, 7, 1, 12, 0), berlin).hour == 10
    assert to_utc(datetime(2026, 1, 1, 12, 0), berlin).hour == 11
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    assert to_utc(aware, berlin).hour == 9


def test_display_clock_new_form() -> None:
    text = "2026-11-27 10:11:12+08:00\nFriday\nTime Zone(China-Standard-Time) : UTC+08:00\n"
    parsed = parse_display_clock(text)
    assert parsed == DeviceClock(
        datetime(2026, 11, 27, 10, 11, 12), timedelta(hours=8), "China-Standard-Time"
    )
    assert parsed.aware == datetime(2026, 11, 27, 2, 11, 12, tzinfo=UTC)


def test_display_clock_old_form_and_dst_offset() -> None:
    old = parse_display_clock("2026-11-27 10:11:12\nFriday\nTime Zone(DefaultZoneName) : UTC\n")
    assert old.utc_offset == timedelta(0) and old.zone_name == "DefaultZoneName"
    # DST in effect: the time line's offset (+02:00) wins over the zone's standard offset.
    summer = parse_display_clock(
        "<HUAWEI>display clock\n2026-07-01 10:00:00+02:00\nWednesday\n"
        "Time Zone(Berlin) : UTC+01:00\nDaylight saving time :\n"
    )
    assert summer.utc_offset == timedelta(hours=2)
    bare = parse_display_clock("2026-07-01 9:00:00\n")
    assert bare.local == datetime(2026, 7, 1, 9) and bare.zone is None and bare.aware is None


def test_display_clock_garbage() -> None:
    with pytest.raises(ClockParseError, match="no date and time"):
        parse_display_clock("Error: Unrecognized command found at '^' position.")


def test_resolve_zone_order() -> None:
    device_clock = parse_display_clock("2026-11-27 10:11:12+08:00\n")
    assert resolve_zone("UTC-3", device_clock)[1] == "inventory"
    zone, source = resolve_zone(None, device_clock)
    assert source == "device-clock" and zone.utcoffset(None) == timedelta(hours=8)
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert resolve_zone(None, aware)[1] == "device-clock"
    assert resolve_zone(None, datetime(2026, 1, 1)) == (UTC, "assumed-utc")
    assert resolve_zone(None, parse_display_clock("2026-07-01 9:00:00"))[1] == "assumed-utc"


def test_skew() -> None:
    collector_now = datetime(2026, 11, 27, 2, 11, 0, tzinfo=UTC)
    device_clock = parse_display_clock("2026-11-27 10:13:12+08:00\n")
    skew = clock_skew(device_clock, UTC, collector_now)
    assert skew == timedelta(minutes=2, seconds=12)
    assert skew_exceeds(skew)
    assert not skew_exceeds(skew, threshold=timedelta(minutes=5))
    naive = clock_skew(datetime(2026, 11, 27, 10, 10, 50), parse_zone("+08:00"), collector_now)
    assert naive == timedelta(seconds=-10) and not skew_exceeds(naive)
