"""Scenarios: what a mock fleet looks like, loaded from YAML (data, not code).

A scenario has ``defaults`` (applied to every device), an explicit ``devices`` list and/or a
``template`` that is cloned ``--count`` times (names ``<prefix>-0001`` ...), mixing layouts and
sprinkling faults. Records are listed explicitly or generated deterministically from a seed.

Example::

    defaults: {username: admin, password_env: MOCK_PASSWORD, layout: router,
               records: {generate: {count: 200, seed: 1}}}
    devices:
      - {name: ar-01, layout: router}
      - {name: fw-01, layout: firewall, hrp: master, faults: [reject_screen_length]}
    template: {prefix: edge, mix: {router: 0.5, firewall: 0.5},
               faulty_fraction: 0.05, fault_pool: [slow, truncated_table]}

Device variants (issue 15; ``scenarios/variants.yaml`` has one device of each)::

    - {name: fw-1, layout: firewall, hrp: master, stamp: time-first}  # 11:01:45  2014/07/08
    - {name: ar-1, timezone: Australia/Sydney, inventory_zone: false,
       clock: {style: no-offset, zone_label: Sydney, dst: {name: Sydney}}}
    - {name: ne-1, layout: ne40e, slots: [1, 3], vpn_instances: [vpna],
       records: {generate: {count: 30, same_across_buffers: 2}}}
    - {name: fw-2, layout: firewall, spus: ["1/0", "1/1", "3/0"]}
    - {name: ar-2, records: {generate: {reasons: extra}}, trailing_row_like_noise: true}

``stamp``: ``none`` | ``iso-offset`` | ``iso-ms`` | ``time-first`` (see ``clocktext``);
``clock.style``: ``offset`` | ``no-offset`` | ``add-minus``; DST comes from the zone (an
IANA name with DST rules) and ``clock.dst`` names the block (``name``, ``start_year``,
``end_year``); ``records.generate.reasons``: a set name (``reference``, ``extra``,
``ne40e``, ``error``), a list (printed in turn) or a mapping reason -> weight;
``records`` listed explicitly may carry ``slot``, ``cpu``, ``spu: "1/0"`` and ``vpn``.

``scripted`` adds deletions at times relative to the device's clock at start, one per peer
(an outage, a reboot, a rekey schedule); the device's own addresses go to the inventory with
``inventory_data``::

    - {name: hub, inventory_data: {addresses: [192.0.2.1]}, scripted: [{minutes_ago: 40,
       every_s: 2, reason: dpd timeout, peers: [10.1.0.1, 10.1.0.2]}]}

This module is pure: it reads no environment and opens no socket except ``load_scenario``,
which reads the YAML file it is given.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from mock_devices.clocktext import CLOCK_STYLES, STAMP_STYLES, ClockStyle, StampStyle
from mock_devices.tables import DEVICE_LAYOUTS, Layout, Row

SCENARIO_DIR = Path(__file__).with_name("scenarios")
MAX_RECORDS = 200
"""VRP keeps the latest 200 deletions (command reference: "the latest 200 ... deletions")."""


class Fault(StrEnum):
    """Device misbehaviours a scenario can switch on, one device at a time."""

    WRONG_CREDENTIALS = "wrong_credentials"
    PORT_CLOSED = "port_closed"
    HANG_NO_BANNER = "hang_no_banner"
    SLOW = "slow"
    VERY_SLOW = "very_slow"
    DROP_MID_OUTPUT = "drop_mid_output"
    REJECT_SCREEN_LENGTH = "reject_screen_length"
    COMMAND_UNSUPPORTED = "command_unsupported"
    TRUNCATED_TABLE = "truncated_table"
    GARBAGE_OUTPUT = "garbage_output"
    PASSWORD_CHANGE_PROMPT = "password_change_prompt"
    SAVE_PROMPT = "save_prompt"
    # Hostile devices: answers no real device gives, for the collector's bounds.
    HUGE_TABLE = "huge_table"
    """A table of ``huge_rows`` rows whose ``Current info Num`` matches."""
    ENDLESS_OUTPUT = "endless_output"
    """After the table's first lines, an endless stream of escapes and binary bytes."""
    TERMINAL_NOISE = "terminal_noise"
    """The table with OSC titles, C1 CSI inside reasons and DCS strings (still complete)."""


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the device or key."""


# Documented reasons with weights that look like a real edge fleet: mostly liveness and rekeys,
# a long tail of rare ones, and two reasons newer firmware prints that the reference does not list.
REASON_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("dpd timeout", 30.0),
    ("peer request", 15.0),
    ("phase2 sa replace", 12.0),
    ("phase1 sa replace", 8.0),
    ("config modify or manual offline", 6.0),
    ("exchange timeout", 4.0),
    ("phase1 hard expiry", 4.0),
    ("phase2 hard expiry", 4.0),
    ("heartbeat timeout", 3.0),
    ("re-auth timeout", 2.0),
    ("receive invalid spi notify", 2.0),
    ("ikev1 phase1-phase2 sa dependent offline", 2.0),
    ("aaa cut user", 1.0),
    ("hard expiry triggered by port mismatch", 1.0),
    ("spi conflict", 1.0),
    ("dns resolution status change", 1.0),
    ("modecfg address soft expiry", 1.0),
    ("hardware-timeout", 0.5),
    ("kick old sa with same flow", 0.5),
)

EXTRA_REASONS: tuple[str, ...] = (
    "ip address syn failed",
    "cpu table updated",
    "flow overlap",
    "admin down",
    "peer address switch",
    "forward down",
    "sa with same user exists",
    "reset sa by ike user",
    "manual offline",
    "nhrp notify",
    "receive backup delete info",
    "eap delete old sa",
    "hash gene adjusted",
    "kick old sa with same flow",
    "hardware-timeout",
)
"""Reasons Huawei's IPsec troubleshooting tables list beyond the command reference's 17 (the
USG's ``hardware-timeout`` included); the firewall layout prints them hyphenated."""

NE40E_REASON_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("DPD timeout", 30.0),
    ("Phase2 SA replace", 12.0),
    ("Receive phase1 delete info", 10.0),
    ("Phase1 SA replace", 8.0),
    ("Receive phase2 delete info", 8.0),
    ("Config modify or manual offline", 5.0),
    ("Exchange timeout", 4.0),
    ("Phase1 hard expiry", 3.0),
    ("Phase2 hard expiry", 3.0),
    ("Heartbeat timeout", 2.0),
)
"""NE40E/NE8000 print capitalised sentences."""

