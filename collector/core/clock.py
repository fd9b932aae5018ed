"""Device time: zones from the inventory, ``display clock``, conversion to UTC, clock skew.

``display ike offline-info`` prints ``offline-time`` in the device's local time with no
zone. The store keeps that text verbatim and also an UTC instant, computed with a zone
taken (in this order) from the inventory (``data.timezone``), from ``display clock`` read at
collection (``--clock-from-device``), or else UTC. Pure functions: no clock is read here,
the caller passes "now".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.core.errors import CollectorError

DEFAULT_SKEW_THRESHOLD = timedelta(seconds=60)
"""Clock skew above this is reported (collection itself takes a second or two)."""

_OFFSET = re.compile(
    r"^(?:UTC|GMT)?\s*(?P<sign>[+-])\s*(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$",
    re.IGNORECASE,
)
_UTC_NAMES = frozenset({"utc", "gmt", "z", "zulu", "utc+0", "utc-0", "utc+00:00"})


class ZoneError(CollectorError, ValueError):
    """A time zone text that is neither an IANA name nor a UTC offset."""


class ClockParseError(CollectorError, ValueError):
    """``display clock`` output in a form we do not know."""


def parse_offset(text: str) -> timedelta | None:
    """Read a UTC offset such as ``+08:00``, ``UTC+8``, ``-0530``; None if it is not one.

    Examples:
        >>> parse_offset("+08:00")
        datetime.timedelta(seconds=28800)
        >>> parse_offset("UTC-5:30")
        datetime.timedelta(days=-1, seconds=66600)
        >>> parse_offset("Asia/Shanghai") is None
        True
    """
    match = _OFFSET.match(text.strip())
    if match is None:
        return None
    hours = int(match["hours"])
    minutes = int(match["minutes"] or 0)
    if hours > 14 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if match["sign"] == "-" else offset


def parse_zone(text: str) -> tzinfo:
    """Turn an inventory ``data.timezone`` into a tzinfo.

    Accepts an IANA name (``Asia/Shanghai``, DST rules included), a fixed UTC offset
    (``+08:00``, ``+0800``, ``UTC+8``, ``GMT-05:30``) or ``UTC``.

    Raises:
        ZoneError: the text is neither; the message says what is accepted.

    Examples:
        >>> parse_zone("Asia/Shanghai")
        zoneinfo.ZoneInfo(key='Asia/Shanghai')
        >>> parse_zone("UTC+8")
        datetime.timezone(datetime.timedelta(seconds=28800))
        >>> parse_zone("-0530")
        datetime.timezone(datetime.timedelta(days=-1, seconds=66600))
        >>> parse_zone("UTC")
        datetime.timezone.utc
    """
    cleaned = text.strip()
    if cleaned.lower() in _UTC_NAMES:
        return UTC
    offset = parse_offset(cleaned)
    if offset is not None:
        return UTC if not offset else timezone(offset)
    # ZoneInfo also accepts relative paths; refuse anything that is not a plain key.
    if cleaned and ".." not in cleaned and not cleaned.startswith("/"):
        try:
            return ZoneInfo(cleaned)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ZoneError(
        f"unknown time zone {text!r}: use an IANA name such as 'Asia/Shanghai' "
        "or a UTC offset such as '+08:00'"
    )


def to_utc(local: datetime, zone: tzinfo) -> datetime:
    """Convert a naive device-local time to an aware UTC datetime.

    A local time that occurs twice (the hour after DST ends) is read as its first
    occurrence (``fold=0``); a local time that does not exist (skipped by DST) is
    shifted the way zoneinfo does, by the zone's pre-transition offset. The device
    prints no DST marker, so nothing better is possible. An aware ``local`` is just
    converted.

    Examples:
        >>> to_utc(datetime(2026, 11, 27, 10, 11, 12), parse_zone("Asia/Shanghai"))
        datetime.datetime(2026, 11, 27, 2, 11, 12, tzinfo=datetime.timezone.utc)
        >>> to_utc(datetime(2026, 10, 25, 2, 30), parse_zone("Europe/Berlin")).hour
        0
    """
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """What ``display clock`` said."""

    local: datetime
    """The device's wall clock, naive."""
    utc_offset: timedelta | None
    """The offset the device applies (DST included when the device prints it)."""
    zone_name: str | None
    """The configured zone name, e.g. ``China-Standard-Time`` (``DefaultZoneName`` if unset)."""

    @property
    def zone(self) -> tzinfo | None:
        """A fixed-offset tzinfo for the device's offset, or None if it printed none."""
        if self.utc_offset is None:
            return None
        return UTC if not self.utc_offset else timezone(self.utc_offset)

    @property
    def aware(self) -> datetime | None:
        """The device clock as an aware datetime, when the offset is known."""
        zone = self.zone
        return None if zone is None else self.local.replace(tzinfo=zone)

    @property
    def text(self) -> str:
        """The clock as the operator should read it: with its offset, or saying it has none.

        Examples:
            >>> DeviceClock(datetime(2026, 12, 1, 4, 48), timedelta(hours=-3), None).text
            '2026-12-01 04:48:00-03:00'
            >>> DeviceClock(datetime(2026, 12, 1, 4, 48), None, None).text
            '2026-12-01 04:48:00 (no offset printed)'
        """
        aware = self.aware
        if aware is None:
            return f"{self.local.isoformat(sep=' ', timespec='seconds')} (no offset printed)"
        return aware.isoformat(sep=" ", timespec="seconds")


