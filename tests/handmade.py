"""Hand-made data several test files share: a fleet run, history rows, a scripted outage.

The test files that use these check every number they produce; the data lives here so that
no test file imports another.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from collector.core.records import (
    Device,
    DeviceResult,
    DeviceStatus,
    ErrorKind,
    OfflineRecord,
)
from collector.history.store import FULL_BUFFER

# --- one fleet run, every number of its report known (tests/unit/core/test_report.py) ---

GENERATED = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
STARTED = datetime(2024, 3, 2, 7, 59, 0, tzinfo=UTC)
FINISHED = datetime(2024, 3, 2, 7, 59, 30, tzinfo=UTC)


R = OfflineRecord.build


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute)


def device(name: str, site: str | None = None, groups: tuple[str, ...] = ()) -> Device:
    data = {} if site is None else {"site": site}
    return Device(name, f"{name}.example.net", groups=groups, data=MappingProxyType(data))


def make_results() -> list[DeviceResult]:
    r1 = DeviceResult(
        device("r1", "par1", ("routers", "paris")),
        DeviceStatus.OK,
        (
            R("10.1.1.1", "dpd timeout", 2, at(1, 10, 5)),
            R("10.1.1.1", "dpd timeout", 2, at(1, 10, 5)),  # same second: a distinct event
            R("10.1.1.1", "phase2 sa replace", 2, at(1, 11, 0)),
            R("10.2.2.2", "tunnel removed for unknown cause", 1, at(1, 12, 30)),
        ),
        started=STARTED,
        finished=datetime(2024, 3, 2, 7, 59, 10, tzinfo=UTC),
    )
    fw1 = DeviceResult(
        device("fw1", "par1", ("firewalls", "paris")),
        DeviceStatus.OK,
        (
            R("10.1.1.1", "dpd-timeout", 2, at(1, 10, 40), port=4500),
            R("10.3.3.3", "peer-request", 1, at(1, 23, 59), port=500),
            R("10.2.2.2", "tunnel removed for unknown cause", 1, at(1, 9, 0), port=500),
            R("10.4.4.4", "strange new reason", 2, at(1, 9, 30), port=500),
        ),
        started=STARTED,
        finished=FINISHED,
    )
    r2 = DeviceResult(device("r2", "lyo1", ("routers",)), DeviceStatus.OK, ())
    bad = DeviceResult.failure(
        device("r3", None, ("routers",)),
        ErrorKind.AUTH,
        "authentication failed for user netops",
    )
    timeout = DeviceResult.failure(device("fw2", "lyo1"), ErrorKind.TIMEOUT, "no answer in 30 s")
    return [r1, fw1, r2, bad, timeout]


# --- history rows (tests/integration/test_store.py) ---

BASE = datetime(2026, 3, 1)


def make_device(
    name: str, site: str | None = "bj", groups: tuple[str, ...] = ("core",), tz: str | None = "UTC"
) -> Device:
    data: dict[str, object] = {}
    if site is not None:
        data["site"] = site
    if tz is not None:
        data["timezone"] = tz
    return Device(name, f"{name}.example.net", groups=groups, data=MappingProxyType(data))


def rec(
    minute: int,
    peer: str = "10.0.0.1",
    reason: str = "dpd timeout",
    version: int = 2,
    port: int | None = None,
) -> OfflineRecord:
    return R(peer, reason, version, BASE + timedelta(minutes=minute), port=port)


def window(newest: int, count: int, peers: int = 7) -> tuple[OfflineRecord, ...]:
    """What a device prints: ``count`` deletions ending at minute ``newest``, newest first."""
    return tuple(
        rec(minute, peer=f"10.0.{minute % peers}.1") for minute in range(newest, newest - count, -1)
    )


def ok(device: Device, records: tuple[OfflineRecord, ...], **kwargs: object) -> DeviceResult:
    return DeviceResult(device, DeviceStatus.OK, records, **kwargs)  # type: ignore[arg-type]


def big_run_results(devices: int = 400) -> Iterator[DeviceResult]:
    for index in range(devices):
        yield ok(make_device(f"big{index:04d}"), window(5000 + index, FULL_BUFFER, peers=13))


# --- a hub outage over a mock fleet (tests/e2e/test_e2e_incidents.py) ---

SPOKES = [f"spoke-{n}" for n in range(1, 7)]

OUTAGE: dict[str, Any] = {
    "defaults": {
        "username": "admin",
        "timezone": "Asia/Shanghai",
        "records": {"generate": {"count": 0}},
    },
    "devices": [
        {
            "name": "hub-1",
            "layout": "firewall",
            "timezone": "UTC",
            "inventory_data": {"addresses": ["192.0.2.1"]},
            "scripted": [
                {
                    "minutes_ago": 40,
                    "offset_s": 1,
                    "every_s": 2,
                    "reason": "dpd timeout",
                    "peers": [f"10.1.0.{n}" for n in range(1, 7)],
                },
                {"minutes_ago": 90, "offset_s": 1, "reason": "peer request", "peer": "10.1.0.1"},
            ],
        },
        *(
            {
                "name": name,
                "inventory_data": {"addresses": [f"10.1.0.{n}"]},
                "scripted": [
                    {
                        "minutes_ago": 40,
                        "offset_s": 2 * n,
                        "reason": "dpd timeout",
                        "peer": "192.0.2.1",
                    },
                    # A second hub that only rekeys, every 10 minutes: routine, never a flap.
                    {
                        "minutes_ago": 200,
                        "every_s": 600,
                        "reason": "phase2 sa replace",
                        "peers": ["192.0.2.99"] * 12,
                    },
                ],
            }
            for n, name in enumerate(SPOKES, start=1)
        ),
    ],
}
OUTAGE["devices"][1]["scripted"].append(
    {"minutes_ago": 90, "reason": "config modify or manual offline", "peer": "192.0.2.1"}
)
