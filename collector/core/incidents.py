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

Size: just over 500 lines: the three incident rules (burst, spread, hub) and the tunnel
pairing share one event model.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple, TypeVar

from collector.core.records import Category, Device, DeviceResult, reason_text

_D = TypeVar("_D", bound=Hashable)
_P = TypeVar("_P", bound=Hashable)

PEER_REQUEST = "peer_request"
_ORDER = attrgetter("at")
"""Events in time order (a stable sort: ties keep the order they came in)."""


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


"""The code of ``peer request``: the remote end asked for the deletion."""


class IncidentKind(StrEnum):
    DEVICE_BURST = "device_burst"
    """Many tunnels on one device within a short span: the device or its uplink."""
    PEER = "peer"
    """One peer address down on several devices at once: the peer's side."""
    HUB = "hub"
    """Many devices lose their tunnel toward one peer address: a hub."""


class Event(NamedTuple):
    """One disruptive deletion, placed on the fleet's timeline.

    A named tuple (cheap to build: a history report over a week may make hundreds of
    thousands; identity matters: two equal rows are two deletions, told apart by ``id``).
    """

    device: str
    peer: str
    reason_code: str
    reason: str
    """As the device printed it."""
    category: Category
    at: float
    """UTC, as epoch seconds (cheap to compare; incidents and pairs carry datetimes)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When deletions make an incident. Defaults suit a fleet collected every 15 minutes."""

    gap: timedelta = timedelta(seconds=60)
    """Deletions further apart than this belong to different clusters."""
    burst_min: int = 5
    """A device burst: at least this many distinct peers down on one device."""
    spread_min: int = 3
    """A peer incident: one peer down on at least this many devices (3: a spoke dual-homed
    to two hubs going down is one tunnel pair, not yet an incident)."""
    hub_min: int = 5
    """A hub incident: at least this many devices lose their tunnel to one peer address."""
    spread_share: float = 0.5
    """A peer or hub incident also needs this share of the devices that lost a tunnel to
    that peer in the window: three of a busy hub's hundred spokes dropping within a minute
    is the usual background, most of them at once is the hub."""
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


def relevant_keys(
    pairs: Iterable[tuple[_D, _P]], thresholds: Thresholds, paired: Iterable[_P] = ()
) -> tuple[set[_P], set[_D]]:
    """The peers and devices whose deletions can be part of an incident or a pair.

    A peer seen by fewer than ``spread_min`` devices in all, a device with fewer than
    ``burst_min`` distinct peers in all, can make no incident of their own; only
    deletions toward ``paired`` addresses (inventory devices) are needed besides. Lets
    callers skip building events for the rest (most of a large window).

    Args:
        pairs: (device, peer) of every disruptive deletion (any hashable keys).
        thresholds: The incident thresholds.
        paired: Peer keys that are inventory devices' addresses.

    Returns:
        (peers to keep, devices to keep); keep a deletion if either holds it.
    """
    distinct = set(pairs)
    per_peer = Counter(peer for _, peer in distinct)
    per_device = Counter(device for device, _ in distinct)
    return keys_to_keep(per_peer, per_device, thresholds, paired)


def keys_to_keep(
    per_peer: Mapping[_P, int],
    per_device: Mapping[_D, int],
    thresholds: Thresholds,
    paired: Iterable[_P] = (),
) -> tuple[set[_P], set[_D]]:
    """:func:`relevant_keys` from the counts: devices per peer and distinct peers per
    device (a fold that counts them one device at a time keeps no pairs)."""
    peers = {peer for peer, n in per_peer.items() if n >= thresholds.spread_min}
    peers.update(paired)
    devices = {device for device, n in per_device.items() if n >= thresholds.burst_min}
    return peers, devices


_NAIVE_EPOCH = datetime(1970, 1, 1)


def _epoch_seconds(zone: tzinfo) -> Callable[[datetime], float]:
    """Device-local naive time -> UTC epoch seconds, as :func:`collector.core.clock.to_utc` reads
    it (first occurrence of a repeated hour), without building an aware datetime per row.

    Examples:
        >>> from collector.core.clock import parse_zone, to_utc
        >>> local = datetime(2026, 10, 25, 2, 30)
        >>> zone = parse_zone("Europe/Berlin")
        >>> _epoch_seconds(zone)(local) == to_utc(local, zone).timestamp()
        True
    """

    def convert(local: datetime) -> float:
        if local.tzinfo is not None:
            return local.timestamp()
        offset = zone.utcoffset(local)
        shift = 0.0 if offset is None else offset.total_seconds()
        return (local - _NAIVE_EPOCH).total_seconds() - shift

    return convert


def run_events(
    results: Sequence[DeviceResult],
    zones: Sequence[tzinfo],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    addresses: Mapping[str, str] | None = None,
) -> list[Event]:
    """The disruptive deletions of one run's results that can matter to incidents, in UTC.

    ``zones[i]`` is the zone of ``results[i]``'s offline times (``report.device_zone``:
    ``data.timezone``, else the offset ``display clock`` showed, else UTC), as the store
    converts them. Deletions :func:`relevant_keys` rules out are left out.
    """
    peers, devices = relevant_keys(
        (
            (result.device.name, record.peer)
            for result in results
            for record in result.records
            if not record.category.routine
        ),
        thresholds,
        addresses or (),
    )
    events: list[Event] = []
    for result, zone in zip(results, zones, strict=True):
        name = result.device.name
        keep_all = name in devices
        wanted = [
            r for r in result.records if not r.category.routine and (keep_all or r.peer in peers)
        ]
        epoch = _epoch_seconds(zone)
        events += [
            Event(name, r.peer, r.reason_code, r.reason, r.category, epoch(r.offline_time))
            for r in wanted
        ]
    return events


