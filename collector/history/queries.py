"""What the history is asked outside a report: deletions, gaps, zones, known commands,
the devices that timed out last.

:class:`Queries` is the part of :class:`~collector.history.store.Store` that only reads
(small queries; the fleet report over the roll-ups is :mod:`collector.history.report`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from collector.core.clock import ZoneError, parse_zone
from collector.core.records import ErrorKind, OfflineRecord
from collector.history.connection import EPOCH, Connection, RunId, from_epoch


@dataclass(frozen=True, slots=True)
class Gap:
    """Deletions of ``device`` may be lost between ``missing_since`` and ``missing_until``."""

    device: str
    run_id: int
    missing_since: datetime | None
    """UTC time of the newest deletion stored before this run."""
    missing_until: datetime | None
    """UTC time of the oldest deletion of this run's (full) snapshot."""
    missing_since_local: str | None = None
    missing_until_local: str | None = None
    slot: str | None = None
    """The buffer that wrapped (None on devices with one buffer)."""
    cpu: str | None = None

    @property
    def buffer(self) -> str | None:
        """``slot 3``, ``slot 1 cpu 0``, or None on a device with one buffer."""
        return buffer_label(self.slot, self.cpu)


def buffer_label(slot: str | None, cpu: str | None) -> str | None:
    """How reports name a buffer.

    Examples:
        >>> buffer_label("1", "0"), buffer_label("3", None), buffer_label(None, None)
        ('slot 1 cpu 0', 'slot 3', None)
    """
    if not slot and not cpu:
        return None
    return " ".join(part for part in (slot and f"slot {slot}", cpu and f"cpu {cpu}") if part)


class Queries(Connection):
    """The store's small read-only queries."""

    def count_deletions(self, device: str | None = None) -> int:
        if device is None:
            return int(self.fetch("SELECT count(*) FROM deletions")[0][0])
        return int(
            self.fetch(
                "SELECT count(*) FROM deletions d JOIN devices v ON v.id = d.device_id "
                "WHERE v.name = ?",
                (device,),
            )[0][0]
        )

    def deletions(self, device: str) -> list[OfflineRecord]:
        """A device's stored deletions, oldest first (identical rows repeated).

        Records as the device printed them: slot, cpu, VPN instance and IKE version are
        None where the layout printed none.
        """
        rows = self.fetch(
            "SELECT p.peer, d.port, r.reason, d.ike_version, d.t_local, d.slot, d.cpu, "
            "d.vpn_instance FROM deletions d JOIN devices v ON v.id = d.device_id "
            "JOIN peers p ON p.id = d.peer_id JOIN reasons r ON r.id = d.reason_id "
            "WHERE v.name = ? ORDER BY d.t_local, p.peer, r.reason, d.slot, d.cpu, "
            "d.vpn_instance, d.occurrence",
            (device,),
        )
        return [
            OfflineRecord.build(
                peer,
                reason,
                int(version) or None,
                EPOCH + timedelta(seconds=int(local)),
                port=int(port) or None,
                slot=slot or None,
                cpu=cpu or None,
                vpn_instance=vpn or None,
            )
            for peer, port, reason, version, local, slot, cpu, vpn in rows
        ]

    def device_zones(self) -> dict[str, tzinfo]:
        """Each device's zone, to show its times in its own time (``--local-times``).

        The inventory zone the device was last stored with; else the offset its newest
        deletion was stored with (from ``display clock`` or assumed UTC); else none.
        """
        zones: dict[str, tzinfo] = {}
        for name, text in self.fetch("SELECT name, zone FROM devices WHERE zone IS NOT NULL"):
            try:
                zones[str(name)] = parse_zone(str(text))
            except ZoneError:
                continue
        rows = self.fetch(
            "SELECT v.name, d.t_local - d.t_utc FROM deletions d "
            "JOIN (SELECT device_id, max(t_local) AS t FROM deletions GROUP BY device_id) m "
            "ON d.device_id = m.device_id AND d.t_local = m.t "
            "JOIN devices v ON v.id = d.device_id"
        )
        for name, shift in rows:
            if str(name) not in zones:
                seconds = int(shift)
                zones[str(name)] = UTC if not seconds else timezone(timedelta(seconds=seconds))
        return zones

    def known_command(self, device: str) -> str | None:
        """The command ``device`` last answered (None: never stored, or no command known).

        The transport starts with it, so a device that refused ``display ike
        offline-info`` (NE40E/NE8000) is asked ``display ike offline history`` directly.
        """
        rows = self.fetch("SELECT ike_command FROM devices WHERE name = ?", (device,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def known_commands(self) -> dict[str, str]:
        """Every device's last answered command, by device name, in one query (for a run)."""
        return {
            str(name): str(command)
            for name, command in self.fetch(
                "SELECT name, ike_command FROM devices WHERE ike_command IS NOT NULL"
            )
        }

    def timed_out_last(self) -> set[str]:
        """The devices whose latest result was a timeout (a run starts them first)."""
        return {
            str(name)
            for (name,) in self.fetch(
                "SELECT name FROM devices WHERE last_error_kind = ?", (ErrorKind.TIMEOUT.value,)
            )
        }

    def last_run_id(self) -> RunId | None:
        rows = self.fetch("SELECT max(id) FROM runs")
        return None if rows[0][0] is None else RunId(int(rows[0][0]))

    def new_by_reason(self, run_id: int) -> dict[str, int]:
        """Deletions first seen in ``run_id``, by reason code (for ``--fail-on``)."""
        codes: dict[int, str] = dict(self.fetch("SELECT id, reason_code FROM reasons"))
        counts: dict[str, int] = {}
        for (text,) in self.fetch(
            "SELECT new_reasons FROM device_runs WHERE run_id = ? AND new_reasons IS NOT NULL",
            (run_id,),
        ):
            for reason_id, count in json.loads(text).items():
                code = str(codes[int(reason_id)])
                counts[code] = counts.get(code, 0) + int(count)
        return counts

    def gaps(self, run_id: int | None = None) -> list[Gap]:
        """Recorded gaps, of one run or all, oldest first."""
        where, params = ("WHERE g.run_id = ?", (run_id,)) if run_id is not None else ("", ())
        rows = self.fetch(
            "SELECT v.name, g.run_id, g.missing_since_utc, g.missing_until_utc, "
            "g.missing_since_local, g.missing_until_local, g.slot, g.cpu FROM gaps g "
            f"JOIN devices v ON v.id = g.device_id {where} ORDER BY g.id",
            params,
        )
        return [
            Gap(
                name,
                int(run),
                from_epoch(since),
                from_epoch(until),
                since_local,
                until_local,
                slot,
                cpu,
            )
            for name, run, since, until, since_local, until_local, slot, cpu in rows
        ]
