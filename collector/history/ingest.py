"""The history's ingest: runs, and each device's result stored with every deletion exactly once.

A device keeps only its latest 200 deletions; the store keeps all of them. Each device's
result is written in ONE transaction, so a crash (even SIGKILL) loses nothing already
committed and leaves no half-written device.

A device may keep several buffers (NE40E slots, the SPUs of a multi-SPU firewall: a row's
``slot`` and ``cpu``); everything below is per buffer, and the VPN instance is part of a
row's identity. De-duplication is exact and multiset-aware: identical rows of one buffer's
snapshot are numbered (``occurrence`` 0, 1, 2 ... per identical row). Per device, the
stored rows the snapshot overlaps (t_local >= its oldest row, all buffers: one range scan
of the clustered key) are diffed with it as a multiset in Python (the key holds the
buffer) and only new rows are inserted, so a deletion seen in many runs is stored once,
two identical deletions of the same second stay two, and the same row in two slots is
two. SQLite: ``BEGIN IMMEDIATE`` makes the diff exact. PostgreSQL: the device row is
locked, and the insert is ``ON CONFLICT DO NOTHING RETURNING``, so two collectors writing
one device stay safe and the roll-ups count only rows really inserted. An unchanged
snapshot (same digest as the device's last one) skips the diff altogether.

Roll-ups (``roll_device``, ``roll_reason``, ``device_runs.new_reasons``) are updated in
the same transaction from the inserted rows; reports read them instead of every row.

A gap is recorded, per buffer, when a buffer's full snapshot (200 rows) shares no row with
what was stored for that buffer: it wrapped between two runs and deletions in between may

Size: over 500 lines because one device's ingest is one transaction's logic over one key
layout (interning, snapshot keys and digest, the multiset diff, gaps per buffer, the
roll-up cells it adds); cutting it would pass those keys between modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache, partial
from itertools import chain
from operator import attrgetter, itemgetter

from collector.core.clock import ZoneError, resolve_zone, session_skew
from collector.core.records import (
    DeviceResult,
    OfflineRecord,
    classify_reason,
)
from collector.history.connection import (
    EPOCH,
    Connection,
    Row,
    RunId,
    StoreError,
    from_epoch,
    pg_arrays,
    to_epoch,
)
from collector.history.queries import Gap
from collector.history.schema import (
    DEDUP_KEY,
    NO_TEXT,
    NO_VERSION,
    REASON_CODE_BITS,
    TABLES,
    ColumnType,
    Dialect,
)

FULL_BUFFER = 200
"""A device keeps its latest 200 deletions (command reference: display ike offline-info)."""
_SECOND = timedelta(seconds=1)
MAX_OFFSET = 15 * 3600
"""Largest |local - UTC| accepted; window edges widen their local-time range by it."""
_NO_SHIFT = 1 << 40
_FIRST = itemgetter(0)
_RECORD_FIELDS = attrgetter(
    "offline_time", "peer", "port", "reason", "ike_version", "vpn_instance", "slot", "cpu"
)
_TEXT_COLUMN = 5
"""Where the texts (vpn_instance, slot, cpu) start in a ``Key``."""
_KEY_BUFFER = itemgetter(6, 7)
Key = tuple[int, int, int, int, int, str, str, str]
"""t_local, peer_id, port, reason_id, ike_version, vpn_instance, slot, cpu (as stored)."""
Buffer = tuple[str, str]
"""(slot, cpu) as stored: ``NO_TEXT`` for what the layout does not print."""


def _local_text(seconds: int) -> str:
    """Device-local epoch seconds back to the text the store keys on.

    Examples:
        >>> _local_text(1795774272)
        '2026-11-27 10:11:12'
    """
    return (EPOCH + timedelta(seconds=seconds)).isoformat(sep=" ")


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """What storing one device's result did."""

    device: str
    records: int
    """Rows in the snapshot."""
    new_records: int
    """Rows not stored before (written now)."""
    gaps: tuple[Gap, ...] = ()
    """One per buffer that wrapped since the previous run."""
    skew: timedelta | None = None
    """Device clock minus collector clock, when the device clock was read."""
    zone_source: str = "assumed-utc"
    """Where the zone for UTC conversion came from: inventory, device-clock, assumed-utc."""

    @property
    def gap(self) -> Gap | None:
        """The first gap (devices with one buffer have at most one)."""
        return self.gaps[0] if self.gaps else None


