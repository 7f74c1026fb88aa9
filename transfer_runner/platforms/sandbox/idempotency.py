"""Idempotent, audited writes of the sandbox: each write runs once per idempotency key (a
repeat with the same request replays the first result; with another request it is a
`Conflict`), and every write call, replayed or refused, leaves an audit row."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from transfer_runner.errors import Conflict, PlatformError
from transfer_runner.platforms.sandbox import db, operations, records

__all__ = ["Write", "count_audit", "write_once"]

W = TypeVar("W", bound=records.WriteResult)


@dataclass(frozen=True)
class Write:
    """One write call: its operation, idempotency key, account and request (fingerprinted)."""

    op: str
    key: str
    account: str | None
    request: dict[str, Any]


def write_once(
    conn: sqlite3.Connection,
    lock: threading.Lock,
    now: Callable[[], datetime],
    write: Write,
    action: Callable[[sqlite3.Connection, datetime], W],
    decode: Callable[[str], W],
) -> W:
    """Run `action` once per idempotency key, in one `BEGIN IMMEDIATE` transaction that looks
    the key up (same request: replay the stored first result; other request: `Conflict`),
    performs the operation, stores its result under the key and appends an audit row. A
    refused write rolls back, then gets its own audit row."""
    op, key, account = write.op, write.key, write.account
    try:
        if not isinstance(key, str) or not key.strip():
            raise operations.bad_request(op, "every write needs a non-empty idempotency key")
        fingerprint = _fingerprint(op, write.request)
        # Queue this process's writers on a lock rather than in SQLite's busy handler,
        # which polls with sleeps of up to 100 ms.
        with lock, db.write(conn):
            found = conn.execute(
                "SELECT operation, fingerprint, result FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if found is not None:
                _same_request(op, key, fingerprint, found[0], found[1])
                _audit(conn, op, key, account, True, None)
                return decode(found[2])
            moment = now()
            result = action(conn, moment)
            conn.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                (key, op, fingerprint, records.encode(result), db.to_text(moment)),
            )
            _audit(conn, op, key, account, False, None)
        return result
    except PlatformError as exc:
        _audit_refusal(conn, op, key, account, str(exc))
        raise
    except sqlite3.Error as exc:
        error = _database_error(op, exc)
        _audit_refusal(conn, op, key, account, str(error))
        raise error from exc


def _audit_refusal(
    conn: sqlite3.Connection, op: str, key: Any, account: str | None, error: str
) -> None:
    # The refused write rolled back; its audit row is written on its own. If the database
    # itself is failing, the original error matters more than a lost audit row.
    try:
        with db.write(conn):
            _audit(conn, op, key if isinstance(key, str) else None, account, False, error)
    except sqlite3.Error:
        pass


def count_audit(conn: sqlite3.Connection) -> int:
    """How many write calls the sandbox has ever taken (replays and refusals included)."""
    return int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])


def _audit(
    conn: sqlite3.Connection,
    op: str,
    key: str | None,
    account: str | None,
    replayed: bool,
    error: str | None,
) -> None:
    # The audit log orders write calls against other systems (S3, the state store): it keeps
    # the real clock, whatever clock the records' business times come from.
    conn.execute(
        "INSERT INTO audit (op, idempotency_key, account, replayed, error, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (op, key, account, int(replayed), error, db.to_text(db.utc_now())),
    )


def _same_request(op: str, key: str, fingerprint: str, first_op: str, first: str) -> None:
    if first_op != op:
        raise Conflict(op, f"idempotency key {key!r} was already used for {first_op}")
    if first != fingerprint:
        raise Conflict(
            op,
            f"idempotency key {key!r} was already used for a {op} with other arguments; "
            "a key may only be repeated with the same request",
        )


def _database_error(op: str, exc: sqlite3.Error) -> PlatformError:
    if isinstance(exc, sqlite3.IntegrityError):  # a rule the checks above missed: still a 409
        return Conflict(op, f"refused by the platform's rules: {exc}")
    return PlatformError(op, f"sandbox database error: {exc}", 503)


def _fingerprint(op: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"operation": op, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