ERROR_REASON_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("Exchange timeout", 5.0),
    ("Proposal mismatch", 3.0),
    ("Authentication failed", 2.0),
    ("Peer address mismatch", 1.0),
)
"""Negotiation failures for the NE40E's ``display ike error history``."""

REASON_SETS: dict[str, tuple[tuple[str, float], ...]] = {
    "reference": REASON_WEIGHTS,
    "extra": tuple((reason, 1.0) for reason in EXTRA_REASONS),
    "ne40e": NE40E_REASON_WEIGHTS,
    "error": ERROR_REASON_WEIGHTS,
}
"""Named reason lists for ``records.generate.reasons``."""
CYCLED_SETS = frozenset({"extra"})
"""Named sets printed in turn (every reason shows), not drawn by weight."""


@dataclass(frozen=True, slots=True)
class RecordSource:
    """Where a device's initial records come from."""

    rows: tuple[Row, ...] = ()
    """Explicit records, newest first (used when ``generate_count`` is 0)."""
    generate_count: int = 0
    seed: str = "1"
    peer_pool: int = 12
    """How many distinct peers the generator draws from (small, so some peers flap)."""
    reasons: tuple[tuple[str, float], ...] = REASON_WEIGHTS
    """Reasons to draw from, with weights."""
    cycle_reasons: bool = False
    """Print the reasons in turn (each one shows in ``len(reasons)`` records) instead."""
    same_across_buffers: int = 0
    """Copy the newest N records of the first buffer into every other buffer (slot/SPU)."""


@dataclass(frozen=True, slots=True)
class Scripted:
    """Deletions at a time relative to the device's clock when the fleet starts.

    One row per peer: ``peers[i]`` goes down ``minutes_ago`` minutes before start, plus
    ``offset_s + i * every_s`` seconds (an outage, a reboot, a rekey schedule).
    """

    minutes_ago: float
    reason: str
    peers: tuple[str, ...]
    offset_s: float = 0.0
    every_s: float = 0.0
    version: int = 2
    port: int = 500

    def rows(self, now: datetime) -> list[Row]:
        """The rows, given the device's local clock at start (naive)."""
        start = now.replace(microsecond=0) - timedelta(minutes=self.minutes_ago)
        return [
            Row(
                peer=peer,
                reason=self.reason,
                version=self.version,
                time=start + timedelta(seconds=round(self.offset_s + index * self.every_s)),
                port=self.port,
            )
            for index, peer in enumerate(self.peers)
        ]