class Ingest(Connection):
    """The part of :class:`~collector.history.store.Store` that writes runs and devices."""

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        inventory: str | os.PathLike[str] | None = None,
        shard: str | None = None,
        host: str | None = None,
        *,
        started: datetime | None = None,
    ) -> RunId:
        """Record the start of a collection run and return its id."""
        started = started or datetime.now(UTC)
        with self.transaction():
            rows = self.fetch(
                "INSERT INTO runs (started, collector_host, inventory, shard) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (
                    to_epoch(started),
                    host or socket.gethostname(),
                    None if inventory is None else os.fspath(inventory),
                    shard,
                ),
            )
        return RunId(int(rows[0][0]))

    def finish_run(self, run_id: int, *, finished: datetime | None = None) -> None:
        """Record the end of a run with its totals (computed from its devices)."""
        finished = finished or datetime.now(UTC)
        with self.transaction():
            totals = self.fetch(
                "SELECT "
                "coalesce(sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), 0), "
                "coalesce(sum(CASE WHEN status = 'ok' THEN 0 ELSE 1 END), 0), "
                "coalesce(sum(record_count), 0), coalesce(sum(new_records), 0), "
                "coalesce(sum(gap), 0) FROM device_runs WHERE run_id = ?",
                (run_id,),
            )[0]
            self._execute(
                "UPDATE runs SET finished = ?, devices_ok = ?, devices_failed = ?, "
                "records_seen = ?, new_records = ?, gaps = ? WHERE id = ?",
                (to_epoch(finished), *(int(value) for value in totals), run_id),
            )

    # -- devices -------------------------------------------------------------------------

    def _device_row(
        self, result: DeviceResult, zone_text: str | None
    ) -> tuple[int, str | None, int, bool]:
        """Insert or update the device; return (id, last digest, pruned_until, is new)."""
        device = result.device
        groups = ",".join(device.groups)
        lock = " FOR UPDATE" if self.dialect is Dialect.POSTGRES else ""
        select = (
            "SELECT id, hostname, site, groups, zone, last_digest, pruned_until "
            f"FROM devices WHERE name = ?{lock}"
        )
        rows = self.fetch(select, (device.name,))
        is_new = False
        if not rows:
            created = self.fetch(
                "INSERT INTO devices (name, hostname, site, groups, zone) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
                (device.name, device.hostname, device.site, groups, zone_text),
            )
            if created:
                # Brand new: nothing stored for it, no groups to replace.
                device_id = int(created[0][0])
                self._execute_many(
                    "INSERT INTO device_groups (device_id, group_name) VALUES (?, ?)",
                    [(device_id, group) for group in dict.fromkeys(device.groups)],
                )
                return device_id, None, 0, True
            rows = self.fetch(select, (device.name,))
            self._set_groups(int(rows[0][0]), device.groups)
        device_id, hostname, site, stored_groups, zone, digest, pruned_until = rows[0]
        if (hostname, site, zone) != (device.hostname, device.site, zone_text):
            self._execute(
                "UPDATE devices SET hostname = ?, site = ?, zone = ? WHERE id = ?",
                (device.hostname, device.site, zone_text, device_id),
            )
        if stored_groups != groups:
            self._execute("UPDATE devices SET groups = ? WHERE id = ?", (groups, device_id))
            self._set_groups(int(device_id), device.groups)
        return int(device_id), digest, int(pruned_until), is_new

    def _set_groups(self, device_id: int, groups: Sequence[str]) -> None:
        self._execute("DELETE FROM device_groups WHERE device_id = ?", (device_id,))
        self._execute_many(
            "INSERT INTO device_groups (device_id, group_name) VALUES (?, ?) "
            "ON CONFLICT (device_id, group_name) DO NOTHING",
            [(device_id, group) for group in dict.fromkeys(groups)],
        )

    # -- interning -----------------------------------------------------------------------

    def _peer_id(self, peer: str) -> int:
        """The id of a peer text, inserting it if new (inside the open transaction)."""
        known = self._interned.peers.get(peer)
        if known is not None:
            return known
        rows = self.fetch(
            "INSERT INTO peers (peer) VALUES (?) ON CONFLICT (peer) DO NOTHING RETURNING id",
            (peer,),
        ) or self.fetch("SELECT id FROM peers WHERE peer = ?", (peer,))
        self._interned.peers[peer] = peer_id = int(rows[0][0])
        self._pending.append(("peers", peer))
        return peer_id

    def _reason_id(self, text: str) -> int:
        """The id of a reason as printed, inserting it (with its code) if new."""
        known = self._interned.reasons.get(text)
        if known is not None:
            return known
        code, category = classify_reason(text)
        rows = self.fetch(
            "INSERT INTO reasons (reason, reason_code, category) VALUES (?, ?, ?) "
            "ON CONFLICT (reason) DO NOTHING RETURNING id",
            (text, code, category.value),
        ) or self.fetch("SELECT id FROM reasons WHERE reason = ?", (text,))
        self._interned.reasons[text] = reason_id = int(rows[0][0])
        self._interned.reason_bits[reason_id] = 1 << REASON_CODE_BITS[code]
        self._pending.append(("reasons", text))
        return reason_id

    def _snapshot_keys(self, records: Sequence[OfflineRecord]) -> tuple[list[Key], str]:
        """The snapshot as de-dup keys (without device and occurrence), and its digest.

        Key layout: ``Key``, with what the layout did not print as ``NO_VERSION`` and
        ``NO_TEXT``. The digest covers the keys in device order (ids are stable within
        one database, so it is too), column by column: each integer column as an array,
        then the texts joined, only when there are any (most devices: one buffer, no VPN).
        """
        self._load_interned()
        peers = self._interned.peers
        reasons = self._interned.reasons
        fields = list(map(_RECORD_FIELDS, records))
        # Texts not seen before are interned first (sorted: concurrent PostgreSQL writers
        # then insert shared new texts in one order), so the comprehension never misses.
        for peer in sorted({field[1] for field in fields}.difference(peers)):
            self._peer_id(peer)
        for reason in sorted({field[3] for field in fields}.difference(reasons)):
            self._reason_id(reason)
        keys: list[Key] = [
            (
                (moment - EPOCH) // _SECOND,
                peers[peer],
                port or 0,
                reasons[reason],
                version or NO_VERSION,
                vpn or NO_TEXT,
                slot or NO_TEXT,
                cpu or NO_TEXT,
            )
            for moment, peer, port, reason, version, vpn, slot, cpu in fields
        ]
        columns = list(zip(*keys, strict=True))
        digest = hashlib.blake2b(digest_size=16)
        for numbers in columns[:_TEXT_COLUMN]:
            digest.update(array("q", numbers).tobytes())
        if any(map(any, columns[_TEXT_COLUMN:])):
            texts = "\x1f".join(chain.from_iterable(columns[_TEXT_COLUMN:]))
            digest.update(texts.encode("utf-8", "surrogatepass"))
        return keys, digest.hexdigest()

    # -- ingest --------------------------------------------------------------------------

    def record_device(
        self,
        run_id: int,
        result: DeviceResult,
        zone: tzinfo | str | None = None,
        *,
        declared_count: int | Mapping[tuple[str | None, str | None], int] | None = None,
    ) -> DeviceOutcome:
        """Store one device's result in one transaction.

        Args:
            run_id: From :meth:`start_run`.
            result: The device's outcome; failed devices are recorded with their error.
            zone: The zone of the device's ``offline-time`` (tzinfo or text); None: the
                inventory's ``data.timezone``, else the offset ``display clock`` printed
                (``result.device_clock`` aware), else UTC.
            declared_count: ``Current info Num`` when the parser saw it, for a device
                with one buffer; several buffers: by ``record.buffer`` (``(slot, cpu)``,
                NE40E ``Current Record Number`` per slot). A buffer's snapshot is full
                when it has 200 rows or its device declared 200 or more.

        Returns:
            How many deletions were new, a gap per buffer that wrapped, the clock skew.
            The device row also remembers ``result.command`` (:meth:`known_command`).

        Raises:
            StoreError: the zone text is invalid.
        """
        device = result.device
        zone_text = zone if isinstance(zone, str) else device.data.get("timezone")
        try:
            if isinstance(zone, tzinfo):
                tz, zone_source = zone, "given"
            else:
                tz, zone_source = resolve_zone(
                    None if zone_text is None else str(zone_text), result.device_clock
                )
        except ZoneError as zone_error:
            raise StoreError(f"device {device.name}: {zone_error}") from None
        skew = session_skew(result.device_clock, tz, result.started, result.finished)
        records = result.records
        # Which buffers are full is only asked when rows were new (a gap is possible).
        full = partial(_full_buffers, records, declared_count)
        if isinstance(declared_count, Mapping):
            declared_count = sum(declared_count.values())
        raw = None
        if self.keep_raw and result.raw is not None:
            raw = zlib.compress(result.raw.encode("utf-8", "replace"), 6)
        gaps: tuple[Gap, ...] = ()
        new_records = 0
        new_reasons: str | None = None
        new_codes = 0
        digest: str | None = None
        with self.transaction():
            device_id, last_digest, pruned_until, is_new = self._device_row(
                result, None if zone_text is None else str(zone_text)
            )
            if result.ok and records:
                keys, digest = self._snapshot_keys(records)
                # Unchanged since the last run (the common cron case): nothing to diff.
                if digest != last_digest:
                    new_records, gaps, new_reasons, new_codes = self._insert_snapshot(
                        run_id, device.name, device_id, keys, tz, pruned_until, full, is_new
                    )
            error = result.error
            self._execute(
                "INSERT INTO device_runs (run_id, device_id, status, error_kind, error_message, "
                "record_count, declared_count, new_records, gap, clock_skew, zone_source, "
                "started, finished, attempts, raw, new_reasons, new_codes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    device_id,
                    result.status.value,
                    None if error is None else error.kind.value,
                    None if error is None else error.message,
                    len(records),
                    declared_count,
                    new_records,
                    len(gaps),
                    None if skew is None else skew.total_seconds(),
                    zone_source,
                    None if result.started is None else to_epoch(result.started),
                    None if result.finished is None else to_epoch(result.finished),
                    result.attempts,
                    raw,
                    new_reasons,
                    new_codes,
                ),
            )
            self._execute(
                "UPDATE devices SET last_digest = coalesce(?, last_digest), last_run = ?, "
                "last_status = ?, last_error_kind = ?, last_error_message = ?, "
                "last_success = coalesce(?, last_success), ike_command = coalesce(?, ike_command) "
                "WHERE id = ?",
                (
                    digest,
                    run_id,
                    result.status.value,
                    None if error is None else error.kind.value,
                    None if error is None else error.message,
                    to_epoch(result.finished or datetime.now(UTC)) if result.ok else None,
                    result.command,
                    device_id,
                ),
            )
            self._execute_many(
                "INSERT INTO gaps (device_id, run_id, missing_since_utc, missing_until_utc, "
                "missing_since_local, missing_until_local, slot, cpu) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        device_id,
                        run_id,
                        None if gap.missing_since is None else int(gap.missing_since.timestamp()),
                        None if gap.missing_until is None else int(gap.missing_until.timestamp()),
                        gap.missing_since_local,
                        gap.missing_until_local,
                        gap.slot,
                        gap.cpu,
                    )
                    for gap in gaps
                ],
            )
        return DeviceOutcome(device.name, len(records), new_records, gaps, skew, zone_source)

    def _insert_snapshot(
        self,
        run_id: int,
        device_name: str,
        device_id: int,
        keys: list[Key],
        zone: tzinfo,
        pruned_until: int,
        full: Callable[[], frozenset[Buffer]],
        is_new: bool,
    ) -> tuple[int, tuple[Gap, ...], str | None, int]:
        """Insert the rows of the snapshot not stored yet; update the roll-ups from them."""
        shift = _fixed_shift(zone)
        if shift is not None:
            utcs = [key[0] - shift for key in keys]
        else:
            to_utc = _utc_seconds_function(zone)
            utcs = [to_utc(key[0]) for key in keys]
        # Rows older than a prune would come back as "new" from a quiet device's buffer.
        if pruned_until:
            kept = [(key, utc) for key, utc in zip(keys, utcs, strict=True) if utc >= pruned_until]
            keys = [key for key, _ in kept]
            utcs = [utc for _, utc in kept]
        if not keys:
            return 0, (), None, 0
        offsets = [key[0] - utc for key, utc in zip(keys, utcs, strict=True)]
        if max(offsets) > MAX_OFFSET or min(offsets) < -MAX_OFFSET:
            raise StoreError(f"device {device_name}: UTC offset beyond +-15 hours is not supported")
        # Exact multiset de-dup: the k-th copy of a row in the snapshot (occurrence k) is
        # new when fewer than k + 1 copies are stored. Every stored copy of a key the
        # snapshot holds has t_local >= the snapshot's oldest: one range scan finds them,
        # in every buffer (the key names the buffer, so buffers never match each other).
        # A device first stored in this transaction has nothing to compare with.
        oldest_local = min(key[0] for key in keys)
        stored: Counter[Key] = Counter()
        overlap: list[Row] = []
        if not is_new:
            overlap = self.fetch(
                "SELECT t_local, peer_id, port, reason_id, ike_version, vpn_instance, slot, cpu, "
                "t_utc FROM deletions WHERE device_id = ? AND t_local >= ?",
                (device_id, oldest_local),
            )
            stored = Counter(map(_STORED_KEY, overlap))
        rows: list[Row]
        if len(set(keys)) == len(keys):
            # No identical rows in the snapshot (the usual case): every occurrence is 0.
            rows = [
                (device_id, *key, 0, utc, run_id)
                for key, utc in zip(keys, utcs, strict=True)
                if key not in stored
            ]
        else:
            copies: dict[Key, int] = {}
            rows = []
            for key, utc in zip(keys, utcs, strict=True):
                occurrence = copies.get(key, 0)
                copies[key] = occurrence + 1
                if occurrence >= stored.get(key, 0):
                    rows.append((device_id, *key, occurrence, utc, run_id))
        inserted = self._insert_rows(rows) if rows else []
        if not inserted:
            return 0, (), None, 0
        peer_ids, reason_ids, inserted_utcs, *_ = zip(*inserted, strict=True)
        self._roll_up(device_id, peer_ids, reason_ids, inserted_utcs, is_new)
        new_reasons = Counter(reason_ids)
        bits = self._interned.reason_bits
        new_codes = 0
        for reason_id in new_reasons:
            new_codes |= bits[reason_id]
        gaps: tuple[Gap, ...] = ()
        full_buffers = frozenset() if is_new else full()
        if full_buffers:
            gaps = self._gaps(
                run_id,
                device_name,
                device_id,
                keys,
                utcs,
                inserted,
                overlap,
                full_buffers,
                oldest_local,
            )
        return len(inserted), gaps, json.dumps(new_reasons, separators=(",", ":")), new_codes

    def _gaps(
        self,
        run_id: int,
        device_name: str,
        device_id: int,
        keys: list[Key],
        utcs: list[int],
        inserted: list[tuple[int, int, int, str, str]],
        overlap: list[Row],
        full: frozenset[Buffer],
        scanned_from: int,
    ) -> tuple[Gap, ...]:
        """The full buffers whose rows were all new although the buffer had rows stored.

        ``overlap`` holds the stored rows from ``scanned_from`` on (every buffer): a
        buffer's newest stored row is there if it has any there, else older.
        """
        in_snapshot = Counter(map(_KEY_BUFFER, keys))
        new_in = Counter((row[3], row[4]) for row in inserted)
        gaps: list[Gap] = []
        for buffer in sorted(full):
            if not in_snapshot[buffer] or new_in[buffer] != in_snapshot[buffer]:
                continue
            mine = [row for row in overlap if (row[6], row[7]) == buffer]
            if mine:
                newest = max(mine, key=_FIRST)
                previous: Row | None = (newest[0], newest[8])
            else:
                found = self.fetch(
                    "SELECT t_local, t_utc FROM deletions WHERE device_id = ? AND t_local < ? "
                    "AND slot = ? AND cpu = ? ORDER BY t_local DESC LIMIT 1",
                    (device_id, scanned_from, *buffer),
                )
                previous = found[0] if found else None
            if previous is None:
                continue  # the buffer's first snapshot: nothing to miss
            oldest = min(
                (index for index, key in enumerate(keys) if _KEY_BUFFER(key) == buffer),
                key=lambda index: keys[index][0],
            )
            gaps.append(
                Gap(
                    device=device_name,
                    run_id=run_id,
                    missing_since=from_epoch(previous[1]),
                    missing_until=from_epoch(utcs[oldest]),
                    missing_since_local=_local_text(int(previous[0])),
                    missing_until_local=_local_text(keys[oldest][0]),
                    slot=buffer[0] or None,
                    cpu=buffer[1] or None,
                )
            )
        return tuple(gaps)

    def _insert_rows(self, rows: list[Row]) -> list[tuple[int, int, int, str, str]]:
        """Insert deletion rows; return (peer_id, reason_id, t_utc, slot, cpu) of those inserted."""
        if self.dialect is Dialect.SQLITE:
            # BEGIN IMMEDIATE made this the only writer: the diff above is exact, and a
            # conflict here would be a bug, so it raises instead of being skipped.
            self._conn.executemany(_INSERT_DELETIONS, rows)
            return list(map(_INSERTED, rows))
        # PostgreSQL: another collector may have stored some of these rows since the diff
        # (the device row lock makes that unlikely, not impossible after a schema race):
        # ON CONFLICT skips them and RETURNING says what really went in.
        return [
            (int(peer), int(reason), int(utc), str(slot), str(cpu))
            for peer, reason, utc, slot, cpu in self.fetch(_INSERT_DELETIONS_PG, pg_arrays(rows))
        ]

    def _roll_up(
        self,
        device_id: int,
        peer_ids: Sequence[int],
        reason_ids: Sequence[int],
        utcs: Sequence[int],
        is_new: bool,
    ) -> None:
        """Add inserted rows (as parallel columns) to the roll-up tables."""
        # Counter over zipped columns counts in C: no Python call per row.
        days = [utc // 86400 for utc in utcs]
        by_reason = Counter(zip(days, reason_ids, strict=True))
        ordered = sorted(zip(days, utcs, strict=True))
        newest = dict(ordered)  # the last (largest) instant of each day wins
        oldest = dict(reversed(ordered))
        bits = self._interned.reason_bits
        cells: dict[int, DayCell] = {
            day: DayCell(count, newest[day], oldest[day], 0, {})
            for day, count in Counter(days).items()
        }
        for day, reason_id in by_reason:
            cells[day].codes |= bits[reason_id]
        for (day, peer_id), count in Counter(zip(days, peer_ids, strict=True)).items():
            cells[day].peers[peer_id] = count
        if not is_new:
            # The device's own rows (its lock is held): read, merge in Python, write back.
            for day, n, high, low, codes, peers in self.fetch(
                "SELECT day, n, newest, oldest, codes, peers FROM roll_device "
                "WHERE device_id = ? AND day >= ? AND day <= ?",
                (device_id, min(cells), max(cells)),
            ):
                cell = cells.get(int(day))
                if cell is not None:
                    cell.merge(int(n), int(high), int(low), int(codes), peers)
        self._upsert(
            "roll_device", [(device_id, day, *cells[day].values()) for day in sorted(cells)]
        )
        # Sorted: concurrent PostgreSQL writers lock these shared cells in the same order.
        self._upsert("roll_reason", [(*key, n) for key, n in sorted(by_reason.items())])


def _fixed_shift(zone: tzinfo) -> int | None:
    """The UTC offset in seconds of a fixed-offset zone; None for zones with rules."""
    if isinstance(zone, timezone):
        offset = zone.utcoffset(None)
        return int(offset.total_seconds()) if offset is not None else 0
    return None


@lru_cache(maxsize=256)
def _utc_seconds_function(zone: tzinfo) -> Callable[[int], int]:
    """A fast local-epoch-seconds -> UTC-epoch-seconds function for one zone.

    Cached per zone, with its per-hour offsets: the devices of a fleet share a few zones,
    so after the first device almost every record is one dict lookup.
    """
    shift = _fixed_shift(zone)
    if shift is not None:
        return lambda local: local - shift
    hours: dict[int, int] = {}

    def offset_of(local: int) -> int:
        # fold=0: an ambiguous local time (DST end) is read as its first occurrence.
        moment = (EPOCH + timedelta(seconds=local)).replace(tzinfo=zone, fold=0)
        return local - int(moment.timestamp())

    def named(local: int) -> int:
        # One zoneinfo lookup per local hour: the offset is the same at both ends of
        # the hour unless a transition falls inside it, then every second is asked.
        hour = local // 3600
        shift = hours.get(hour)
        if shift is None:
            first, last = offset_of(hour * 3600), offset_of(hour * 3600 + 3599)
            shift = hours[hour] = first if first == last else _NO_SHIFT
        if shift == _NO_SHIFT:
            return local - offset_of(local)
        return local - shift

    return named


class DayCell:
    """One device's deletions of one UTC day, as ``roll_device`` holds them."""

    __slots__ = ("codes", "n", "newest", "oldest", "peers")

    def __init__(self, n: int, newest: int, oldest: int, codes: int, peers: dict[int, int]) -> None:
        self.n = n
        self.newest = newest
        self.oldest = oldest
        self.codes = codes
        self.peers = peers

    def add(self, peer_id: int, utc: int, bit: int) -> None:
        self.n += 1
        if utc > self.newest:
            self.newest = utc
        elif utc < self.oldest:
            self.oldest = utc
        self.codes |= bit
        self.peers[peer_id] = self.peers.get(peer_id, 0) + 1

    def merge(self, n: int, newest: int, oldest: int, codes: int, peers: str) -> None:
        """Fold in the stored cell of the same day."""
        self.n += n
        self.newest = max(self.newest, newest)
        self.oldest = min(self.oldest, oldest)
        self.codes |= codes
        for key, count in json.loads(peers).items():
            self.peers[int(key)] = self.peers.get(int(key), 0) + int(count)

    def values(self) -> tuple[int, int, int, int, str]:
        return (
            self.n,
            self.newest,
            self.oldest,
            self.codes,
            json.dumps(self.peers, separators=(",", ":")),
        )


_DELETION_COLUMNS = tuple(column.name for column in TABLES["deletions"].columns)
_INSERT_DELETIONS = (
    f"INSERT INTO deletions ({', '.join(_DELETION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_DELETION_COLUMNS))})"
)
_INSERT_DELETIONS_PG = (
    f"INSERT INTO deletions ({', '.join(_DELETION_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(
        "?::text[]" if column.type is ColumnType.TEXT else "?::bigint[]"
        for column in TABLES["deletions"].columns
    )
    + f") ON CONFLICT ({', '.join(DEDUP_KEY)}) DO NOTHING "
    "RETURNING peer_id, reason_id, t_utc, slot, cpu"
)
_INSERTED = itemgetter(
    *(_DELETION_COLUMNS.index(name) for name in ("peer_id", "reason_id", "t_utc", "slot", "cpu"))
)
"""(peer_id, reason_id, t_utc, slot, cpu) of a deletion row, as RETURNING gives them."""
_STORED_KEY = itemgetter(*range(8))
"""The ``Key`` of a row of the overlap scan (its columns in ``Key`` order, then t_utc)."""


def _full_buffers(
    records: Sequence[OfflineRecord],
    declared: int | Mapping[tuple[str | None, str | None], int] | None,
) -> frozenset[Buffer]:
    """The buffers of a snapshot that are full: 200 rows, or the device declared 200.

    Examples:
        >>> rows = [OfflineRecord.build("p", "dpd timeout", 2, EPOCH, slot="1")] * 200
        >>> sorted(_full_buffers(rows, {("3", None): 200}))
        [('1', ''), ('3', '')]
        >>> sorted(_full_buffers(rows[:5], 200))
        [('1', '')]
    """
    if len(records) < FULL_BUFFER and not declared:
        return frozenset()
    counts = Counter(map(attrgetter("slot", "cpu"), records))
    if isinstance(declared, Mapping):
        counts.update({buffer: n for buffer, n in declared.items() if n >= FULL_BUFFER})
    elif declared is not None and declared >= FULL_BUFFER and len(counts) == 1:
        counts[next(iter(counts))] = declared
    return frozenset(
        (slot or NO_TEXT, cpu or NO_TEXT) for (slot, cpu), n in counts.items() if n >= FULL_BUFFER
    )
