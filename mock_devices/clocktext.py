"""What a VRP device prints about its own clock: ``display clock`` and the HA timestamp line.

Pure: an aware datetime (the device's clock in its zone) goes in, text comes out.

``display clock`` styles (``clock: {style: ...}`` in a scenario):

* ``offset`` (V200R010 and later, NE/CE): the offset on the time line, DST included::

      2026-11-27 10:11:12+08:00
      Friday
      Time Zone(China-Standard-Time) : UTC+08:00

* ``no-offset`` (older releases): ``2026-11-27 10:11:12``, the weekday,
  ``Time Zone(BJ) : UTC+08:00``.
* ``add-minus`` (older VRP5): no time-line offset, ``Time Zone(BJ) : add 08:00:00`` or
  ``minus 03:00:00``.

A zone with daylight saving time (an IANA zone such as ``Europe/Berlin``) adds a
``Daylight saving time :`` block with this year's rule; while DST is in effect the time line
ends in `` DST`` and its offset (``offset`` style) includes the saving, while the
``Time Zone`` line keeps the standard offset::

      2026-07-01 10:00:00+02:00 DST
      Wednesday
      Time Zone(Berlin) : UTC+01:00
      Daylight saving time :
       Name         : Berlin
       Repeat mode  : repeat
       Start year   : 2000
       End year     : 2099
       Start time   : 03-29 02:00:00
       End time     : 10-25 03:00:00
       Saving time  : 01:00:00

HA timestamp line (``stamp:``), printed by HRP firewalls before every display command's
output: ``iso-offset`` ``2024-03-05 10:11:12.345 +08:00``; ``iso-ms``
``2021-07-23 11:24:18.392 `` (one trailing blank, as NE8000/VRP8 documents show);
``time-first`` ``11:01:45  2014/07/08`` (older USG firmware: time, two blanks, date).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

ClockStyle = Literal["offset", "no-offset", "add-minus"]
CLOCK_STYLES: tuple[ClockStyle, ...] = ("offset", "no-offset", "add-minus")
StampStyle = Literal["none", "iso-offset", "iso-ms", "time-first"]
STAMP_STYLES: tuple[StampStyle, ...] = ("none", "iso-offset", "iso-ms", "time-first")


def offset_text(offset: timedelta | None) -> str:
    """``+08:00`` / ``-03:00`` / ``+05:30``.

    Examples:
        >>> offset_text(timedelta(hours=-3))
        '-03:00'
    """
    seconds = int((offset or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def add_minus_text(offset: timedelta) -> str:
    """``add 08:00:00`` / ``minus 03:00:00`` (older VRP's zone line).

    Examples:
        >>> add_minus_text(timedelta(hours=-3))
        'minus 03:00:00'
    """
    seconds = int(offset.total_seconds())
    word = "minus" if seconds < 0 else "add"
    seconds = abs(seconds)
    return f"{word} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def standard_offset(now: datetime) -> timedelta:
    """The zone's offset without daylight saving time, at ``now`` (aware)."""
    return (now.utcoffset() or timedelta(0)) - (now.dst() or timedelta(0))


def in_dst(now: datetime) -> bool:
    """Whether daylight saving time is in effect at ``now`` (aware)."""
    return bool(now.dst())


@dataclass(frozen=True, slots=True)
class DstRule:
    """A year's daylight saving time, as ``display clock`` prints it (device-local times)."""

    start: datetime
    """Local standard time at which DST starts (clocks jump forward)."""
    end: datetime
    """Local daylight time at which DST ends (clocks go back)."""
    saving: timedelta


@functools.lru_cache(maxsize=64)
def dst_rule(zone: tzinfo, year: int) -> DstRule | None:
    """This year's DST start and end of ``zone``, or None if it keeps one offset all year.

    Found by walking the year hour by hour, then minute by minute around each change.

    Examples:
        >>> from zoneinfo import ZoneInfo
        >>> rule = dst_rule(ZoneInfo("Europe/Berlin"), 2026)
        >>> rule.start.strftime("%m-%d %H:%M:%S"), rule.end.strftime("%m-%d %H:%M:%S")
        ('03-29 02:00:00', '10-25 03:00:00')
    """
    begin = datetime(year, 1, 1, tzinfo=UTC)
    hours = int((datetime(year + 1, 1, 1, tzinfo=UTC) - begin).total_seconds() // 3600)
    start: datetime | None = None
    end: datetime | None = None
    saving = timedelta(0)
    previous = begin.astimezone(zone)
    for hour in range(1, hours + 1):
        moment = (begin + timedelta(hours=hour)).astimezone(zone)
        if bool(moment.dst()) != bool(previous.dst()):
            change = _first_minute(zone, begin + timedelta(hours=hour - 1), bool(moment.dst()))
            if moment.dst():
                saving = moment.dst() or timedelta(0)
                start = (change + standard_offset(moment)).replace(tzinfo=None)
            else:
                shift = previous.dst() or timedelta(0)
                end = (change + standard_offset(moment) + shift).replace(tzinfo=None)
        previous = moment
    if start is None or end is None:
        return None
    return DstRule(start=start, end=end, saving=saving)


def _first_minute(zone: tzinfo, hour_start: datetime, dst_after: bool) -> datetime:
    """The first UTC minute in the hour from ``hour_start`` whose DST state is ``dst_after``."""
    for minute in range(1, 61):
        moment = hour_start + timedelta(minutes=minute)
        if bool(moment.astimezone(zone).dst()) == dst_after:
            return moment
    return hour_start + timedelta(hours=1)


def zone_label(now: datetime, label: str | None) -> str:
    """The name in ``Time Zone(NAME)``: the scenario's label, else the zone's own name (the
    city for a zone with DST, ``Berlin``; the abbreviation otherwise, ``CST``)."""
    if label:
        return label
    key = getattr(now.tzinfo, "key", None)
    if key and dst_rule(now.tzinfo, now.year) is not None:
        return str(key).rsplit("/", 1)[-1]
    return now.tzname() or "UTC"


def clock_lines(
    now: datetime,
    style: ClockStyle = "offset",
    label: str | None = None,
    dst_name: str | None = None,
    dst_years: tuple[int, int] = (2000, 2099),
) -> list[str]:
    """``display clock`` for the device clock ``now`` (aware, in the device's zone).

    Examples:
        >>> from datetime import timezone
        >>> clock_lines(datetime(2026, 11, 27, 10, 11, 12, tzinfo=timezone(timedelta(hours=-3))),
        ...             "add-minus", "BR")
        ['2026-11-27 10:11:12', 'Friday', 'Time Zone(BR) : minus 03:00:00']
    """
    name = zone_label(now, label)
    time_line = now.strftime("%Y-%m-%d %H:%M:%S")
    if style == "offset":
        time_line += offset_text(now.utcoffset())
    if in_dst(now):
        time_line += " DST"
    standard = standard_offset(now)
    zone_value = add_minus_text(standard) if style == "add-minus" else f"UTC{offset_text(standard)}"
    lines = [time_line, now.strftime("%A"), f"Time Zone({name}) : {zone_value}"]
    assert now.tzinfo is not None
    rule = dst_rule(now.tzinfo, now.year)
    if rule is not None:
        seconds = int(rule.saving.total_seconds())
        lines += [
            "Daylight saving time :",
            f" Name         : {dst_name or name}",
            " Repeat mode  : repeat",
            f" Start year   : {dst_years[0]}",
            f" End year     : {dst_years[1]}",
            f" Start time   : {rule.start:%m-%d %H:%M:%S}",
            f" End time     : {rule.end:%m-%d %H:%M:%S}",
            f" Saving time  : {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
        ]
    return lines


def stamp_line(now: datetime, style: StampStyle) -> str | None:
    """The HA timestamp line for the device clock ``now`` (aware), or None for ``none``.

    Examples:
        >>> from datetime import timezone
        >>> moment = datetime(2024, 3, 5, 10, 11, 12, 345678, tzinfo=timezone(timedelta(hours=8)))
        >>> stamp_line(moment, "iso-offset"), stamp_line(moment, "iso-ms")
        ('2024-03-05 10:11:12.345 +08:00', '2024-03-05 10:11:12.345 ')
        >>> stamp_line(moment, "time-first")
        '10:11:12  2024/03/05'
    """
    millis = f"{now.microsecond // 1000:03d}"
    if style == "iso-offset":
        return f"{now:%Y-%m-%d %H:%M:%S}.{millis} {offset_text(now.utcoffset())}"
    if style == "iso-ms":
        return f"{now:%Y-%m-%d %H:%M:%S}.{millis} "
    if style == "time-first":
        return f"{now:%H:%M:%S}  {now:%Y/%m/%d}"
    return None
