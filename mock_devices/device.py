"""The running state of one mock device: its records, clock, journal and host key.

Records sit in buffers of at most 200, one per slot (NE40E) or SPU (multi-SPU firewall), one
for any other device. They are generated on the UTC time line and converted to the device's
zone, so their printed local times are right across DST changes; each row keeps its UTC
instant (``Row.utc``, ``records_utc()``) as the ground truth tests compare against::

    state.records()                 # all buffers, newest first
    state.records("3")              # slot 3 of an NE40E; "1/0" for an SPU
    state.records_utc("1/0")        # the UTC instant of each of those records

Thread-safe: the fleet's event loop serves sessions while a test thread adds deletions or reads
the journal through the Python API, so every mutable part sits behind one lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mock_devices.scenario import MAX_RECORDS, DeviceSpec, RecordGenerator, RecordSource
from mock_devices.tables import Layout, Row, render_row

BufferKey = tuple[int | None, int | None]
"""(slot, cpu) of a record buffer; (None, None) on a one-buffer device."""


def buffer_label(key: BufferKey) -> str:
    """``"1"`` for NE40E slot 1, ``"1/0"`` for SPU slot 1 cpu 0, ``""`` for the one buffer."""
    slot, cpu = key
    if slot is None:
        return ""
    return str(slot) if cpu is None else f"{slot}/{cpu}"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One thing the device received or noticed, in order."""

    time: datetime
    """Host wall-clock time (UTC) when it was received."""
    session: int
    """Session number on this device, from 1."""
    kind: str
    """``login``, ``auth-failed``, ``command``, ``answer`` (to a [Y/N] or password prompt),
    ``key`` (a key pressed at ``---- More ----``), ``disconnect``."""
    text: str
    """The line as received (passwords typed into a dialogue are masked)."""

    def to_dict(self) -> dict[str, str | int]:
        """JSON-friendly form."""
        return {
            "time": self.time.isoformat(),
            "session": self.session,
            "kind": self.kind,
            "text": self.text,
        }


def host_key_for(seed: str, name: str) -> asyncssh.SSHKey:
    """A stable ed25519 host key derived from ``seed`` and the device name.

    The same seed and name always give the same key, so a client's known_hosts stays valid
    across fleet restarts; changing the seed of one device simulates a replaced device.
    """
    secret = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    key = Ed25519PrivateKey.from_private_bytes(secret)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return asyncssh.import_private_key(pem)