def _clusters(events: Sequence[Event], gap: float) -> list[list[Event]]:
    """Split time-ordered events where two neighbours are more than ``gap`` s apart."""
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
        start=_utc(min(e.at for e in events)),
        end=_utc(max(e.at for e in events)),
        devices=tuple(sorted({e.device for e in events})),
        peers=tuple(sorted({e.peer for e in events})),
        reasons=tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        deletions=len(events),
        subject=subject,
        subject_device=subject_device,
    )
    return replace(incident, summary=_summary(incident, events))


def sort_events(events: list[Event]) -> list[Event]:
    """Sort ``events`` in place in time order (once, for both :func:`find_incidents` and
    :func:`pair_tunnels` with ``ordered=True``) and return it."""
    events.sort(key=_ORDER)
    return events


def _merged(first: Sequence[Event], second: Sequence[Event]) -> list[Event]:
    """Both lists' events, each once, in time order."""
    unique = {id(e): e for e in (*first, *second)}
    return sorted(unique.values(), key=_ORDER)


def _overlaps(a: Sequence[Event], b: Sequence[Event], gap: float) -> bool:
    return a[0].at - gap <= b[-1].at and b[0].at - gap <= a[-1].at


def find_incidents(
    events: Iterable[Event],
    addresses: Mapping[str, str] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    ordered: bool = False,
) -> tuple[Incident, ...]:
    """The incidents among ``events`` (disruptive deletions), oldest first.

    Args:
        events: Deletions with UTC times, in any order.
        addresses: Address -> inventory device (:func:`address_book`), to name the device
            behind a peer address and to pair both ends of a tunnel.
        thresholds: When clusters count as incidents.
        ordered: ``events`` are already in time order (``sort_events``).

    Returns:
        Incidents sorted by start, then kind and subject; each with its both-ends pairs.
    """
    book = dict(addresses or {})
    in_order = list(events) if ordered else sorted(events, key=_ORDER)
    gap = thresholds.gap.total_seconds()
    by_device: defaultdict[str, list[Event]] = defaultdict(list)
    by_peer: defaultdict[str, list[Event]] = defaultdict(list)
    for event in in_order:
        by_device[event.device].append(event)
        by_peer[event.peer].append(event)

    found: list[tuple[Incident, list[Event]]] = []
    for peer, peer_events in by_peer.items():
        population = len({e.device for e in peer_events})
        needed = max(thresholds.spread_min, thresholds.spread_share * population)
        if population < needed:
            continue
        for cluster in _clusters(peer_events, gap):
            devices = {e.device for e in cluster}
            if len(devices) < needed:
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

    about: defaultdict[str, list[int]] = defaultdict(list)
    """Inventory device -> indexes in ``found`` of the incidents about its addresses."""
    for index, (incident, _) in enumerate(found):
        if incident.subject_device is not None:
            about[incident.subject_device].append(index)
    for device, device_events in by_device.items():
        for cluster in _clusters(device_events, gap):
            if len({e.peer for e in cluster}) < thresholds.burst_min:
                continue
            # The other end of a peer/hub incident about this device's own address?
            for index in about.get(device, ()):
                incident, members = found[index]
                if _overlaps(members, cluster, gap):
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
        pairs = pair_tunnels(members, book, thresholds.pair_window, ordered=True) if book else ()
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
    *,
    ordered: bool = False,
) -> tuple[TunnelPair, ...]:
    """Match both ends of tunnels whose two devices are in the inventory.

    A record on device A toward an address of device B pairs with B's nearest record
    toward an address of A within ``window``; each record is in at most one pair.

    Args:
        events: The deletions (``ordered``: already in time order).
        addresses: Address -> inventory device.
        window: How far apart the two records may be.

    Returns:
        The pairs, oldest first.
    """
    limit = window.total_seconds()
    in_order = list(events) if ordered else sorted(events, key=_ORDER)
    toward: defaultdict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in in_order:
        other = addresses.get(event.peer)
        if other is not None and other != event.device:
            toward[(event.device, other)].append(event)
    times = {key: [e.at for e in listed] for key, listed in toward.items()}
    used: set[int] = set()
    pairs: list[TunnelPair] = []
    for (device, other), listed in toward.items():
        if device > other or (other, device) not in toward:
            continue  # each direction pair once, from its smaller name
        them, their_times = toward[(other, device)], times[(other, device)]
        for event in listed:
            low = bisect_left(their_times, event.at - limit)
            high = bisect_right(their_times, event.at + limit)
            candidates = [e for e in them[low:high] if id(e) not in used]
            if not candidates:
                continue
            match = min(candidates, key=lambda e: abs(e.at - event.at))
            used.update((id(event), id(match)))
            first, second = sorted((event, match), key=_ORDER)
            initiator, explanation = _initiator(first, second)
            pairs.append(
                TunnelPair(
                    at=_utc(first.at),
                    device=first.device,
                    reason=first.reason_code,
                    other=second.device,
                    other_reason=second.reason_code,
                    initiator=initiator,
                    explanation=explanation,
                )
            )
    pairs.sort(key=lambda pair: (pair.at, pair.device, pair.other))
    return tuple(pairs)
