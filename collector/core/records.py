"""The plain values every part of the collector passes around.

Offline records as the device prints them, the reason taxonomy, devices from the
inventory, and the outcome of collecting one device. Standard library only: the
parser, the store, the reports and the transport all import this module, and it
imports none of them (only :mod:`collector.core.clock`, also stdlib-only, for ``DeviceClock``).

Size: just over 500 lines because the reason taxonomy (every documented reason text with its
code and category) is data that belongs with the record types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from collector.core.clock import DeviceClock


class Category(StrEnum):
    """The few groups an operator reasons in when a tunnel goes down."""

    LIVENESS = "liveness"
    """The peer stopped answering: DPD, heartbeat, exchange timeouts."""
    EXPIRY = "expiry"
    """A lifetime or lease ran out without a successful renewal."""
    ADMINISTRATIVE = "administrative"
    """Somebody or something decided: the peer, a config change, AAA, DNS."""
    REKEY = "rekey"
    """Normal replacement of an SA, or an SA removed along with its parent."""
    PROTOCOL = "protocol"
    """Something in the IKE/IPsec exchange was wrong: SPI, NAT port, overlapping flows."""
    HARDWARE = "hardware"
    """A board, CPU or forwarding table of the device itself: hardware timeouts, CPU tables."""
    HA = "ha"
    """HA and board housekeeping: the standby mirroring the active's deletions, SAs moved
    between processing units. Not an outage of the tunnel."""
    UNKNOWN = "unknown"
    """A reason the taxonomy does not know (kept verbatim on the record)."""

    @property
    def routine(self) -> bool:
        """Whether deletions of this category are routine (see :data:`ROUTINE_CATEGORIES`).

        Examples:
            >>> Category.REKEY.routine, Category.LIVENESS.routine, Category.UNKNOWN.routine
            (True, False, False)
        """
        return self in ROUTINE_CATEGORIES

    @property
    def impact(self) -> str:
        """``routine`` or ``disruptive``, as reports and exports print it."""
        return "routine" if self.routine else "disruptive"


ROUTINE_CATEGORIES: frozenset[Category] = frozenset({Category.REKEY, Category.HA})
"""The one place that decides which deletions are routine rather than disruptive.

