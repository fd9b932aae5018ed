"""Incidents: disruptive deletions that cluster in time, across devices, and both ends of a tunnel.

Pure functions over :class:`Event` values (one deletion, its time in UTC). Three shapes
are looked for, each over clusters of events no more than ``Thresholds.gap`` apart:

* ``device_burst``: many distinct peers down on one device (the device or its uplink);
* ``peer``: one peer address down on several devices (the peer's side);
* ``hub``: many devices lose their tunnel toward one peer address (a hub went away).

A ``device_burst`` on a device whose own address is the subject of a ``peer`` or ``hub``
incident at the same time is the same event seen from the other end: it is folded into
that incident. Where both ends of a tunnel are inventory devices (their addresses from
``hostname`` or ``data.addresses``/``data.address``), :func:`pair_tunnels` matches the
two sides' records and says which side initiated (``peer request`` on one side is the
other side's doing). Nothing here reads a clock, a file or the store.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from collector.clock import to_utc
from collector.records import Category, Device, DeviceResult, reason_text

PEER_REQUEST = "peer_request"
"""The code of ``peer request``: the remote end asked for the deletion."""


class IncidentKind(StrEnum):
    DEVICE_BURST = "device_burst"
    """Many tunnels on one device within a short span: the device or its uplink."""
    PEER = "peer"
    """One peer address down on several devices at once: the peer's side."""
    HUB = "hub"
    """Many devices lose their tunnel toward one peer address: a hub."""


@dataclass(frozen=True, slots=True)
class Event:
    """One disruptive deletion, placed on the fleet's timeline."""

    device: str
    peer: str
    reason_code: str
    reason: str
    """As the device printed it."""
    category: Category
    at: datetime
    """UTC, aware."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When deletions make an incident. Defaults suit a fleet collected every 15 minutes."""

    gap: timedelta = timedelta(seconds=60)
    """Deletions further apart than this belong to different clusters."""
    burst_min: int = 5
    """A device burst: at least this many distinct peers down on one device."""
    spread_min: int = 2
    """A peer incident: one peer down on at least this many devices."""
    hub_min: int = 5
    """A hub incident: at least this many devices lose their tunnel to one peer address."""
    pair_window: timedelta = timedelta(seconds=120)
    """Both ends of a tunnel: the two records at most this far apart (clocks differ)."""


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class TunnelPair:
    """Both ends of one tunnel, each an inventory device, and who started it."""

    at: datetime
    """The earlier of the two records (UTC)."""
    device: str
    reason: str
    """``device``'s reason code."""
    other: str
    """The device at the other end."""
    other_reason: str
    initiator: str | None
    """The device whose side caused the deletion; None when both sides saw it alone."""
    explanation: str


@dataclass(frozen=True, slots=True)
class Incident:
    kind: IncidentKind
    start: datetime
    end: datetime
    devices: tuple[str, ...]
    """Devices that logged deletions in the incident, sorted."""
    peers: tuple[str, ...]
    """Peer addresses of those deletions, sorted."""
    reasons: tuple[tuple[str, int], ...]
    """(reason code, deletions), most frequent first."""
    deletions: int
    subject: str
    """The device (burst) or peer address (peer, hub) the incident is about."""
    subject_device: str | None = None
    """The inventory device that owns the subject address, when one does."""
    pairs: tuple[TunnelPair, ...] = ()
    summary: str = field(default="", compare=False)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def device_addresses(device: Device) -> set[str]:
    """The device's own addresses: ``hostname`` when it is an IP literal, and ``data``'s
    ``addresses`` (a list, or text separated by commas/spaces) and ``address``.

    Examples:
        >>> from types import MappingProxyType
        >>> sorted(device_addresses(Device("hub", "192.0.2.1",
        ...     data=MappingProxyType({"addresses": "198.51.100.1, 2001:db8::1"}))))
        ['192.0.2.1', '198.51.100.1', '2001:db8::1']
    """
    candidates: list[str] = [device.hostname]
    for key in ("addresses", "address"):
        value = device.data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            candidates += value.replace(",", " ").split()
        elif isinstance(value, Iterable):
            candidates += [str(item) for item in value]
        else:
            candidates.append(str(value))
    found: set[str] = set()
    for candidate in candidates:
        try:
            found.add(str(ipaddress.ip_address(candidate.strip())))
        except ValueError:
            continue
    return found


