"""Incidents over synthetic fleets whose incidents are known: hub down, spoke reboot, device
burst, background noise that must not make one, and both ends of tunnels paired."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from collector.core.incidents import (
    Event,
    IncidentKind,
    Thresholds,
    address_book,
    device_addresses,
    find_incidents,
    pair_tunnels,
    run_events,
)
from collector.core.records import (
    Category,
    Device,
    DeviceResult,
    DeviceStatus,
    OfflineRecord,
    classify_reason,
)

T0 = datetime(2026, 11, 30, 3, 12, 0, tzinfo=UTC)
HUB = "192.0.2.1"


def ev(device: str, peer: str, reason: str, seconds: float) -> Event:
    code, category = classify_reason(reason)
    return Event(
        device, peer, code, reason, category, (T0 + timedelta(seconds=seconds)).timestamp()
    )


def spoke(n: int) -> str:
    return f"spoke-{n:02d}"


def spoke_address(n: int) -> str:
    return f"10.1.0.{n}"


BOOK = {HUB: "hub-1", **{spoke_address(n): spoke(n) for n in range(1, 41)}}


def noise(seed: int, count: int = 200) -> list[Event]:
    """Background deletions: random devices and peers, hours apart on average per device."""
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        device = spoke(rng.randint(1, 40))
        peer = f"203.0.113.{rng.randint(1, 250)}"
        events.append(ev(device, peer, "dpd timeout", -rng.uniform(3600, 7 * 86400)))
    return events


def test_hub_down_is_one_incident_toward_the_hub() -> None:
    # 37 spokes lose their tunnel to the hub within 40 s; the hub logs 37 dpd timeouts too.
    outage = [ev(spoke(n), HUB, "dpd timeout", n) for n in range(1, 38)]
    outage += [ev("hub-1", spoke_address(n), "dpd timeout", n + 0.5) for n in range(1, 38)]
    incidents = find_incidents([*noise(1), *outage], BOOK)
    assert len(incidents) == 1
    (hub,) = incidents
    assert hub.kind is IncidentKind.HUB
    assert (hub.subject, hub.subject_device) == (HUB, "hub-1")
    assert hub.deletions == 74
    assert len(hub.devices) == 38 and "hub-1" in hub.devices
    assert (hub.start, hub.end) == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=37.5))
    assert hub.reasons == (("dpd_timeout", 74),)
    assert hub.summary.startswith(
        "at 2026-11-30 03:12:01 UTC, 74 tunnels on 38 devices dropped within 36 s, "
        "all toward hub-1 (192.0.2.1)"
    )
    assert len(hub.pairs) == 37
    assert all(p.initiator is None and "both sides saw it" in p.explanation for p in hub.pairs)


def test_spoke_reboot_is_a_peer_incident_on_three_hubs() -> None:
    events = [ev(f"hub-{n}", "10.9.9.9", "dpd timeout", n * 5) for n in (1, 2, 3)]
    (incident,) = find_incidents([*noise(2), *events], BOOK)
    assert incident.kind is IncidentKind.PEER
    assert incident.devices == ("hub-1", "hub-2", "hub-3")
    assert incident.subject == "10.9.9.9" and incident.subject_device is None
    assert "peer 10.9.9.9 dropped on 3 devices within 10 s: the peer's side" in incident.summary


def test_device_burst_many_peers_on_one_device() -> None:
    burst = [ev("spoke-07", f"198.51.100.{n}", "dpd timeout", n * 2) for n in range(1, 9)]
    (incident,) = find_incidents([*noise(3), *burst], BOOK)
    assert incident.kind is IncidentKind.DEVICE_BURST
    assert incident.subject == "spoke-07" and incident.deletions == 8
    assert "8 tunnels on spoke-07 dropped within 14 s: the device or its uplink" in (
        incident.summary
    )


def test_slow_trickle_and_one_flapping_peer_are_no_incident() -> None:
    # One peer flapping 20 times on one device: not a burst (one tunnel).
    flap = [ev("spoke-01", "198.51.100.1", "dpd timeout", n * 10) for n in range(20)]
    # Five peers down on one device, each two minutes after the previous: not one cluster.
    trickle = [ev("spoke-02", f"198.51.101.{n}", "dpd timeout", n * 120) for n in range(5)]
    assert find_incidents([*noise(4), *flap, *trickle], BOOK) == ()


def test_thresholds_are_options() -> None:
    burst = [ev("spoke-07", f"198.51.100.{n}", "dpd timeout", n) for n in range(1, 4)]
    assert find_incidents(burst) == ()
    (incident,) = find_incidents(burst, thresholds=Thresholds(burst_min=3))
    assert incident.kind is IncidentKind.DEVICE_BURST
    wide = [ev(f"hub-{n}", "10.9.9.9", "dpd timeout", n * 100) for n in (1, 2, 3)]
    assert find_incidents(wide) == ()
    assert len(find_incidents(wide, thresholds=Thresholds(gap=timedelta(seconds=100)))) == 1
    spread = [ev(f"hub-{n}", "10.9.9.9", "dpd timeout", n) for n in (1, 2, 3)]
    assert find_incidents(spread, thresholds=Thresholds(hub_min=3))[0].kind is IncidentKind.HUB
    assert find_incidents(spread, thresholds=Thresholds(spread_min=4)) == ()


def test_both_ends_say_who_initiated() -> None:
    book = {"10.0.0.1": "a", "10.0.0.2": "b", "10.0.0.3": "c"}
    events = [
        # a's admin removed the tunnel; b was asked by a: a initiated.
        ev("a", "10.0.0.2", "config modify or manual offline", 0),
        ev("b", "10.0.0.1", "peer request", 1.2),
        # c timed out toward a, a was asked: c initiated (its DPD gave up first).
        ev("c", "10.0.0.1", "dpd timeout", 300),
        ev("a", "10.0.0.3", "peer-request", 301),
        # b toward c with no record on c: no pair.
        ev("b", "10.0.0.3", "dpd timeout", 600),
        # a toward b again, but b's record is 10 minutes later: too far apart.
        ev("a", "10.0.0.2", "dpd timeout", 900),
        ev("b", "10.0.0.1", "dpd timeout", 1500),
    ]
    pairs = pair_tunnels(events, book)
    assert [(p.device, p.reason, p.other, p.other_reason, p.initiator) for p in pairs] == [
        ("a", "config_modify_or_manual_offline", "b", "peer_request", "a"),
        ("c", "dpd_timeout", "a", "peer_request", "c"),
    ]
    assert pairs[0].explanation == "a (config modify or manual offline) asked b to delete"
    assert pairs[0].at == T0


def test_device_addresses_from_hostname_and_data() -> None:
    device = Device(
        "hub-1",
        "hub-1.example.net",
        data=MappingProxyType({"addresses": ["192.0.2.1", "not-an-ip"], "address": "2001:db8::1"}),
    )
    assert device_addresses(device) == {"192.0.2.1", "2001:db8::1"}
    twin = Device("lab-1", "127.0.0.1")
    other = Device("lab-2", "127.0.0.1")
    assert address_book([device, twin, other]) == {"192.0.2.1": "hub-1", "2001:db8::1": "hub-1"}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "+08:00"])
def test_run_events_are_utc_and_disruptive_only(zone: str) -> None:
    device = Device("ar-1", "10.0.0.1", data=MappingProxyType({"timezone": zone}))
    local = datetime(2026, 11, 30, 11, 12, 0)
    result = DeviceResult(
        device,
        DeviceStatus.OK,
        (
            OfflineRecord.build("10.0.0.2", "dpd timeout", 2, local),
            OfflineRecord.build("10.0.0.2", "phase2 sa replace", 2, local),
        ),
    )
    from collector.core.aggregate import device_zone

    zones = [device_zone(result)]
    assert run_events([result], zones) == []  # one deletion can make no incident: not built
    (event,) = run_events([result], zones, Thresholds(burst_min=1))
    assert event.at == datetime(2026, 11, 30, 3, 12, 0, tzinfo=UTC).timestamp()
    assert event.category is Category.LIVENESS


def test_run_report_shows_incidents_in_table_and_json() -> None:
    import json

    from collector.core.aggregate import aggregate
    from collector.output.render import render_report

    local = datetime(2026, 11, 30, 11, 12, 0)  # +08:00: 03:12 UTC
    results = [
        DeviceResult(
            Device(spoke(n), spoke_address(n), data=MappingProxyType({"timezone": "+08:00"})),
            DeviceStatus.OK,
            (OfflineRecord.build(HUB, "dpd timeout", 2, local + timedelta(seconds=n)),),
        )
        for n in range(1, 7)
    ]
    report = aggregate(results, generated_at=T0 + timedelta(hours=1))
    document = json.loads(render_report(report, "json"))
    (incident,) = document["summary"]["incidents"]
    assert incident["kind"] == "hub"
    assert incident["start"] == "2026-11-30T03:12:01+00:00"
    assert incident["devices"] == [spoke(n) for n in range(1, 7)]
    assert incident["reasons"] == [{"reason_code": "dpd_timeout", "count": 6}]
    table = render_report(report, "table")
    assert "Incidents (disruptive deletions within 60 s of each other)" in table
    assert incident["summary"] in table
    assert "6 tunnels on 6 devices dropped within 5 s, all toward 192.0.2.1" in table
    smaller = aggregate(results, generated_at=T0, thresholds=Thresholds(hub_min=10, spread_min=7))
    assert smaller.incidents == ()


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/New_York", "+05:30", "UTC"])
def test_event_times_equal_the_stores_conversion(name: str) -> None:
    """run_events' fast conversion equals clock.to_utc (the store's), DST edges included."""
    from collector.core.clock import parse_zone, to_utc
    from collector.core.incidents import _epoch_seconds

    zone = parse_zone(name)
    convert = _epoch_seconds(zone)
    start = datetime(2026, 1, 1)
    for hour in range(365 * 24):  # every hour of the year: both DST changes
        local = start + timedelta(hours=hour, minutes=30)
        assert convert(local) == to_utc(local, zone).timestamp(), local


def test_a_busy_hubs_background_is_no_incident_but_most_of_its_spokes_at_once_is() -> None:
    # 100 spokes talk to the hub; over a day each drops its tunnel a few times at random:
    # some minutes see three or four of them, which is background, not the hub.
    rng = random.Random(7)
    background = [
        ev(spoke(n % 40 + 1) + f"-{n // 40}", HUB, "dpd timeout", rng.uniform(-86400, -3600))
        for n in range(100)
        for _ in range(6)
    ]
    assert find_incidents(background) == ()
    # Three-quarters of them within 30 s: the hub (or its uplink) went away.
    outage = [ev(spoke(n % 40 + 1) + f"-{n // 40}", HUB, "dpd timeout", n * 0.4) for n in range(75)]
    (incident,) = find_incidents([*background, *outage])
    assert (incident.kind, incident.subject, len(incident.devices)) == (IncidentKind.HUB, HUB, 75)
    # Without the share rule the background alone makes incidents.
    assert find_incidents(background, thresholds=Thresholds(spread_share=0.0))