Routine: the normal end of an SA's lifetime (``phase1/phase2 sa replace``, IKEv1's
dependent SA going with its parent) and HA housekeeping. Every other category, unknown
included (a reason nobody has classified deserves a look), is disruptive: a tunnel went
down. Flapping peers, incidents, ``--fail-on new``, the ``new_disruptive_deletions``
metric and the headline totals count disruptive deletions unless ``--include-routine``.
"""


@dataclass(frozen=True, slots=True)
class Reason:
    """One documented offline reason."""

    text: str
    """The reason as the command reference spells it."""
    code: str
    """Stable snake_case code used in reports, the store and metrics."""
    category: Category
    description: str


UNKNOWN_REASON_CODE = "unknown"

# The 17 reasons of the command reference (display ike offline-info, VRP),
# in the order the reference lists them.
REASONS: tuple[Reason, ...] = (
    Reason("dpd timeout", "dpd_timeout", Category.LIVENESS, "Dead peer detection timed out."),
    Reason(
        "peer request",
        "peer_request",
        Category.ADMINISTRATIVE,
        "The remote end asked the local end to tear the tunnel down.",
    ),
    Reason(
        "config modify or manual offline",
        "config_modify_or_manual_offline",
        Category.ADMINISTRATIVE,
        "Configuration was modified or the SA was deleted by hand.",
    ),
    Reason(
        "phase1 hard expiry",
        "phase1_hard_expiry",
        Category.EXPIRY,
        "The IKE SA hard lifetime expired without a successful renegotiation.",
    ),
    Reason(
        "phase2 hard expiry",
        "phase2_hard_expiry",
        Category.EXPIRY,
        "The IPsec SA hard lifetime expired.",
    ),
    Reason(
        "heartbeat timeout",
        "heartbeat_timeout",
        Category.LIVENESS,
        "Heartbeat detection timed out.",
    ),
    Reason(
        "modecfg address soft expiry",
        "modecfg_address_soft_expiry",
        Category.EXPIRY,
        "The address lease the remote end got from the server expired.",
    ),
    Reason(
        "re-auth timeout",
        "reauth_timeout",
        Category.LIVENESS,
        "Re-authentication of the SA timed out.",
    ),
    Reason(
        "aaa cut user",
        "aaa_cut_user",
        Category.ADMINISTRATIVE,
        "The AAA module disconnected the user.",
    ),
    Reason(
        "hard expiry triggered by port mismatch",
        "port_mismatch_hard_expiry",
        Category.PROTOCOL,
        "Hard timeout because the NAT port numbers did not match.",
    ),
    Reason("spi conflict", "spi_conflict", Category.PROTOCOL, "An SPI conflict occurred."),
    Reason(
        "phase1 sa replace",
        "phase1_sa_replace",
        Category.REKEY,
        "A new IKE SA replaced the old one.",
    ),
    Reason(
        "phase2 sa replace",
        "phase2_sa_replace",
        Category.REKEY,
        "A new IPsec SA replaced the old one.",
    ),
    Reason(
        "receive invalid spi notify",
        "invalid_spi_notify",
        Category.PROTOCOL,
        "The device received an INVALID_SPI notification.",
    ),
    Reason(
        "dns resolution status change",
        "dns_resolution_change",
        Category.ADMINISTRATIVE,
        "The DNS resolution of the peer's name changed.",
    ),
    Reason(
        "ikev1 phase1-phase2 sa dependent offline",
        "ikev1_dependent_sa_offline",
        Category.REKEY,
        "The IPsec SA was deleted together with its IKEv1 SA.",
    ),
    Reason(
        "exchange timeout",
        "exchange_timeout",
        Category.LIVENESS,
        "A packet exchange timed out.",
    ),
)

# Reasons beyond the command reference's 17: Huawei's IPsec troubleshooting tables and
# alarm references (IPSEC/4/IPSECTUNNELSTOP "Possible Causes"), the USG command
# reference (hardware-timeout) and the NE40E/NE8000 offline history (capitalised
# sentences). docs/DEVICES.md lists where each was found.
EXTRA_REASONS: tuple[Reason, ...] = (
    Reason(
        "ip address syn failed",
        "ip_address_sync_failed",
        Category.PROTOCOL,
        "The address assigned to the remote end could not be synchronised.",
    ),
    Reason(
        "cpu table updated",
        "cpu_table_updated",
        Category.HARDWARE,
        "The CPU (SPU) table of the device changed, e.g. a board went in or out.",
    ),
    Reason(
        "flow overlap",
        "flow_overlap",
        Category.PROTOCOL,
        "The SA's protected flow overlaps another SA's.",
    ),
    Reason("admin down", "admin_down", Category.ADMINISTRATIVE, "The tunnel was shut down."),
    Reason(
        "peer address switch",
        "peer_address_switch",
        Category.ADMINISTRATIVE,
        "The peer's address changed (link switch, DNS, NAT).",
    ),
    Reason(
        "forward down",
        "forward_down",
        Category.LIVENESS,
        "The forwarding path (outbound interface or route) went down.",
    ),
    Reason(
        "sa with same user exists",
        "same_user_sa_exists",
        Category.REKEY,
        "The same user came in again: the old SA was replaced by the new one.",
    ),
    Reason(
        "reset sa by ike user",
        "reset_sa_by_ike_user",
        Category.ADMINISTRATIVE,
        "An operator reset the SA (reset ike sa).",
    ),
    Reason("manual offline", "manual_offline", Category.ADMINISTRATIVE, "Deleted by hand."),
    Reason(
        "nhrp notify",
        "nhrp_notify",
        Category.ADMINISTRATIVE,
        "NHRP (DSVPN) told the device to remove the tunnel.",
    ),
    Reason(
        "receive backup delete info",
        "backup_delete_info",
        Category.HA,
        "The standby of an HA pair deleted its copy because the active deleted the SA.",
    ),
    Reason(
        "eap delete old sa",
        "eap_delete_old_sa",
        Category.REKEY,
        "EAP re-authentication replaced the old SA.",
    ),
    Reason(
        "hash gene adjusted",
        "hash_gene_adjusted",
        Category.HA,
        "The SPU hash factor changed and the SA moved to another processing unit.",
    ),
    Reason(
        "kick old sa with same flow",
        "kick_old_sa_same_flow",
        Category.REKEY,
        "A new SA for the same flow replaced the old one.",
    ),
    Reason(
        "hardware-timeout",
        "hardware_timeout",
        Category.HARDWARE,
        "The SA timed out in the hardware (encryption card or NP).",
    ),
    Reason(
        "receive phase1 delete info",
        "peer_phase1_delete",
        Category.ADMINISTRATIVE,
        "The peer sent an IKE SA delete (NE40E/NE8000 wording).",
    ),
    Reason(
        "receive phase2 delete info",
        "peer_phase2_delete",
        Category.ADMINISTRATIVE,
        "The peer sent an IPsec SA delete (NE40E/NE8000 wording).",
    ),
)

ALL_REASONS: tuple[Reason, ...] = REASONS + EXTRA_REASONS
"""Every reason with a code: the command reference's 17 first, then the others."""