class DeviceState:
    """One device while the fleet runs."""

    def __init__(self, spec: DeviceSpec, journal_dir: Path | None = None) -> None:
        self.spec = spec
        self.host = ""
        self.port = 0
        self._lock = threading.Lock()
        self._started_mono = time.monotonic()
        self._started_wall = datetime.now().astimezone()
        self._buffers: dict[BufferKey, deque[Row]] = {}
        self._generators: dict[BufferKey, RecordGenerator] = {}
        self._error_buffers: dict[BufferKey, list[Row]] = {}
        self._fill_buffers()
        self._journal: list[JournalEntry] = []
        self._sessions = 0
        self._deleted_total = sum(len(rows) for rows in self._buffers.values())
        self._churn_credit = 0.0
        self._journal_file = journal_dir / f"{spec.name}.jsonl" if journal_dir else None
        self._host_key: asyncssh.SSHKey | None = None
        # The table rows as printed, rendered once per change of the records (per layout):
        # formatting 200 rows was a third of the fleet's CPU per session.
        self._generation = 0
        self._rendered: dict[tuple[str, str | None], tuple[int, list[Row], list[str]]] = {}

    def _fill_buffers(self) -> None:
        spec = self.spec
        now = self.now_utc()
        for index, key in enumerate(spec.buffers):
            self._generators[key] = self._generator_for(spec.records, key, "")
            self._buffers[key] = deque(
                self._initial(spec.records, key, index == 0, now, self._generators[key]),
                maxlen=MAX_RECORDS,
            )
            errors = self._generator_for(spec.error_records, key, "errors")
            self._error_buffers[key] = self._initial(spec.error_records, key, True, now, errors)
        shared = spec.records.same_across_buffers
        if shared and len(spec.buffers) > 1:
            first = list(self._buffers[spec.buffers[0]])[:shared]
            for key in spec.buffers[1:]:
                copies = [replace(row, slot=key[0], cpu=key[1]) for row in first]
                merged = sorted([*copies, *self._buffers[key]], key=_newest_first)
                self._buffers[key] = deque(merged[:MAX_RECORDS], maxlen=MAX_RECORDS)
        if spec.scripted:
            key = spec.buffers[0]
            local_now = self.now()
            scripted = [
                self._with_utc(replace(row, slot=key[0], cpu=key[1]))
                for script in spec.scripted
                for row in script.rows(local_now)
            ]
            merged = sorted([*scripted, *self._buffers[key]], key=_newest_first)
            self._buffers[key] = deque(merged[:MAX_RECORDS], maxlen=MAX_RECORDS)

    def _generator_for(self, source: RecordSource, key: BufferKey, kind: str) -> RecordGenerator:
        label = buffer_label(key)
        seed = source.seed + (f":{label}" if label else "") + (f":{kind}" if kind else "")
        return RecordGenerator(
            seed,
            source.peer_pool,
            source.reasons,
            source.cycle_reasons,
            self.spec.vpn_instances,
        )

    def _initial(
        self,
        source: RecordSource,
        key: BufferKey,
        first: bool,
        now_utc: datetime,
        generator: RecordGenerator,
    ) -> list[Row]:
        """A buffer's records at start: generated, or the listed rows that belong to it."""
        if source.generate_count:
            rows = generator.history(source.generate_count, now_utc.replace(tzinfo=None))
            return [self._from_utc(row, key) for row in rows][:MAX_RECORDS]
        mine = [
            self._with_utc(replace(row, slot=key[0], cpu=key[1]))
            for row in source.rows
            if (row.slot, row.cpu) == key
            or (first and row.slot is None)
            or (key[1] is None and row.slot == key[0])
        ]
        return sorted(mine, key=_newest_first)[:MAX_RECORDS]

    def _from_utc(self, row: Row, key: BufferKey) -> Row:
        """A generated row (its time on the UTC line) in the device's zone, in buffer ``key``."""
        instant = row.time.replace(tzinfo=UTC)
        local = instant.astimezone(self.spec.clock.tz()).replace(tzinfo=None)
        return replace(row, time=local, utc=instant, slot=key[0], cpu=key[1])

    def _with_utc(self, row: Row) -> Row:
        """A row given in device-local time, with its UTC instant (the earlier one of a repeated
        hour at the end of DST)."""
        if row.utc is not None:
            return row
        instant = row.time.replace(tzinfo=self.spec.clock.tz()).astimezone(UTC)
        return replace(row, utc=instant)

    @property
    def name(self) -> str:
        """The device (and prompt) name."""
        return self.spec.name

    @property
    def username(self) -> str:
        """Login user name."""
        return self.spec.username

    @property
    def password(self) -> str:
        """Login password (never printed by the mock)."""
        return self.spec.password

    @property
    def layout(self) -> str:
        """``router`` or ``firewall``."""
        return self.spec.layout

    def __repr__(self) -> str:
        return f"<DeviceState {self.spec.name} {self.host}:{self.port} {self.spec.layout}>"

    # -- clock ---------------------------------------------------------------------------------

    def now_utc(self) -> datetime:
        """The instant the device's clock shows (skew included), aware, in UTC."""
        clock = self.spec.clock
        skew = timedelta(seconds=clock.skew_s)
        if clock.start is not None:
            elapsed = timedelta(seconds=time.monotonic() - self._started_mono)
            start = clock.start.replace(tzinfo=clock.tz()).astimezone(UTC)
            return start + elapsed + skew
        return datetime.now(UTC) + skew

    def now(self) -> datetime:
        """The device's local wall clock (naive), with its zone (DST included), start and skew."""
        return self.now_aware().replace(tzinfo=None)

    def now_aware(self) -> datetime:
        """The device clock with its UTC offset attached (the zone's DST rules apply)."""
        return self.now_utc().astimezone(self.spec.clock.tz())

    @property
    def uptime(self) -> timedelta:
        """How long the device has been up (since the fleet started, plus a fixed base)."""
        return timedelta(days=12, hours=3, seconds=time.monotonic() - self._started_mono)

    # -- host key ------------------------------------------------------------------------------

    @property
    def host_key(self) -> asyncssh.SSHKey:
        """The device's ed25519 host key (derived once, on first use)."""
        if self._host_key is None:
            self._host_key = host_key_for(self.spec.host_key_seed, self.spec.name)
        return self._host_key

    def replace_spec(self, spec: DeviceSpec) -> None:
        """Use a changed scenario entry from now on (the host key is derived again)."""
        self.spec = spec
        self._host_key = None

    # -- records -------------------------------------------------------------------------------

    @property
    def buffer_labels(self) -> tuple[str, ...]:
        """Labels of the device's buffers: ``("1", "3")`` (NE40E slots), ``("1/0", "1/1")``
        (SPUs), ``()`` for a device with one buffer."""
        keys = self.spec.buffers
        return () if keys == ((None, None),) else tuple(buffer_label(key) for key in keys)

    def _key(self, buffer: str | None) -> BufferKey | None:
        if buffer is None:
            return None
        for key in self._buffers:
            if buffer_label(key) == str(buffer):
                return key
        known = ", ".join(self.buffer_labels) or "none"
        raise KeyError(f"{self.name} has no buffer {buffer!r} (buffers: {known})")

    def records(self, buffer: str | None = None) -> list[Row]:
        """The records the device holds now, newest first: one buffer (at most 200) or all."""
        key = self._key(buffer)
        with self._lock:
            if key is not None:
                return list(self._buffers[key])
            if len(self._buffers) == 1:
                return list(next(iter(self._buffers.values())))
            return sorted(
                (row for rows in self._buffers.values() for row in rows), key=_newest_first
            )

    def records_utc(self, buffer: str | None = None) -> list[datetime]:
        """Ground truth: the UTC instant (aware) of each of ``records(buffer)``, same order."""
        return [row.utc for row in self.records(buffer) if row.utc is not None]

    def error_records(self, buffer: str | None = None) -> list[Row]:
        """``display ike error history`` records (NE40E), newest first."""
        key = self._key(buffer)
        with self._lock:
            keys = list(self._error_buffers) if key is None else [key]
            return sorted((row for k in keys for row in self._error_buffers[k]), key=_newest_first)

    @property
    def deleted_total(self) -> int:
        """Deletions ever held, including those that fell out of the 200-record rings."""
        with self._lock:
            return self._deleted_total

    def rendered_records(
        self, layout: Layout, buffer: str | None = None
    ) -> tuple[list[Row], list[str]]:
        """The records (newest first) and their table rows in ``layout``, rendered once."""
        with self._lock:
            generation = self._generation
            cached = self._rendered.get((layout, buffer))
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        rows = self.records(buffer)
        body = [render_row(row, layout) for row in rows]
        with self._lock:
            if self._generation == generation:
                self._rendered[(layout, buffer)] = (generation, rows, body)
        return rows, body

    def add_records(self, rows: Iterable[Row], buffer: str | None = None) -> None:
        """Add deletions given in device-local time (any order); each buffer keeps its newest
        200, newest first. A row goes to ``buffer``, else to the buffer of its slot/cpu, else
        to the first buffer."""
        forced = self._key(buffer)
        placed: dict[BufferKey, list[Row]] = {}
        for row in rows:
            key = forced or self._home(row)
            placed.setdefault(key, []).append(self._with_utc(replace(row, slot=key[0], cpu=key[1])))
        with self._lock:
            for key, new in placed.items():
                for row in reversed(sorted(new, key=_newest_first)):
                    self._buffers[key].appendleft(row)
                self._deleted_total += len(new)
            self._generation += 1

    def _home(self, row: Row) -> BufferKey:
        keys = list(self._buffers)
        for key in keys:
            if key == (row.slot, row.cpu) or (key[1] is None and key[0] == row.slot):
                return key
        return keys[0]

    def add_deletions(self, count: int = 1, buffer: str | None = None) -> list[Row]:
        """Generate ``count`` new deletions at the device's current time and add them: to
        ``buffer``, or spread over the buffers in turn."""
        if count <= 0:
            return []
        forced = self._key(buffer)
        keys = [forced] if forced is not None else list(self._buffers)
        now = self.now_utc().replace(tzinfo=None)
        rows: list[Row] = []
        with self._lock:
            for index, key in enumerate(keys):
                share = count // len(keys) + (1 if index < count % len(keys) else 0)
                if share:
                    burst = self._generators[key].burst(share, now)
                    rows += [self._from_utc(row, key) for row in burst]
        self.add_records(rows)
        return sorted(rows, key=_newest_first)

    def churn_tick(self, seconds: float) -> None:
        """Add the deletions the ``churn`` rate owes for ``seconds`` of running."""
        if self.spec.churn_per_minute <= 0:
            return
        self._churn_credit += self.spec.churn_per_minute * seconds / 60.0
        whole = int(self._churn_credit)
        if whole:
            self._churn_credit -= whole
            self.add_deletions(whole)

    # -- journal -------------------------------------------------------------------------------

    def new_session(self) -> int:
        """Number the next session on this device."""
        with self._lock:
            self._sessions += 1
            return self._sessions

    def record(self, session: int, kind: str, text: str) -> None:
        """Append to the journal (and its file, if the fleet writes journals)."""
        entry = JournalEntry(datetime.now().astimezone(), session, kind, text)
        with self._lock:
            self._journal.append(entry)
            if self._journal_file is not None:
                with self._journal_file.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry.to_dict()) + "\n")

    def journal(self) -> list[JournalEntry]:
        """Everything received so far, oldest first."""
        with self._lock:
            return list(self._journal)

    def clear_journal(self) -> None:
        """Forget the journal (the file, if any, is kept)."""
        with self._lock:
            self._journal.clear()


def _newest_first(row: Row) -> float:
    """Sort key: newest first, by the UTC instant (local times repeat at the end of DST)."""
    return -(row.utc or row.time.replace(tzinfo=UTC)).timestamp()
