"""The SQLite state store's schema: its versions and migrations (`PRAGMA user_version` and
the `schema_version` table), its rows read back as records, and records written as rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transfer_runner.errors import StateError
from transfer_runner.state.base import LockInfo, RunInfo, StepRecord, TransferRecord
from transfer_runner.state.codec import to_json
from transfer_runner.utc import fixed_utc, parse_utc

__all__ = [
    "insert_event",
    "upsert_transfer",
    "SCHEMA_VERSION",
    "check_readable",
    "row_fields",
    "lock_row",
    "migrate",
    "run_row",
    "step_row",
    "transfer_row",
    "user_version",
]


_SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY, started_at TEXT NOT NULL, user TEXT NOT NULL, ci_job TEXT,
        git_commit TEXT, command TEXT NOT NULL, finished_at TEXT, totals TEXT NOT NULL)""",
    "CREATE INDEX runs_started ON runs (command, started_at)",
    """CREATE TABLE transfers (
        name TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL, status TEXT NOT NULL,
        updated_at TEXT NOT NULL, last_run_id TEXT)""",
    """CREATE TABLE steps (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, transfer TEXT NOT NULL,
        idx INTEGER NOT NULL, name TEXT NOT NULL, module TEXT NOT NULL, status TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT NOT NULL, outputs TEXT NOT NULL,
        message TEXT NOT NULL)""",
    "CREATE INDEX steps_by_transfer ON steps (transfer, name, seq)",
    "CREATE INDEX steps_by_run ON steps (run_id, seq)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, run_id TEXT NOT NULL,
        transfer TEXT, kind TEXT NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX events_by_transfer ON events (transfer, seq)",
    """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TABLE locks (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, run_id TEXT NOT NULL, host TEXT NOT NULL,
        acquired_at TEXT NOT NULL, expires_at TEXT NOT NULL)""",
    """CREATE TABLE ticket_claims (
        ticket TEXT NOT NULL UNIQUE, transfer TEXT NOT NULL, claimed_at TEXT NOT NULL)""",
)


# v2: which playbook completed a transfer, so a re-apply can trust the record (engine.runner).
_SCHEMA_V2: tuple[str, ...] = (
    "ALTER TABLE transfers ADD COLUMN playbook_sha256 TEXT NOT NULL DEFAULT ''",
)


# v3: which process holds a lease, so a run on the same machine takes over a dead one's.
_SCHEMA_V3: tuple[str, ...] = (
    "ALTER TABLE locks ADD COLUMN pid INTEGER",
    "ALTER TABLE locks ADD COLUMN machine TEXT NOT NULL DEFAULT ''",
)


# Append a tuple of statements per new version; never edit a released one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)


SCHEMA_VERSION = len(_MIGRATIONS)


# -- schema --------------------------------------------------------------------------------
def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; concurrent openers serialise on BEGIN IMMEDIATE."""
    if user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(conn)
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state database has schema version {version}, newer than this "
                f"transfer-runner understands ({SCHEMA_VERSION}); upgrade transfer-runner"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?)", (number, fixed_utc(datetime.now(UTC)))
            )
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_readable(conn: sqlite3.Connection, path: Path) -> None:
    version = user_version(conn)
    if version == 0:
        raise StateError(f"{path} is not a transfer-runner state database (no schema)")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path} has state schema version {version}, newer than this transfer-runner "
            f"understands ({SCHEMA_VERSION}); upgrade transfer-runner"
        )


# Column names are the record field names, so a row maps onto its dataclass directly.
_TIME_COLUMNS = frozenset(
    {"at", "started_at", "ended_at", "finished_at", "updated_at", "acquired_at", "expires_at"}
)


_JSON_COLUMNS = frozenset({"totals", "outputs", "data"})


def row_fields(row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in zip(row.keys(), tuple(row), strict=True):  # iterating a Row gives values
        if value is not None and key in _TIME_COLUMNS:
            out[key] = parse_utc(value)
        elif key in _JSON_COLUMNS:
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


def run_row(row: sqlite3.Row) -> RunInfo:
    return RunInfo(**row_fields(row))


def transfer_row(row: sqlite3.Row) -> TransferRecord:
    return TransferRecord(**row_fields(row))


def step_row(row: sqlite3.Row) -> StepRecord:
    fields = row_fields(row)
    del fields["seq"]
    fields["index"] = fields.pop("idx")
    return StepRecord(**fields)


def lock_row(row: sqlite3.Row) -> LockInfo:
    return LockInfo(**row_fields(row))


# -- records -> rows -----------------------------------------------------------------------
def insert_event(
    conn: sqlite3.Connection, run_id: str, transfer: str | None, kind: str, data: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO events (at, run_id, transfer, kind, data) VALUES (?, ?, ?, ?, ?)",
        (fixed_utc(datetime.now(UTC)), run_id, transfer, kind, to_json(data)),
    )


def upsert_transfer(conn: sqlite3.Connection, record: TransferRecord) -> None:
    conn.execute(
        "INSERT INTO transfers (name, manifest_sha256, status, updated_at, last_run_id, "
        "playbook_sha256) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "manifest_sha256 = excluded.manifest_sha256, status = excluded.status, "
        "updated_at = excluded.updated_at, last_run_id = excluded.last_run_id, "
        "playbook_sha256 = excluded.playbook_sha256",
        (
            record.name,
            record.manifest_sha256,
            record.status,
            fixed_utc(record.updated_at),
            record.last_run_id,
            record.playbook_sha256,
        ),
    )