def address_book(devices: Iterable[Device]) -> dict[str, str]:
    """Address -> device name over an inventory (an address claimed twice is dropped:
    the loopback of a lab, or a shared VIP, names no single device)."""
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for device in devices:
        for address in device_addresses(device):
            owners[address].add(device.name)
    return {address: next(iter(names)) for address, names in owners.items() if len(names) == 1}


def run_events(results: Sequence[DeviceResult], zones: Sequence[tzinfo]) -> list[Event]:
    """The disruptive deletions of one run's results, in UTC.

    ``zones[i]`` is the zone of ``results[i]``'s offline times (``report.device_zone``:
    ``data.timezone``, else the offset ``display clock`` showed, else UTC), as the store
    converts them.
    """
    events: list[Event] = []
    for result, zone in zip(results, zones, strict=True):
        name = result.device.name
        events += [
            Event(name, r.peer, r.reason_code, r.reason, r.category, to_utc(r.offline_time, zone))
            for r in result.records
            if not r.category.routine
        ]
    return events


def _clusters(events: Sequence[Event], gap: timedelta) -> list[list[Event]]:
    """Split time-ordered events where two neighbours are more than ``gap`` apart."""
    clusters: list[list[Event]] = []
    for event in events:
        if clusters and event.at - clusters[-1][-1].at <= gap:
            clusters[-1].append(event)
        else:
            clusters.append([event])
    return clusters


def _reason_text(code: str, events: Iterable[Event]) -> str:
    printed = Counter(e.reason for e in events if e.reason_code == code).most_common(1)
    return reason_text(code, printed[0][0] if printed else None)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(incident: Incident, events: Sequence[Event]) -> str:
    span = f"within {incident.seconds:.0f} s"
    reasons = ", ".join(
        f"{_reason_text(code, events)} {count}" for code, count in incident.reasons[:3]
    )
    if len(incident.reasons) > 3:
        reasons += f", +{len(incident.reasons) - 3} more"
    tunnels = len({(e.device, e.peer) for e in events})
    where = f"{tunnels} tunnels on {len(incident.devices)} devices"
    owner = f" ({incident.subject_device})" if incident.subject_device else ""
    if incident.kind is IncidentKind.DEVICE_BURST:
        text = f"{tunnels} tunnels on {incident.subject} dropped {span}: the device or its uplink"
    elif incident.kind is IncidentKind.HUB:
        target = (
            f"{incident.subject_device} ({incident.subject})"
            if incident.subject_device
            else incident.subject
        )
        text = f"{where} dropped {span}, all toward {target}: the hub or its uplink"
    else:
        text = (
            f"peer {incident.subject}{owner} dropped on {len(incident.devices)} devices "
            f"{span}: the peer's side"
        )
    return f"at {_stamp(incident.start)}, {text} ({reasons})"


def _incident(
    kind: IncidentKind,
    events: Sequence[Event],
    subject: str,
    subject_device: str | None,
) -> Incident:
    counts = Counter(e.reason_code for e in events)
    incident = Incident(
        kind=kind,
        start=min(e.at for e in events),
        end=max(e.at for e in events),
        devices=tuple(sorted({e.device for e in events})),
        peers=tuple(sorted({e.peer for e in events})),
        reasons=tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        deletions=len(events),
        subject=subject,
        subject_device=subject_device,
    )
    return replace(incident, summary=_summary(incident, events))


def _merged(first: Sequence[Event], second: Sequence[Event]) -> list[Event]:
    """Both lists' events, each once, in time order."""
    unique = {id(e): e for e in (*first, *second)}
    return sorted(unique.values(), key=lambda e: (e.at, e.device, e.peer))


def _overlaps(a: Sequence[Event], b: Sequence[Event], gap: timedelta) -> bool:
    return a[0].at - gap <= b[-1].at and b[0].at - gap <= a[-1].at