_CLOCK_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<time>\d{1,2}:\d{2}:\d{2})(?:\.\d+)?"
    r"(?P<offset>[+-]\d{2}:?\d{2})?(?P<dst>[ \t]+DST\b)?"
)
# "Time Zone(China-Standard-Time) : UTC+08:00" (V200R010 and later, NE/CE);
# "Time Zone(BJ) : add 08:00:00" / "minus 03:00:00" (older VRP5 releases).
_CLOCK_ZONE = re.compile(r"Time\s*Zone\s*\((?P<name>[^)]*)\)\s*:\s*(?P<offset>[^\r\n]+)", re.I)
_ADD_MINUS = re.compile(r"(?P<sign>add|minus)\s+(?P<hours>\d{1,2}):(?P<minutes>\d{2})", re.I)
# The "Daylight saving time :" block's "Saving time : 01:00:00" (the DST shift).
_SAVING = re.compile(r"Saving\s*time\s*:\s*(?P<hours>\d{1,2}):(?P<minutes>\d{2})", re.I)
_DEFAULT_SAVING = timedelta(hours=1)


def _zone_line_offset(text: str) -> timedelta | None:
    """The offset of a ``Time Zone(...)`` line's value (``UTC+08:00``, ``UTC``, ``add 08:00:00``).

    Examples:
        >>> _zone_line_offset("add 05:30:00")
        datetime.timedelta(seconds=19800)
        >>> _zone_line_offset("UTC-03:00")
        datetime.timedelta(days=-1, seconds=75600)
    """
    value = text.strip()
    if value.upper() in {"UTC", "GMT"}:
        return timedelta(0)
    add_minus = _ADD_MINUS.search(value)
    if add_minus is not None:
        offset = timedelta(hours=int(add_minus["hours"]), minutes=int(add_minus["minutes"]))
        return -offset if add_minus["sign"].lower() == "minus" else offset
    return parse_offset(value.split()[0]) if value else None


