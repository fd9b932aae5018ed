"""The running state of one mock device: its records, clock, journal and host key.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mock_devices.scenario import MAX_RECORDS, DeviceSpec, RecordGenerator
from mock_devices.tables import Layout, Row, render_row


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
        self._generator = RecordGenerator(spec.records.seed, spec.records.peer_pool)
        self._records: deque[Row] = deque(maxlen=MAX_RECORDS)
        initial = (
            self._generator.history(spec.records.generate_count, self.now())
            if spec.records.generate_count
            else list(spec.records.rows)
        )
        self._records.extend(initial[:MAX_RECORDS])
        self._journal: list[JournalEntry] = []
        self._sessions = 0
        self._deleted_total = len(self._records)
        self._churn_credit = 0.0
        self._journal_file = journal_dir / f"{spec.name}.jsonl" if journal_dir else None
        self._host_key: asyncssh.SSHKey | None = None
        # The table rows as printed, rendered once per change of the records (per layout):
        # formatting 200 rows was a third of the fleet's CPU per session.
        self._generation = 0
        self._rendered: tuple[int, str, list[str]] | None = None

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

    def now(self) -> datetime:
        """The device's local wall clock (naive), with its zone, fixed start and skew."""
        clock = self.spec.clock
        skew = timedelta(seconds=clock.skew_s)
        if clock.start is not None:
            elapsed = timedelta(seconds=time.monotonic() - self._started_mono)
            return clock.start + elapsed + skew
        return (datetime.now(clock.tz()) + skew).replace(tzinfo=None)

    def now_aware(self) -> datetime:
        """The device clock with its UTC offset attached."""
        local = self.now()
        return local.replace(tzinfo=self.spec.clock.tz())

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

    def records(self) -> list[Row]:
        """The records the device holds now, newest first (at most 200)."""
        with self._lock:
            return list(self._records)

    @property
    def deleted_total(self) -> int:
        """Deletions ever held, including those that fell out of the 200-record ring."""
        with self._lock:
            return self._deleted_total

    def rendered_records(self, layout: Layout) -> tuple[list[Row], list[str]]:
        """The records (newest first) and their table rows in ``layout``, rendered once."""
        with self._lock:
            rows = list(self._records)
            generation = self._generation
            cached = self._rendered
        if cached is not None and cached[0] == generation and cached[1] == layout:
            return rows, cached[2]
        body = [render_row(row, layout) for row in rows]
        with self._lock:
            if self._generation == generation:
                self._rendered = (generation, layout, body)
        return rows, body

    def add_records(self, rows: Iterable[Row]) -> None:
        """Add deletions (any order); the ring keeps the newest 200, newest first."""
        new = sorted(rows, key=lambda row: row.time, reverse=True)
        with self._lock:
            for row in reversed(new):
                self._records.appendleft(row)
            self._deleted_total += len(new)
            self._generation += 1

    def add_deletions(self, count: int = 1) -> list[Row]:
        """Generate ``count`` new deletions at the device's current time and add them."""
        if count <= 0:
            return []
        with self._lock:
            rows = self._generator.burst(count, self.now())
        self.add_records(rows)
        return rows

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