_SEPARATORS = re.compile(r"[\s_-]+")


def normalize_reason(text: str) -> str:
    """Fold the spellings of one reason into one key.

    Devices differ only in hyphens, underscores, spaces and case.

    Examples:
        >>> normalize_reason("dpd-timeout")
        'dpd timeout'
        >>> normalize_reason("  Re-Auth   Timeout ")
        're auth timeout'
    """
    return _SEPARATORS.sub(" ", text).strip().lower()


_BY_KEY: MappingProxyType[str, Reason] = MappingProxyType(
    {normalize_reason(reason.text): reason for reason in ALL_REASONS}
)
REASON_BY_CODE: MappingProxyType[str, Reason] = MappingProxyType(
    {reason.code: reason for reason in ALL_REASONS}
)


def classify_reason(text: str) -> tuple[str, Category]:
    """Return the stable code and category of a reason as the device printed it.

    Examples:
        >>> classify_reason("dpd-timeout")
        ('dpd_timeout', <Category.LIVENESS: 'liveness'>)
        >>> classify_reason("Receive backup delete info")
        ('backup_delete_info', <Category.HA: 'ha'>)
        >>> classify_reason("tunnel fell over")
        ('unknown', <Category.UNKNOWN: 'unknown'>)
    """
    reason = _BY_KEY.get(normalize_reason(text))
    if reason is None:
        return UNKNOWN_REASON_CODE, Category.UNKNOWN
    return reason.code, reason.category


def reason_text(code: str, printed: str | None = None) -> str:
    """A reason code as an operator reads it: the reference's spelling (``dpd timeout``);
    for an unknown code the text a device printed, else the code.

    Examples:
        >>> reason_text("dpd_timeout"), reason_text("unknown", "kick old sa")
        ('dpd timeout', 'kick old sa')
    """
    reason = REASON_BY_CODE.get(code)
    if reason is not None:
        return reason.text
    return printed or code


class OfflineRecord(NamedTuple):
    """One deleted IPsec tunnel, one row of ``display ike offline-info``.

    A named tuple rather than a frozen dataclass: it is as immutable and typed, and
    about three times cheaper to build, which matters when a fleet run parses
    200 rows from each of thousands of devices.
    """

    peer: str
    """Peer address, IPv4 or IPv6, as printed."""
    port: int | None
    """IKE port (500 or 4500) where the layout prints it, else None."""
    reason: str
    """The offline reason exactly as the device printed it."""
    reason_code: str
    category: Category
    ike_version: int | None
    """1 or 2; None where the layout prints no version (NE40E/NE8000 offline history)."""
    offline_time: datetime
    """Device-local time as printed; naive, no zone is invented."""
    slot: str | None = None
    """The slot whose buffer held the row (NE40E sections, multi-SPU firewalls), else None."""
    cpu: str | None = None
    """The CPU of that slot (multi-SPU firewalls: ``slot 1 cpu 0``), else None."""
    vpn_instance: str | None = None
    """The VPN instance the layout prints (NE40E ``VPN`` column; None for ``-``)."""

    @classmethod
    def build(
        cls,
        peer: str,
        reason: str,
        ike_version: int | None,
        offline_time: datetime,
        port: int | None = None,
        *,
        slot: str | None = None,
        cpu: str | None = None,
        vpn_instance: str | None = None,
    ) -> OfflineRecord:
        """Make a record, deriving the code and category from the reason text."""
        code, category = classify_reason(reason)
        return cls(
            peer, port, reason, code, category, ike_version, offline_time, slot, cpu, vpn_instance
        )

    @property
    def buffer(self) -> tuple[str | None, str | None]:
        """Which of the device's buffers held the row: ``(slot, cpu)``; ``(None, None)``
        on devices with one buffer. De-duplication, gaps and the 200-entry rule apply
        per buffer."""
        return self.slot, self.cpu

    def to_dict(self) -> dict[str, Any]:
        """The record with JSON-friendly values (``offline_time`` as ISO 8601, no zone)."""
        return {
            "peer": self.peer,
            "port": self.port,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "category": self.category.value,
            "ike_version": self.ike_version,
            "offline_time": self.offline_time.isoformat(),
            "slot": self.slot,
            "cpu": self.cpu,
            "vpn_instance": self.vpn_instance,
        }