def parse_display_clock(text: str) -> DeviceClock:
    """Parse VRP ``display clock`` output.

    The offset printed on the time line (VRP V200R010 and later) includes daylight
    saving time and wins. Older releases print no offset there: the ``Time Zone(...)``
    line gives the standard offset, and when the time line ends in ``DST`` the shift of
    the ``Daylight saving time`` block (``Saving time : 01:00:00``; one hour if the
    block is missing) is added. ``docs/DEVICES.md`` has the samples.

    Raises:
        ClockParseError: no date and time found.

    Examples:
        >>> clock = parse_display_clock(
        ...     "2026-11-27 10:11:12+08:00\\nFriday\\n"
        ...     "Time Zone(China-Standard-Time) : UTC+08:00\\n")
        >>> clock.local, clock.utc_offset, clock.zone_name
        (datetime.datetime(2026, 11, 27, 10, 11, 12), datetime.timedelta(seconds=28800), \
'China-Standard-Time')
        >>> parse_display_clock(
        ...     "2026-11-27 10:11:12\\nFriday\\nTime Zone(DefaultZoneName) : UTC\\n").zone
        datetime.timezone.utc
        >>> parse_display_clock(
        ...     "2026-07-01 10:00:00 DST\\nWednesday\\nTime Zone(BJ) : UTC+08:00\\n"
        ...     "Daylight saving time :\\n Name : BJ\\n Saving time : 01:00:00\\n").utc_offset
        datetime.timedelta(seconds=32400)
    """
    time_match = _CLOCK_TIME.search(text)
    if time_match is None:
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise ClockParseError(f"display clock: no date and time in {first[:60]!r}")
    local = datetime.fromisoformat(f"{time_match['date']} {time_match['time']:0>8}")
    offset: timedelta | None = None
    if time_match["offset"]:
        offset = parse_offset(time_match["offset"])
    zone_match = _CLOCK_ZONE.search(text)
    zone_name = zone_match["name"].strip() if zone_match else None
    if offset is None and zone_match is not None:
        offset = _zone_line_offset(zone_match["offset"])
        if offset is not None and time_match["dst"]:
            saving = _SAVING.search(text)
            offset += (
                timedelta(hours=int(saving["hours"]), minutes=int(saving["minutes"]))
                if saving is not None
                else _DEFAULT_SAVING
            )
    return DeviceClock(local=local, utc_offset=offset, zone_name=zone_name or None)


def resolve_zone(
    inventory_zone: str | None = None, device_clock: datetime | DeviceClock | None = None
) -> tuple[tzinfo, str]:
    """Pick the zone for a device's offline times, and say where it came from.

    Order: the inventory's ``data.timezone``; the offset of ``display clock``; UTC.

    Returns:
        ``(zone, source)`` with source ``inventory``, ``device-clock`` or ``assumed-utc``.

    Raises:
        ZoneError: the inventory zone is not valid.

    Examples:
        >>> resolve_zone("+08:00")[1]
        'inventory'
        >>> resolve_zone(None, None)
        (datetime.timezone.utc, 'assumed-utc')
    """
    if inventory_zone:
        return parse_zone(inventory_zone), "inventory"
    if isinstance(device_clock, DeviceClock):
        if device_clock.zone is not None:
            return device_clock.zone, "device-clock"
    elif device_clock is not None and device_clock.tzinfo is not None:
        return device_clock.tzinfo, "device-clock"
    return UTC, "assumed-utc"


def clock_skew(
    device_clock: datetime | DeviceClock, zone: tzinfo, collector_utc: datetime
) -> timedelta:
    """Device clock minus collector clock (positive: the device is ahead).

    ``device_clock`` is what the device printed: naive (read in ``zone``), aware, or a
    DeviceClock (its own offset wins over ``zone``). ``collector_utc`` is the collector's
    aware time at the moment the clock was read.

    Examples:
        >>> clock_skew(datetime(2026, 1, 1, 8, 0, 30), parse_zone("+08:00"),
        ...            datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
        datetime.timedelta(seconds=30)
    """
    if isinstance(device_clock, DeviceClock):
        device_clock = device_clock.aware or device_clock.local
    return to_utc(device_clock, zone) - collector_utc


def session_skew(
    device_clock: datetime | DeviceClock | None,
    zone: tzinfo,
    started: datetime | None,
    finished: datetime | None,
) -> timedelta | None:
    """The skew of a clock read during a session (:func:`clock_skew` at its middle).

    None when no clock was read or the session has no times. The one rule: the store
    keeps it (``DeviceOutcome.skew``), ``collect`` warns about it.

    Examples:
        >>> at = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
        >>> session_skew(datetime(2026, 1, 1, 0, 1), UTC, at, at + timedelta(seconds=20))
        datetime.timedelta(seconds=50)
    """
    if device_clock is None:
        return None
    moments = [moment for moment in (started, finished) if moment]
    if not moments:
        return None
    # The clock is read somewhere inside the session: take its middle.
    return clock_skew(device_clock, zone, moments[0] + (moments[-1] - moments[0]) / 2)


def skew_exceeds(skew: timedelta, threshold: timedelta = DEFAULT_SKEW_THRESHOLD) -> bool:
    """True when the skew (either direction) is above the threshold.

    Examples:
        >>> skew_exceeds(timedelta(seconds=-90))
        True
        >>> skew_exceeds(timedelta(seconds=5))
        False
    """
    return abs(skew) > threshold
