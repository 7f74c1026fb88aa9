"""The sandbox's SQLite file: its schema, how connections are opened, and transactions.

Connections run in autocommit mode (`isolation_level=None`) so that every transaction is
explicit: writers take the database's write lock up front with `BEGIN IMMEDIATE`, which makes
check-then-write sequences atomic across threads and processes; readers use a deferred `BEGIN`
so that a read spanning several statements sees one snapshot (WAL mode).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from transfer_runner.errors import ConfigError
from transfer_runner.private_files import create_private

__all__ = [
    "SCHEMA_VERSION",
    "BUSY_TIMEOUT_MS",
    "DDL",
    "connect",
    "check_schema",
    "LATE_INDEX",
    "create_schema",
    "create_indexes",
    "read",
    "write",
    "utc_now",
    "to_text",
    "from_text",
]

SCHEMA_VERSION = "2"
BUSY_TIMEOUT_MS = 30_000

DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL CHECK (type IN ('direct', 'reseller', 'resold')),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    parent TEXT REFERENCES accounts (id),
    users INTEGER NOT NULL CHECK (users >= 0),
    max_domains INTEGER NOT NULL CHECK (max_domains >= 1),
    services TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    cancelled_at TEXT
);
CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (id),
    attached_at TEXT NOT NULL
);
CREATE INDEX domains_by_account ON domains (account);
CREATE TABLE billing (
    account TEXT PRIMARY KEY REFERENCES accounts (id),
    price TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL
);
CREATE TABLE tickets (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES accounts (id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    resolution TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE comments (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ticket TEXT NOT NULL REFERENCES tickets (id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT
);
CREATE INDEX comments_by_ticket ON comments (ticket, seq);
CREATE TABLE messages (
    account TEXT NOT NULL REFERENCES accounts (id),
    store TEXT NOT NULL CHECK (store IN ('quarantine', 'archive')),
    id TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    seed INTEGER,
    idx INTEGER,
    body TEXT CHECK (body IN ('text', 'mail-like')),
    raw BLOB,
    CHECK ((raw IS NULL) = (seed IS NOT NULL AND idx IS NOT NULL AND body IS NOT NULL))
);
CREATE UNIQUE INDEX messages_by_id ON messages (account, store, id);
-- mail held back by the mail flow while no active account holds its domain (mailflow.py)
CREATE TABLE mail_queue (
    seq INTEGER PRIMARY KEY,
    domain TEXT NOT NULL,
    store TEXT NOT NULL CHECK (store IN ('quarantine', 'archive')),
    size INTEGER NOT NULL,
    body TEXT NOT NULL CHECK (body IN ('text', 'mail-like')),
    queued_at TEXT NOT NULL
);
CREATE TABLE charges (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount TEXT NOT NULL,
    reason TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE credits (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES accounts (id),
    amount TEXT NOT NULL,
    reason TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    op TEXT NOT NULL,
    idempotency_key TEXT,
    account TEXT,
    replayed INTEGER NOT NULL,
    error TEXT,
    at TEXT NOT NULL
);
"""


LATE_INDEX = "CREATE INDEX messages_by_age ON messages (account, store, received_at, id)"


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the sandbox file (ConfigError if it is missing, unless `create`).

    `check_same_thread=False` only lets the owner close every thread's connection at the end;
    each connection is still used by one thread at a time.
    """
    if not create and not path.is_file():
        raise ConfigError(
            f"no sandbox platform at {path}: "
            "create one with `transfer-runner sandbox init PATH --fixture FILE`"
        )
    mode = "rwc" if create else "rw"
    try:
        if create:
            create_private(path)  # the sandbox holds (test) customers' mail: 0600 as the state
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(f"cannot open sandbox platform {path}: {exc}") from exc
    return conn


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """ConfigError unless the file is a sandbox of this schema version; then enable WAL."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a sandbox platform: {exc}") from exc
    if row is None or row[0] != SCHEMA_VERSION:
        found = row[0] if row else "none"
        raise ConfigError(
            f"{path} is a sandbox of schema version {found}, this version needs "
            f"{SCHEMA_VERSION}: re-create it with `transfer-runner sandbox init --force`"
        )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table in an empty database and record the schema version.

    The caller then fills the tables and calls `create_indexes`, in the same transaction.
    """
    conn.executescript(DDL)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))


def create_indexes(conn: sqlite3.Connection) -> None:
    """The indexes that are cheaper to build once the messages are in (a quarter of the build
    time otherwise): `messages_by_age` lets the mail flow find the oldest mail at once."""
    conn.execute(LATE_INDEX)


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction holding the write lock from its first statement (`BEGIN IMMEDIATE`)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every statement inside sees the same snapshot."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, to the microsecond."""
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """A stored time: ISO 8601 in UTC (naive datetimes are refused: they are a bug)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def from_text(text: str) -> datetime:
    """The inverse of `to_text`."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
