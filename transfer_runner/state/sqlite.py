"""The embedded state store: one SQLite file (`sqlite:PATH`), safe for threads and processes.

WAL journal, a 30 s busy timeout, one connection per thread. Every write is one short
transaction; those that read before writing (locks, ticket claims) use `BEGIN IMMEDIATE` so
that two processes can never both decide they won. The `events` table is append-only,
enforced by triggers. `PRAGMA user_version` and the `schema_version` table record the schema
so that later versions can migrate a file written by this one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from transfer_runner.errors import StateError
from transfer_runner.private_files import create_private
from transfer_runner.state.base import (
    ComposedTransferState,
    LockInfo,
    RunInfo,
    StepRecord,
    TransferRecord,
)
from transfer_runner.state.codec import to_json
from transfer_runner.state.sqlite_schema import (
    SCHEMA_VERSION,
    check_readable,
    insert_event,
    lock_row,
    migrate,
    row_fields,
    run_row,
    step_row,
    transfer_row,
    upsert_transfer,
)
from transfer_runner.utc import fixed_utc

__all__ = ["SCHEMA_VERSION", "SqliteStateStore"]

_BUSY_TIMEOUT_MS = 30000


def _now() -> datetime:
    return datetime.now(UTC)


class SqliteStateStore(ComposedTransferState):
    """StateStore on one SQLite file. `read_only=True` never writes nor creates the file."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._local = threading.local()
        self._all: dict[threading.Thread, sqlite3.Connection] = {}
        self._guard_lock = threading.Lock()
        # One writer of this process at a time waits for SQLite's write lock; the others wait
        # here and wake as soon as it commits. Left to SQLite's busy handler, they would poll
        # with sleeps of up to 100 ms, which serialised a 32-fork run on its state file.
        self._write_lock = threading.Lock()
        self._closed = False
        # A missing file read-only is an empty store: an empty in-memory schema per thread.
        self._empty = read_only and not self.path.exists()
        if not read_only:
            try:
                create_private(self.path)  # it names customers: 0600, WAL and -shm alike
            except OSError as exc:
                raise StateError(f"cannot create the state file {self.path}: {exc}") from exc
        self._conn()  # open, check and migrate now: errors belong to open time

    # -- connections ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._guard_lock:
            if self._closed:
                raise StateError(f"state store {self.path} is closed")
            self._close_orphans()
            with self._errors("open"):
                conn = self._connect()
            self._all[threading.current_thread()] = conn
        self._local.conn = conn
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (lease heartbeats, finished forks),
        so that a long run over thousands of transfers does not run out of file descriptors."""
        for thread in [t for t in self._all if not t.is_alive()]:
            self._all.pop(thread).close()

    def _connect(self) -> sqlite3.Connection:
        if self._empty:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            migrate(conn)
            return conn
        if self.read_only:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            check_readable(conn, self.path)
            return conn
        conn = sqlite3.connect(
            str(self.path),
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL with synchronous=NORMAL survives a killed process (kill -9) whole; a power cut
        # may lose the last commits but never corrupts. Losing a record is safe: every
        # platform write carries an idempotency key, so redoing a step replays (I3). FULL
        # would fsync on every commit: ~15x slower per record, serialising all forks.
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
        return conn

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"state {self.path}: {what} failed: {exc}") from exc

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, `BEGIN IMMEDIATE` so the write lock is taken up front."""
        if self.read_only:
            raise StateError(f"state {self.path} is open read-only; cannot {what}")
        conn = self._conn()
        with self._write_lock, self._errors(what):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _rows(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        with self._errors(what):
            cur = conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        with self._guard_lock:
            self._closed = True
            conns, self._all = list(self._all.values()), {}
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None:
        """Record a new run; StateError if its id is already used."""
        with self._tx("start run") as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchone():
                raise StateError(f"run {run.id} already exists in {self.path}")
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    fixed_utc(run.started_at),
                    run.user,
                    run.ci_job,
                    run.git_commit,
                    run.command,
                    fixed_utc(run.finished_at) if run.finished_at else None,
                    to_json(run.totals),
                ),
            )

    def finish_run(self, run_id: str, finished_at: datetime, totals: dict[str, int]) -> None:
        """Set a run's end time and totals; StateError if the run is unknown."""
        with self._tx("finish run") as conn:
            cur = conn.execute(
                "UPDATE runs SET finished_at = ?, totals = ? WHERE id = ?",
                (fixed_utc(finished_at), to_json(totals), run_id),
            )
            if cur.rowcount != 1:
                raise StateError(f"no run {run_id} in {self.path}")

    def get_run(self, run_id: str) -> RunInfo | None:
        rows = self._rows("read run", "SELECT * FROM runs WHERE id = ?", (run_id,))
        return run_row(rows[0]) if rows else None

    def last_run(self) -> RunInfo | None:
        """The most recently started apply run, or None."""
        runs = self.recent_runs(1)
        return runs[0] if runs else None

    def recent_runs(self, limit: int) -> list[RunInfo]:
        """The `limit` most recently started apply runs, newest first."""
        rows = self._rows(
            "read runs",
            "SELECT * FROM runs WHERE command = 'apply' "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (max(0, limit),),
        )
        return [run_row(row) for row in rows]

    # -- transfers -----------------------------------------------------------------------
    def get_transfer(self, name: str) -> TransferRecord | None:
        rows = self._rows("read transfer", "SELECT * FROM transfers WHERE name = ?", (name,))
        return transfer_row(rows[0]) if rows else None

    def list_transfers(self) -> list[TransferRecord]:
        rows = self._rows("read transfers", "SELECT * FROM transfers ORDER BY name")
        return [transfer_row(r) for r in rows]

    def set_transfer(self, record: TransferRecord) -> None:
        with self._tx("set transfer") as conn:
            upsert_transfer(conn, record)

    # -- steps ---------------------------------------------------------------------------
    def record_step(self, step: StepRecord) -> None:
        """Store the step and append a `step` event, in one transaction."""
        outputs = to_json(step.outputs)
        event = {
            "index": step.index,
            "name": step.name,
            "module": step.module,
            "status": step.status,
            "message": step.message,
        }
        with self._tx("record step") as conn:
            conn.execute(
                "INSERT INTO steps (run_id, transfer, idx, name, module, status, started_at, "
                "ended_at, outputs, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    step.run_id,
                    step.transfer,
                    step.index,
                    step.name,
                    step.module,
                    step.status,
                    fixed_utc(step.started_at),
                    fixed_utc(step.ended_at),
                    outputs,
                    step.message,
                ),
            )
            insert_event(conn, step.run_id, step.transfer, "step", event)

    def latest_steps(self, transfer: str) -> dict[str, StepRecord]:
        """The last record of each step (by task name) of a transfer, across runs."""
        rows = self._rows(
            "read steps",
            "SELECT * FROM steps WHERE seq IN "
            "(SELECT MAX(seq) FROM steps WHERE transfer = ? GROUP BY name) ORDER BY seq",
            (transfer,),
        )
        return {r["name"]: step_row(r) for r in rows}

    def run_steps(self, run_id: str) -> list[StepRecord]:
        """Every step recorded by a run, in the order recorded."""
        rows = self._rows(
            "read steps", "SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [step_row(r) for r in rows]

    # -- ticket claims -------------------------------------------------------------------
    def claim_ticket(self, ticket_id: str, transfer: str) -> str:
        """Claim a ticket for a transfer; returns the transfer that holds it (first wins)."""
        with self._tx("claim ticket") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO ticket_claims VALUES (?, ?, ?)",
                (ticket_id, transfer, fixed_utc(_now())),
            )
            row = conn.execute(
                "SELECT transfer FROM ticket_claims WHERE ticket = ?", (ticket_id,)
            ).fetchone()
        return str(row[0])

    def release_ticket(self, ticket_id: str, transfer: str) -> bool:
        """Release `transfer`'s claim on a ticket (`abort`); False if it holds none."""
        with self._tx("release ticket") as conn:
            cur = conn.execute(
                "DELETE FROM ticket_claims WHERE ticket = ? AND transfer = ?", (ticket_id, transfer)
            )
            return cur.rowcount == 1

    def ticket_claim(self, ticket_id: str) -> str | None:
        """The transfer that claimed a ticket, or None."""
        rows = self._rows(
            "read ticket claim",
            "SELECT transfer FROM ticket_claims WHERE ticket = ?",
            (ticket_id,),
        )
        return str(rows[0]["transfer"]) if rows else None

    # -- events --------------------------------------------------------------------------
    def append_event(
        self, run_id: str, transfer: str | None, kind: str, data: dict[str, Any]
    ) -> None:
        """Append one event to the log (never updated nor deleted)."""
        with self._tx("append event") as conn:
            insert_event(conn, run_id, transfer, kind, data)

    def events(self, transfer: str | None = None) -> list[dict[str, Any]]:
        """Events in the order appended: dicts with seq, at, run_id, transfer, kind, data."""
        if transfer is None:
            rows = self._rows("read events", "SELECT * FROM events ORDER BY seq")
        else:
            rows = self._rows(
                "read events",
                "SELECT * FROM events WHERE transfer = ? ORDER BY seq",
                (transfer,),
            )
        return [row_fields(r) for r in rows]

    # -- locks ---------------------------------------------------------------------------
    def acquire_lock(
        self,
        name: str,
        owner: str,
        run_id: str,
        host: str,
        ttl_s: float,
        *,
        pid: int | None = None,
        machine: str = "",
        replacing: str | None = None,
        record: TransferRecord | None = None,
    ) -> bool:
        """Take the lease if free, expired, already ours, or held by the run `replacing`
        (and write `record` with it); False if another live lease holds it."""
        now = _now()
        with self._tx("acquire lock") as conn:
            row = conn.execute(
                "SELECT run_id, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] not in (run_id, replacing) and row[1] >= fixed_utc(now):
                return False
            expires = now + timedelta(seconds=ttl_s)
            conn.execute(
                "INSERT OR REPLACE INTO locks (name, owner, run_id, host, acquired_at, "
                "expires_at, pid, machine) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, owner, run_id, host, fixed_utc(now), fixed_utc(expires), pid, machine),
            )
            if record is not None:
                upsert_transfer(conn, record)
        return True

    def renew_lock(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our own lease; False if we no longer hold it."""
        expires = fixed_utc(_now() + timedelta(seconds=ttl_s))
        with self._tx("renew lock") as conn:
            cur = conn.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND run_id = ?",
                (expires, name, run_id),
            )
            return cur.rowcount == 1

    def release_lock(self, name: str, run_id: str) -> None:
        """Release our own lease (no-op if we do not hold it)."""
        with self._tx("release lock") as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND run_id = ?", (name, run_id))

    def get_lock(self, name: str) -> LockInfo | None:
        rows = self._rows("read lock", "SELECT * FROM locks WHERE name = ?", (name,))
        return lock_row(rows[0]) if rows else None

    def force_unlock(self, name: str) -> LockInfo | None:
        """Remove a lock whoever holds it; returns what was removed."""
        with self._tx("force unlock") as conn:
            cur = conn.execute("SELECT * FROM locks WHERE name = ?", (name,))
            cur.row_factory = sqlite3.Row
            row = cur.fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM locks WHERE name = ?", (name,))
        return lock_row(row)