def find_incidents(
    events: Iterable[Event],
    addresses: Mapping[str, str] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> tuple[Incident, ...]:
    """The incidents among ``events`` (disruptive deletions), oldest first.

    Args:
        events: Deletions with UTC times, in any order.
        addresses: Address -> inventory device (:func:`address_book`), to name the device
            behind a peer address and to pair both ends of a tunnel.
        thresholds: When clusters count as incidents.

    Returns:
        Incidents sorted by start, then kind and subject; each with its both-ends pairs.
    """
    book = dict(addresses or {})
    ordered = sorted(events, key=lambda e: (e.at, e.device, e.peer))
    gap = thresholds.gap
    by_device: defaultdict[str, list[Event]] = defaultdict(list)
    by_peer: defaultdict[str, list[Event]] = defaultdict(list)
    for event in ordered:
        by_device[event.device].append(event)
        by_peer[event.peer].append(event)

    found: list[tuple[Incident, list[Event]]] = []
    for peer, peer_events in by_peer.items():
        for cluster in _clusters(peer_events, gap):
            devices = {e.device for e in cluster}
            if len(devices) < thresholds.spread_min:
                continue
            kind = IncidentKind.HUB if len(devices) >= thresholds.hub_min else IncidentKind.PEER
            owner = book.get(peer)
            if owner is not None:
                # The subject device's own records toward those devices: the other end.
                low, high = cluster[0].at - gap, cluster[-1].at + gap
                cluster = _merged(
                    cluster,
                    [
                        e
                        for e in by_device.get(owner, ())
                        if low <= e.at <= high and book.get(e.peer) in devices
                    ],
                )
            found.append((_incident(kind, cluster, peer, owner), cluster))

    for device, device_events in by_device.items():
        for cluster in _clusters(device_events, gap):
            if len({e.peer for e in cluster}) < thresholds.burst_min:
                continue
            # The other end of a peer/hub incident about this device's own address?
            for index, (incident, members) in enumerate(found):
                if incident.subject_device == device and _overlaps(members, cluster, gap):
                    merged = _merged(members, cluster)
                    found[index] = (
                        _incident(incident.kind, merged, incident.subject, device),
                        merged,
                    )
                    break
            else:
                found.append((_incident(IncidentKind.DEVICE_BURST, cluster, device, None), cluster))

    incidents = []
    for incident, members in found:
        pairs = pair_tunnels(members, book, thresholds.pair_window) if book else ()
        incidents.append(replace(incident, pairs=pairs))
    incidents.sort(key=lambda i: (i.start, i.kind.value, i.subject))
    return tuple(incidents)


def _initiator(first: Event, second: Event) -> tuple[str | None, str]:
    a, b = first.reason_code == PEER_REQUEST, second.reason_code == PEER_REQUEST
    one, two = _reason_text(first.reason_code, [first]), _reason_text(second.reason_code, [second])
    if a and not b:
        return second.device, f"{second.device} ({two}) asked {first.device} to delete"
    if b and not a:
        return first.device, f"{first.device} ({one}) asked {second.device} to delete"
    if a and b:
        return None, "each side says the other asked"
    return None, f"both sides saw it: {one} / {two} (the path between them)"


def pair_tunnels(
    events: Iterable[Event],
    addresses: Mapping[str, str],
    window: timedelta = DEFAULT_THRESHOLDS.pair_window,
) -> tuple[TunnelPair, ...]:
    """Match both ends of tunnels whose two devices are in the inventory.

    A record on device A toward an address of device B pairs with B's nearest record
    toward an address of A within ``window``; each record is in at most one pair.

    Returns:
        The pairs, oldest first.
    """
    toward: defaultdict[tuple[str, str], list[Event]] = defaultdict(list)
    ordered = sorted(events, key=lambda e: (e.at, e.device, e.peer))
    for event in ordered:
        other = addresses.get(event.peer)
        if other is not None and other != event.device:
            toward[(event.device, other)].append(event)
    used: set[int] = set()
    pairs: list[TunnelPair] = []
    for event in ordered:
        other = addresses.get(event.peer)
        if other is None or other == event.device or id(event) in used:
            continue
        candidates = [
            e
            for e in toward.get((other, event.device), ())
            if id(e) not in used and abs(e.at - event.at) <= window
        ]
        if not candidates:
            continue
        match = min(candidates, key=lambda e: abs(e.at - event.at))
        used.update((id(event), id(match)))
        first, second = sorted((event, match), key=lambda e: (e.at, e.device))
        initiator, explanation = _initiator(first, second)
        pairs.append(
            TunnelPair(
                at=first.at,
                device=first.device,
                reason=first.reason_code,
                other=second.device,
                other_reason=second.reason_code,
                initiator=initiator,
                explanation=explanation,
            )
        )
    return tuple(pairs)