RECORD_FIELDS: tuple[str, ...] = (
    "peer",
    "port",
    "reason",
    "reason_code",
    "category",
    "ike_version",
    "offline_time",
    "slot",
    "cpu",
    "vpn_instance",
)


class ErrorKind(StrEnum):
    """Why a device could not be read: a small closed set an operator can act on."""

    AUTH = "auth"
    """Credentials refused."""
    UNREACHABLE = "unreachable"
    """Connection refused, no route, name does not resolve."""
    TIMEOUT = "timeout"
    """The per-device deadline passed (connect, login or command)."""
    HOST_KEY = "host-key"
    """The device's SSH host key is unknown (strict mode) or revoked."""
    HOST_KEY_CHANGED = "host-key-changed"
    """The device offered another key than the one on record: possible interception."""
    JUMP_HOST = "jump-host"
    """The ``ProxyJump``/``ProxyCommand`` of the ssh_config failed before the device's SSH
    session was up (the bastion refused the key, its host key is unknown, it could not
    reach the device): the message carries the proxy's own words and exit status."""
    COMMAND_REJECTED = "command-rejected"
    """The device answered the command with an error."""
    INCOMPLETE_OUTPUT = "incomplete-output"
    """Fewer rows than ``Current info Num`` announced, or the session ended mid-output."""
    OVERSIZED_OUTPUT = "oversized-output"
    """The answer went over a cap (bytes, rows per table): read stopped, nothing kept."""
    SKIPPED_AUTH = "skipped-auth"
    """Not tried: logins with the same user were refused on other devices (circuit breaker)."""
    PROTOCOL = "protocol"
    """SSH negotiation failed or the device said something we cannot understand."""


class DeviceStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeviceError:
    kind: ErrorKind
    message: str
    """One line, for the operator; never contains a secret."""
    phase: str | None = None
    """What the session was doing when it failed (``TCP connect``, ``login``, a command),
    when known; the runner does not retry a second timeout in the same phase."""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class Device:
    """One device of the inventory, with everything needed to reach it but the secret."""

    name: str
    hostname: str
    port: int = 22
    username: str | None = None
    platform: str = "huawei"
    """netmiko device type: ``huawei`` or ``huawei_vrpv8``."""
    groups: tuple[str, ...] = ()
    data: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Free-form inventory data (``site``, ``timezone``, ...)."""
    netmiko_extras: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``connection_options.netmiko.extras`` from a Nornir inventory."""

    @property
    def site(self) -> str | None:
        value = self.data.get("site")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """The outcome of collecting one device in one run."""

    device: Device
    status: DeviceStatus
    records: tuple[OfflineRecord, ...] = ()
    error: DeviceError | None = None
    started: datetime | None = None
    """UTC, aware."""
    finished: datetime | None = None
    """UTC, aware."""
    raw: str | None = None
    """The command output as received (kept only when asked for)."""
    device_clock: DeviceClock | None = None
    """What ``display clock`` said at collection (local time, offset, zone name), when asked."""
    attempts: int = 1
    command: str | None = None
    """The command whose output the records came from (``display ike offline-info`` or
    ``display ike offline history``; several SPUs: the first one's)."""

    @property
    def ok(self) -> bool:
        return self.status is DeviceStatus.OK

    @classmethod
    def failure(
        cls,
        device: Device,
        kind: ErrorKind,
        message: str,
        *,
        phase: str | None = None,
        **kwargs: Any,
    ) -> DeviceResult:
        return cls(device, DeviceStatus.FAILED, error=DeviceError(kind, message, phase), **kwargs)