@dataclass(frozen=True, slots=True)
class ClockSpec:
    """The device's wall clock: a zone, an optional fixed start and a skew."""

    timezone: str = "UTC"
    """IANA name (``Asia/Shanghai``) or a UTC offset (``UTC+08:00``, ``+05:30``)."""
    start: datetime | None = None
    """Device-local time at fleet start; ``None`` follows the host clock."""
    skew_s: float = 0.0
    """Seconds the device clock runs ahead (positive) or behind (negative)."""
    zone_label: str | None = None
    """The name ``display clock`` prints (VRP: ``clock timezone NAME add 08:00:00``)."""
    style: ClockStyle = "offset"
    """``display clock`` form: ``offset`` on the time line, ``no-offset``, ``add-minus``."""
    dst_name: str | None = None
    """Name in the ``Daylight saving time`` block (default: the zone label)."""
    dst_years: tuple[int, int] = (2000, 2099)
    """Start and end year in that block."""

    def tz(self) -> tzinfo:
        """The zone as a tzinfo."""
        return parse_timezone(self.timezone)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One mock device, fully resolved."""

    name: str
    layout: Layout = "router"
    username: str = "admin"
    password: str = field(default="", repr=False)
    authorized_keys: tuple[str, ...] = ()
    """OpenSSH public key lines accepted for public-key authentication."""
    hrp: str | None = None
    """``master`` or ``slave`` for a firewall in an HA pair (prompt ``HRP_M<name>``)."""
    faults: frozenset[Fault] = frozenset()
    latency_ms: int = 0
    login_delay_ms: int = 0
    """Milliseconds between the SSH login (authentication accepted, shell opened) and the
    banner and first prompt: a slow device CPU setting up the VTY, or AAA over a WAN."""
    enter_latency_ms: int = 0
    """Milliseconds before the prompt that answers an empty line (a busy device answering a
    key press late; ``latency_ms`` delays commands only)."""
    very_slow_s: float = 600.0
    records: RecordSource = RecordSource()
    churn_per_minute: float = 0.0
    clock: ClockSpec = ClockSpec()
    host_key_seed: str = "mock-huawei"
    site: str = "lab"
    page_lines: int = 24
    """Lines per page while paging is on (VRP's default screen-length is 24)."""
    stamp: StampStyle = "none"
    """HA timestamp line before every display command's output (HRP firewalls)."""
    slots: tuple[int, ...] = ()
    """NE40E slots, each with its own 200-record buffer (``ne40e`` layout; default ``(1,)``)."""
    spus: tuple[tuple[int, int], ...] = ()
    """Multi-SPU firewall: (slot, cpu) of each SPU, each with its own 200-record buffer."""
    vpn_instances: tuple[str, ...] = ()
    """VPN instances generated NE40E records use (besides ``-``, none)."""
    error_records: RecordSource = RecordSource(generate_count=0)
    """NE40E ``display ike error history`` records per slot."""
    leading_row_like_noise: bool = False
    """Print a line that looks like a table row before the table (outside it)."""
    trailing_row_like_noise: bool = False
    """Print lines that look like table rows after the closing rule (outside the table)."""
    inventory_zone: bool = True
    """Write ``data.timezone`` into the collector inventory (False: the zone must come from
    ``display clock``)."""
    inventory_data: dict[str, Any] = field(default_factory=dict)
    """Extra ``data`` keys for the collector inventory (``ike_spus``, ``ike_command``)."""

    @property
    def buffers(self) -> tuple[tuple[int | None, int | None], ...]:
        """The (slot, cpu) of every record buffer; ``((None, None),)`` for a one-buffer device."""
        if self.spus:
            return tuple((slot, cpu) for slot, cpu in self.spus)
        if self.layout == "ne40e":
            return tuple((slot, None) for slot in self.slots or (1,))
        return ((None, None),)

    scripted: tuple[Scripted, ...] = ()
    """Deletions at times relative to start, merged into the first buffer's records."""
    huge_rows: int = 60_000
    """Rows of the ``huge_table`` fault's table (its records cycled)."""

    @property
    def model(self) -> str:
        """The hardware model ``display version`` names."""
        if self.layout == "ne40e":
            return "NE40E-X8A"
        if self.layout == "firewall":
            return "USG9560" if self.spus else "USG6555E"
        return "AR6120"

    @property
    def platform(self) -> str:
        """netmiko device type: AR routers run VRP5; USG6000E firewalls and NE40E run VRP8."""
        return "huawei" if self.layout == "router" else "huawei_vrpv8"

    @property
    def group(self) -> str:
        """Inventory group for the layout."""
        return "firewalls" if self.layout == "firewall" else "routers"

    @property
    def prompt_name(self) -> str:
        """The prompt, with the HRP prefix a firewall in an HA pair shows."""
        prefix = {"master": "HRP_M", "slave": "HRP_S"}.get(self.hrp or "", "")
        return f"{prefix}<{self.name}>"

    def has(self, fault: Fault) -> bool:
        """Whether this device shows ``fault``."""
        return fault in self.faults


@dataclass(frozen=True, slots=True)
class Scenario:
    """A list of devices plus where it came from (for messages)."""

    devices: tuple[DeviceSpec, ...]
    source: str = "<dict>"
    password_env: str = "MOCK_PASSWORD"


_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_timezone(text: str) -> tzinfo:
    """An IANA zone name or a UTC offset as a tzinfo.

    Examples:
        >>> parse_timezone("UTC+08:00").utcoffset(None)
        datetime.timedelta(seconds=28800)
        >>> parse_timezone("Europe/Paris").key
        'Europe/Paris'
    """
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    match = _OFFSET.match(text.strip())
    if match:
        sign = -1 if match.group(1) == "-" else 1
        delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
        return timezone(sign * delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScenarioError(f"unknown timezone {text!r}: use an IANA name or UTC+HH:MM") from exc


class RecordGenerator:
    """Deterministic, realistic deletions for one device.

    The same seed gives the same peers, reasons and gaps; a device keeps its generator so
    deletions added while it runs continue the same stream.
    """

    def __init__(
        self,
        seed: str,
        peer_pool: int = 12,
        reasons: Sequence[tuple[str, float]] = REASON_WEIGHTS,
        cycle_reasons: bool = False,
        vpn_instances: Sequence[str] = (),
    ) -> None:
        self._rng = random.Random(f"records:{seed}")
        self._cycle = itertools.cycle([reason for reason, _ in reasons]) if cycle_reasons else None
        self._vpns = tuple(vpn_instances)
        self._vpn_rng = random.Random(f"vpn:{seed}")  # its own stream: peers and gaps unchanged
        pool = max(1, peer_pool)
        peers: list[str] = []
        while len(peers) < pool:
            candidate = self._random_peer()
            if candidate not in peers:
                peers.append(candidate)
        self.peers = tuple(peers)
        # Zipf-like weights: the first few peers flap far more than the rest. Cumulative
        # weights, computed once, and a bisect: random.choices redoes the sums on every call.
        self._peer_cum = tuple(itertools.accumulate(1.0 / (rank + 1) for rank in range(pool)))
        self._reasons = tuple(reason for reason, _ in reasons)
        self._reason_cum = tuple(itertools.accumulate(weight for _, weight in reasons))

    def _random_peer(self) -> str:
        rng = self._rng
        network = rng.choice(("10.{}.{}.{}", "172.16.{}.{}", "203.0.113.{}", "198.51.100.{}"))
        octets = [rng.randint(1, 254) for _ in range(network.count("{}"))]
        return network.format(*octets)

    def row(self, when: datetime) -> Row:
        """One deletion at ``when`` (naive; the device generates in UTC and converts)."""
        rng = self._rng
        peer = self.peers[bisect.bisect(self._peer_cum, rng.random() * self._peer_cum[-1])]
        reason = self._reasons[bisect.bisect(self._reason_cum, rng.random() * self._reason_cum[-1])]
        if self._cycle is not None:
            reason = next(self._cycle)
        version = 1 if rng.random() < 0.2 else 2
        port = 4500 if rng.random() < 0.3 else 500
        vpn = None
        if self._vpns and self._vpn_rng.random() >= 0.4:
            vpn = self._vpn_rng.choice(self._vpns)
        return Row(peer=peer, reason=reason, version=version, time=when, port=port, vpn=vpn)

    def history(self, count: int, now: datetime) -> list[Row]:
        """``count`` deletions going back from ``now``, newest first.

        Gaps are exponential (mean 15 minutes); about one in twelve deletions shares its second
        with the previous one, as happens when a peer's IKE SA and IPsec SAs go down together.
        """
        when = now.replace(microsecond=0) - timedelta(seconds=self._rng.randint(0, 120))
        rows: list[Row] = []
        for _ in range(count):
            rows.append(self.row(when))
            if self._rng.random() >= 0.08:
                when -= timedelta(seconds=max(1, int(self._rng.expovariate(1 / 900))))
        return rows

    def burst(self, count: int, now: datetime) -> list[Row]:
        """``count`` new deletions at ``now`` and the seconds just before it, newest first."""
        base = now.replace(microsecond=0)
        offsets = sorted(self._rng.randint(0, max(0, count - 1)) for _ in range(count))
        return [self.row(base - timedelta(seconds=offset)) for offset in offsets]


def _as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ScenarioError(f"{where}: time {text!r} is not YYYY-MM-DD HH:MM:SS")


def _slot_cpu(entry: Mapping[str, Any], spot: str) -> tuple[int | None, int | None]:
    if "spu" in entry:
        return _spu(entry["spu"], spot)
    slot = entry.get("slot")
    cpu = entry.get("cpu")
    return (None if slot is None else int(slot), None if cpu is None else int(cpu))


def _row(entry: Mapping[str, Any], spot: str) -> Row:
    try:
        slot, cpu = _slot_cpu(entry, spot)
        vpn = entry.get("vpn")
        return Row(
            peer=str(entry["peer"]),
            reason=str(entry["reason"]),
            version=int(str(entry.get("version", 2)).lstrip("vV")),
            time=_parse_time(entry["time"], spot),
            port=int(entry.get("port", 500)),
            slot=slot,
            cpu=cpu,
            vpn=None if vpn in (None, "-") else str(vpn),
        )
    except KeyError as exc:
        raise ScenarioError(f"{spot}: missing key {exc.args[0]!r}") from exc
    except ValueError as exc:
        raise ScenarioError(f"{spot}: {exc}") from None


def _reasons(value: Any, where: str) -> tuple[tuple[tuple[str, float], ...], bool]:
    """``reasons``: a named set (``reference``, ``extra``, ``ne40e``, ``error``), a list
    (printed in turn) or a mapping reason -> weight."""
    if isinstance(value, str):
        if value not in REASON_SETS:
            known = ", ".join(REASON_SETS)
            raise ScenarioError(f"{where}: unknown reason set {value!r} (known: {known})")
        return REASON_SETS[value], value in CYCLED_SETS
    if isinstance(value, Mapping):
        pairs = tuple((str(reason), float(weight)) for reason, weight in value.items())
        cycle = False
    elif isinstance(value, Sequence):
        pairs = tuple((str(reason), 1.0) for reason in value)
        cycle = True
    else:
        raise ScenarioError(f"{where}: reasons must be a set name, a list or a mapping")
    if not pairs or any(weight <= 0 for _, weight in pairs):
        raise ScenarioError(f"{where}: reasons must be non-empty with positive weights")
    return pairs, cycle


def _records(
    value: Any, where: str, name: str, default_reasons: str = "reference", key: str = "records"
) -> RecordSource:
    if isinstance(value, Sequence) and not isinstance(value, str):
        rows = [
            _row(_as_mapping(item, spot), spot)
            for spot, item in (
                (f"{where}.{key}[{index}]", item) for index, item in enumerate(value)
            )
        ]
        rows.sort(key=lambda row: row.time, reverse=True)
        return RecordSource(rows=tuple(rows))
    spec = _as_mapping(value, f"{where}.{key}")
    generate = _as_mapping(spec.get("generate", {"count": MAX_RECORDS}), f"{where}.{key}")
    count = int(generate.get("count", MAX_RECORDS))
    if not 0 <= count <= MAX_RECORDS:
        raise ScenarioError(f"{where}.{key}.generate.count: {count} is not in 0..200")
    reasons, cycle = _reasons(
        generate.get("reasons", default_reasons), f"{where}.{key}.generate.reasons"
    )
    return RecordSource(
        generate_count=count,
        seed=f"{generate.get('seed', 1)}:{name}",
        peer_pool=int(generate.get("peer_pool", 12)),
        reasons=reasons,
        cycle_reasons=cycle,
        same_across_buffers=int(generate.get("same_across_buffers", 0)),
    )


_SPU = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")
_VPN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,31}")


def _spu(value: Any, where: str) -> tuple[int, int]:
    match = _SPU.match(str(value))
    if match is None:
        raise ScenarioError(f'{where}: SPU {value!r} is not SLOT/CPU (e.g. "1/0")')
    return int(match.group(1)), int(match.group(2))


def _buffers(
    merged: Mapping[str, Any], layout: str, where: str
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    slots_value = merged.get("slots") or ()
    spus_value = merged.get("spus") or ()
    if slots_value and layout != "ne40e":
        raise ScenarioError(f"{where}: slots are for layout ne40e (firewall SPUs: spus)")
    if spus_value and layout != "firewall":
        raise ScenarioError(f"{where}: spus are for layout firewall")
    try:
        slots = tuple(int(slot) for slot in slots_value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: slots must be a list of slot numbers") from None
    spus = tuple(_spu(item, f"{where}.spus") for item in spus_value)
    for values, what in ((slots, "slots"), (spus, "spus")):
        if len(set(values)) != len(values):
            raise ScenarioError(f"{where}: {what} repeat an entry")
    if any(not 0 <= slot <= 32 for slot in (*slots, *(slot for slot, _ in spus))):
        raise ScenarioError(f"{where}: slot numbers are 0..32")
    if any(not 0 <= cpu <= 31 for _, cpu in spus):
        raise ScenarioError(f"{where}: cpu numbers are 0..31")
    return slots, spus


def _choice(value: Any, allowed: Sequence[str], where: str, key: str) -> Any:
    text = str(value)
    if text not in allowed:
        raise ScenarioError(f"{where}: {key} {text!r} is not one of {', '.join(allowed)}")
    return text


def _scripted(value: Any, where: str) -> tuple[Scripted, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ScenarioError(f"{where}.scripted: expected a list")
    entries = []
    for index, item in enumerate(value):
        spot = f"{where}.scripted[{index}]"
        entry = _as_mapping(item, spot)
        peers = entry.get("peers", [entry["peer"]] if "peer" in entry else [])
        if isinstance(peers, str) or not peers:
            raise ScenarioError(f"{spot}: give 'peer' or a non-empty list 'peers'")
        try:
            entries.append(
                Scripted(
                    minutes_ago=float(entry["minutes_ago"]),
                    reason=str(entry["reason"]),
                    peers=tuple(str(peer) for peer in peers),
                    offset_s=float(entry.get("offset_s", 0.0)),
                    every_s=float(entry.get("every_s", 0.0)),
                    version=int(str(entry.get("version", 2)).lstrip("vV")),
                    port=int(entry.get("port", 500)),
                )
            )
        except KeyError as exc:
            raise ScenarioError(f"{spot}: missing key {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ScenarioError(f"{spot}: {exc}") from None
    return tuple(entries)


def _milliseconds(value: Any, where: str, key: str) -> int:
    """A non-negative whole number of milliseconds (``login_delay_ms``, ``enter_latency_ms``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioError(f"{where}: {key} {value!r} is not a whole number of ms (0 or more)")
    return value


def _faults(value: Any, where: str) -> frozenset[Fault]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    faults = set()
    for item in value:
        try:
            faults.add(Fault(str(item)))
        except ValueError:
            known = ", ".join(fault.value for fault in Fault)
            raise ScenarioError(f"{where}: unknown fault {item!r} (known: {known})") from None
    return frozenset(faults)


_DEVICE_KEYS = {
    "name",
    "layout",
    "username",
    "password",
    "password_env",
    "authorized_keys",
    "authorized_keys_file",
    "hrp",
    "faults",
    "latency_ms",
    "login_delay_ms",
    "enter_latency_ms",
    "very_slow_s",
    "records",
    "churn",
    "timezone",
    "clock",
    "host_key_seed",
    "site",
    "page_lines",
    "stamp",
    "slots",
    "spus",
    "vpn_instances",
    "error_records",
    "leading_row_like_noise",
    "trailing_row_like_noise",
    "inventory_zone",
    "inventory_data",
    "scripted",
    "huge_rows",
}
_CLOCK_KEYS = {"timezone", "start", "skew_s", "zone_label", "style", "dst"}


def build_device(
    entry: Mapping[str, Any], defaults: Mapping[str, Any], password: str, where: str
) -> DeviceSpec:
    """One device from its scenario entry merged over the defaults.

    Args:
        entry: The device's own keys.
        defaults: The scenario's ``defaults``.
        password: The password to use unless the entry or defaults give a literal one.
        where: Position for error messages (``demo.yaml: devices[3]``).
    """
    merged = {**defaults, **entry}
    unknown = set(merged) - _DEVICE_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = str(merged.get("name") or "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
        raise ScenarioError(f"{where}: device name {name!r} must be 1-63 letters/digits/._-")
    layout = str(merged.get("layout", "router"))
    if layout not in DEVICE_LAYOUTS:
        known = ", ".join(DEVICE_LAYOUTS)
        raise ScenarioError(f"{where} ({name}): layout {layout!r} is not one of {known}")
    hrp = merged.get("hrp")
    if hrp is not None and hrp not in ("master", "slave"):
        raise ScenarioError(f"{where} ({name}): hrp must be master or slave")
    spot = f"{where} ({name})"
    clock_map = _as_mapping(merged.get("clock"), f"{spot}.clock")
    unknown_clock = set(clock_map) - _CLOCK_KEYS
    if unknown_clock:
        raise ScenarioError(f"{spot}.clock: unknown key(s) {', '.join(sorted(unknown_clock))}")
    dst = _as_mapping(clock_map.get("dst"), f"{spot}.clock.dst")
    clock = ClockSpec(
        timezone=str(clock_map.get("timezone", merged.get("timezone", "UTC"))),
        start=_parse_time(clock_map["start"], f"{spot}.clock") if "start" in clock_map else None,
        skew_s=float(clock_map.get("skew_s", 0.0)),
        zone_label=clock_map.get("zone_label"),
        style=_choice(clock_map.get("style", "offset"), CLOCK_STYLES, spot, "clock.style"),
        dst_name=None if dst.get("name") is None else str(dst["name"]),
        dst_years=(int(dst.get("start_year", 2000)), int(dst.get("end_year", 2099))),
    )
    slots, spus = _buffers(merged, layout, spot)
    vpns = tuple(str(vpn) for vpn in merged.get("vpn_instances") or ())
    bad_vpn = [vpn for vpn in vpns if not _VPN_NAME.fullmatch(vpn)]
    if bad_vpn:
        raise ScenarioError(f"{spot}: VPN instance name {bad_vpn[0]!r} is not valid")
    reasons = "ne40e" if layout == "ne40e" else "reference"
    clock.tz()  # validate now, so a typo fails at load time with the device's name
    churn = _as_mapping(merged.get("churn"), f"{spot}.churn")
    keys = merged.get("authorized_keys") or ()
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if merged.get("authorized_keys_file"):
        key_file = Path(str(merged["authorized_keys_file"])).expanduser()
        try:
            text = key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{spot}: cannot read {key_file} ({exc.strerror})") from None
        keys += [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return DeviceSpec(
        name=name,
        layout=layout,  # checked against LAYOUTS above
        username=str(merged.get("username", "admin")),
        password=str(merged["password"]) if "password" in merged else password,
        authorized_keys=tuple(str(key).strip() for key in keys),
        hrp=hrp,
        faults=_faults(merged.get("faults"), spot),
        latency_ms=int(merged.get("latency_ms", 0)),
        login_delay_ms=_milliseconds(merged.get("login_delay_ms", 0), spot, "login_delay_ms"),
        enter_latency_ms=_milliseconds(merged.get("enter_latency_ms", 0), spot, "enter_latency_ms"),
        very_slow_s=float(merged.get("very_slow_s", 600.0)),
        records=_records(merged.get("records"), spot, name, reasons),
        churn_per_minute=float(churn.get("per_minute", 0.0)),
        clock=clock,
        host_key_seed=str(merged.get("host_key_seed", "mock-huawei")),
        site=str(merged.get("site", "lab")),
        page_lines=max(2, int(merged.get("page_lines", 24))),
        stamp=_choice(merged.get("stamp", "none"), STAMP_STYLES, spot, "stamp"),
        slots=slots,
        spus=spus,
        vpn_instances=vpns,
        error_records=_records(
            merged.get("error_records", {"generate": {"count": 0}}),
            spot,
            f"{name}:errors",
            "error",
            "error_records",
        ),
        leading_row_like_noise=bool(merged.get("leading_row_like_noise", False)),
        trailing_row_like_noise=bool(merged.get("trailing_row_like_noise", False)),
        inventory_zone=bool(merged.get("inventory_zone", True)),
        inventory_data=dict(_as_mapping(merged.get("inventory_data"), f"{spot}.inventory_data")),
        scripted=_scripted(merged.get("scripted"), spot),
        huge_rows=max(1, int(merged.get("huge_rows", 60_000))),
    )


def _clone(
    template: Mapping[str, Any],
    defaults: Mapping[str, Any],
    count: int,
    password: str,
    source: str,
) -> list[DeviceSpec]:
    """``count`` devices cloned from the template, layouts mixed and faults sprinkled."""
    rng = random.Random(f"fleet:{template.get('seed', 1)}")
    prefix = str(template.get("prefix", "dev"))
    mix = _as_mapping(template.get("mix", {"router": 0.5, "firewall": 0.5}), f"{source}: mix")
    layouts = list(mix)
    weights = [float(mix[layout]) for layout in layouts]
    sites = list(template.get("sites") or ["lab"])
    fault_pool = [str(fault) for fault in template.get("fault_pool") or []]
    faulty_count = round(count * float(template.get("faulty_fraction", 0.0))) if fault_pool else 0
    faulty = sorted(rng.sample(range(count), min(count, faulty_count)))
    fault_of = {index: fault_pool[n % len(fault_pool)] for n, index in enumerate(faulty)}
    hrp_fraction = float(template.get("hrp_fraction", 0.0))
    base = {
        key: value
        for key, value in template.items()
        if key
        not in {"prefix", "mix", "sites", "fault_pool", "faulty_fraction", "seed", "hrp_fraction"}
    }
    width = max(4, len(str(count)))
    devices = []
    for index in range(count):
        layout = rng.choices(layouts, weights)[0]
        entry: dict[str, Any] = {
            **base,
            "name": f"{prefix}-{index + 1:0{width}d}",
            "layout": layout,
            "site": sites[index % len(sites)],
        }
        if layout == "firewall" and rng.random() < hrp_fraction:
            entry["hrp"] = "master"
        if index in fault_of:
            entry["faults"] = [fault_of[index]]
        devices.append(build_device(entry, defaults, password, f"{source}: template #{index}"))
    return devices


def scenario_from_dict(
    data: Mapping[str, Any], password: str, count: int | None = None, source: str = "<dict>"
) -> Scenario:
    """Resolve a scenario mapping into devices.

    Args:
        data: The parsed YAML (``defaults``, ``devices``, ``template``).
        password: Password for every device that has no literal ``password`` key.
        count: Clone the template this many times instead of using the ``devices`` list.
            Without a ``template`` section, the ``devices`` list is cycled with numbered names.
        source: File name for error messages.
    """
    data = _as_mapping(data, source)
    defaults = _as_mapping(data.get("defaults"), f"{source}: defaults")
    password_env = str(defaults.get("password_env", "MOCK_PASSWORD"))
    defaults = {key: value for key, value in defaults.items() if key != "password_env"}
    entries = data.get("devices") or []
    if not isinstance(entries, list):
        raise ScenarioError(f"{source}: devices must be a list")
    devices: list[DeviceSpec]
    if count is not None:
        if count < 1:
            raise ScenarioError(f"--count must be at least 1, got {count}")
        template = data.get("template")
        if template is not None:
            tmpl = _as_mapping(template, f"{source}: template")
            devices = _clone(tmpl, defaults, count, password, source)
        elif entries:
            devices = []
            for index in range(count):
                entry = dict(_as_mapping(entries[index % len(entries)], source))
                entry["name"] = f"{entry.get('name', 'dev')}-{index + 1:04d}"
                devices.append(build_device(entry, defaults, password, f"{source}: #{index}"))
        else:
            raise ScenarioError(f"{source}: --count needs a template or a devices list")
    else:
        devices = [
            build_device(_as_mapping(entry, source), defaults, password, f"{source}: devices[{i}]")
            for i, entry in enumerate(entries)
        ]
    if not devices:
        raise ScenarioError(f"{source}: no devices (add a devices list or use --count)")
    names = [device.name for device in devices]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ScenarioError(f"{source}: duplicate device names {', '.join(duplicates)}")
    return Scenario(devices=tuple(devices), source=source, password_env=password_env)


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file: the name of a shipped scenario (``demo``, ``faults``...), else a path.

    A bare name (no directory, no ``.yaml``) of a shipped scenario is the shipped one even if
    something of that name is in the working directory (``./fleet`` names a local file).
    """
    path = Path(name_or_path)
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    text = str(name_or_path)
    bare = "/" not in text and not text.endswith((".yaml", ".yml"))
    if bare and shipped.is_file():
        return shipped
    if path.is_file():
        return path
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    raise ScenarioError(f"scenario {str(name_or_path)!r} not found (shipped: {known})")


def read_scenario_file(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Parse a scenario file (or shipped name) into a mapping and its display name."""
    path = resolve_scenario_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{line}: not valid YAML ({exc.__class__.__name__})") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from None
    return dict(_as_mapping(data, str(path))), str(path)


def load_scenario(
    scenario: str | Path | Mapping[str, Any], password: str, count: int | None = None
) -> Scenario:
    """A scenario from a file, a shipped name or a mapping."""
    if isinstance(scenario, Mapping):
        return scenario_from_dict(scenario, password, count)
    data, source = read_scenario_file(scenario)
    return scenario_from_dict(data, password, count, source)


def with_overrides(device: DeviceSpec, **changes: Any) -> DeviceSpec:
    """A copy of ``device`` with fields replaced (e.g. ``host_key_seed`` in a test)."""
    return replace(device, **changes)
