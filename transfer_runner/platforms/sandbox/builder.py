"""Writing a validated fixture into a new sandbox file.

The database is built in a temporary file next to the target, with journaling off (nothing
else can see it yet), then switched to WAL and moved into place in one rename, so a crash or a
bad fixture never leaves a half-built sandbox behind. Generated messages are stored as
metadata only (id, size, SHA-256, time, seed, index, body kind) and inserted in batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from transfer_runner.errors import ConfigError
from transfer_runner.platforms.base import STORES
from transfer_runner.platforms.sandbox import db
from transfer_runner.platforms.sandbox.messages import generate_message

__all__ = ["build_database"]

_MessageRow = tuple[str, str, str, int, str, str, int, int, str]


def build_database(target: Path, fixture: dict[str, Any], now: datetime) -> dict[str, int]:
    """Create `target` from a normalized fixture (see `load_fixture`); returns summary counts.

    `now` stamps what the fixture gives no time (account creation, tickets without one).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with closing(db.connect(temporary, create=True)) as conn:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            db.create_schema(conn)  # executescript commits by itself: not in the transaction
            with db.write(conn):
                summary = _fill(conn, fixture, now)
                db.create_indexes(conn)
            conn.execute("PRAGMA journal_mode = WAL")
        for suffix in ("-wal", "-shm"):  # a replaced sandbox's WAL must not meet the new file
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
    except OSError as exc:
        raise ConfigError(f"cannot create sandbox {target}: {exc.strerror or exc}") from exc
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot create sandbox {target}: {exc}") from exc
    finally:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
    return summary


def _fill(conn: sqlite3.Connection, fixture: dict[str, Any], now: datetime) -> dict[str, int]:
    summary = {"accounts": 0, "domains": 0, "tickets": 0, "comments": 0, "messages": 0, "bytes": 0}
    stamp = db.to_text(now)
    # a parent may come after its children in the file: check references at commit
    conn.execute("PRAGMA defer_foreign_keys = ON")
    conn.execute("INSERT INTO meta VALUES ('seed', ?)", (str(fixture["seed"]),))
    for account in fixture["accounts"]:
        _account(conn, account, stamp)
        summary["accounts"] += 1
        summary["domains"] += len(account["domains"])
    for account in fixture["accounts"]:
        for store in STORES:
            count, size = _messages(conn, account, store)
            summary["messages"] += count
            summary["bytes"] += size
    for ticket in fixture["tickets"]:
        summary["comments"] += _ticket(conn, ticket, stamp)
        summary["tickets"] += 1
    return summary


def _account(conn: sqlite3.Connection, account: dict[str, Any], stamp: str) -> None:
    conn.execute(
        "INSERT INTO accounts (id, type, name, status, parent, users, max_domains, services, "
        "seed, created_at, cancelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account["id"],
            account["type"],
            account["name"],
            account["status"],
            account["parent"],
            account["users"],
            account["max_domains"],
            json.dumps(account["services"]),
            account["seed"],
            stamp,
            stamp if account["status"] == "cancelled" else None,
        ),
    )
    conn.executemany(
        "INSERT INTO domains VALUES (?, ?, ?)",
        [(domain, account["id"], stamp) for domain in account["domains"]],
    )
    billing = account["billing"]
    if billing is not None:
        conn.execute(
            "INSERT INTO billing VALUES (?, ?, ?, ?)",
            (account["id"], billing["price"], billing["period_start"], billing["period_end"]),
        )


def _messages(conn: sqlite3.Connection, account: dict[str, Any], store: str) -> tuple[int, int]:
    spec = account[store]
    totals = [0, 0]

    def rows() -> Iterator[_MessageRow]:
        for index in range(1, spec["messages"] + 1):
            message = generate_message(
                account["seed"], account["id"], store, index, spec["size"], spec["body"]
            )
            totals[0] += 1
            totals[1] += len(message.raw)
            yield (
                account["id"],
                store,
                message.id,
                len(message.raw),
                hashlib.sha256(message.raw).hexdigest(),
                db.to_text(message.received_at),
                account["seed"],
                index,
                spec["body"],
            )

    conn.executemany(
        "INSERT INTO messages (account, store, id, size, sha256, received_at, seed, idx, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    return totals[0], totals[1]


def _ticket(conn: sqlite3.Connection, ticket: dict[str, Any], stamp: str) -> int:
    created = ticket["created_at"] or stamp
    conn.execute(
        "INSERT INTO tickets (id, account, subject, body, status, resolution, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            ticket["id"],
            ticket["account"],
            ticket["subject"],
            ticket["body"],
            ticket["status"],
            ticket["resolution"],
            created,
        ),
    )
    for body in ticket["comments"]:
        seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM comments").fetchone()[0]
        conn.execute(
            "INSERT INTO comments VALUES (?, ?, ?, ?, ?, NULL)",
            (seq, f"CM-{seq}", ticket["id"], body, created),
        )
    return len(ticket["comments"])
