"""`dump_sandbox`: the sandbox's whole state as one JSON-serialisable object
(README: "The sandbox platform").

It reads the file directly in one snapshot, so dumping is not a platform call: it adds nothing
to the audit log, and `writes` (the number of audit rows) can prove that a run wrote nothing.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

from transfer_runner.errors import ConfigError
from transfer_runner.platforms.sandbox import db
from transfer_runner.platforms.sandbox.records import money

__all__ = ["dump_sandbox"]


def dump_sandbox(db_path: str | Path) -> dict[str, Any]:
    """`{"accounts", "tickets", "charges", "credits", "writes", "mail"}`, in creation order.

    Amounts are strings with two decimals ("25.00"); times are ISO 8601 UTC. `mail` counts
    the mail flow's deliveries and expiries and the messages it holds back, by domain.
    """
    path = Path(db_path)
    with closing(db.connect(path)) as conn:
        db.check_schema(conn, path)
        try:
            with db.read(conn):
                return {
                    "accounts": _accounts(conn),
                    "tickets": _tickets(conn),
                    "charges": _payments(conn, "charges"),
                    "credits": _payments(conn, "credits"),
                    "writes": conn.execute("SELECT count(*) FROM audit").fetchone()[0],
                    "mail": _mail(conn),
                }
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot read sandbox {path}: {exc}") from exc


def _accounts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    domains: dict[str, list[str]] = {}
    for domain, account in conn.execute("SELECT domain, account FROM domains ORDER BY domain"):
        domains.setdefault(account, []).append(domain)
    counts = {
        (account, store): count
        for account, store, count in conn.execute(
            "SELECT account, store, count(*) FROM messages GROUP BY account, store"
        )
    }
    held = _held_back(conn)
    billing = {
        row[0]: {"price": _amount(row[1]), "period_start": row[2], "period_end": row[3]}
        for row in conn.execute("SELECT account, price, period_start, period_end FROM billing")
    }
    out = []
    for row in conn.execute(
        "SELECT id, type, name, parent, status, users, max_domains, services "
        "FROM accounts ORDER BY seq"
    ):
        account_id = row[0]
        entry: dict[str, Any] = {
            "id": account_id,
            "type": row[1],
            "name": row[2],
            "parent": row[3],
            "status": row[4],
            "domains": domains.get(account_id, []),
            "users": row[5],
            "max_domains": row[6],
            "services": json.loads(row[7]),
            "quarantine_messages": counts.get((account_id, "quarantine"), 0),
            "archive_messages": counts.get((account_id, "archive"), 0),
            "held_back_messages": sum(held.get(d, 0) for d in domains.get(account_id, [])),
        }
        if account_id in billing:
            entry["billing"] = billing[account_id]
        out.append(entry)
    return out


def _held_back(conn: sqlite3.Connection) -> dict[str, int]:
    """Messages the mail flow holds back, by domain (see mailflow.py)."""
    rows = conn.execute("SELECT domain, count(*) FROM mail_queue GROUP BY domain ORDER BY domain")
    return {domain: count for domain, count in rows}


def _mail(conn: sqlite3.Connection) -> dict[str, Any]:
    counters = dict(
        conn.execute("SELECT key, value FROM meta WHERE key IN ('mail_delivered', 'mail_expired')")
    )
    held = _held_back(conn)
    return {
        "delivered": int(counters.get("mail_delivered", 0)),
        "expired": int(counters.get("mail_expired", 0)),
        "held_back": sum(held.values()),
        "held_back_by_domain": held,
    }


def _tickets(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    comments: dict[str, list[str]] = {}
    for ticket, body in conn.execute("SELECT ticket, body FROM comments ORDER BY seq"):
        comments.setdefault(ticket, []).append(body)
    return [
        {
            "id": row[0],
            "account": row[1],
            "subject": row[2],
            "body": row[3],
            "status": row[4],
            "resolution": row[5],
            "created_at": row[6],
            "comments": comments.get(row[0], []),
        }
        for row in conn.execute(
            "SELECT id, account, subject, body, status, resolution, created_at "
            "FROM tickets ORDER BY seq"
        )
    ]


def _payments(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    return [
        {
            "id": row[0],
            "account": row[1],
            "amount": _amount(row[2]),
            "reason": row[3],
            "idempotency_key": row[4],
            "created_at": row[5],
        }
        for row in conn.execute(
            f"SELECT id, account, amount, reason, idempotency_key, created_at FROM {table} "
            "ORDER BY seq"
        )
    ]


def _amount(text: str) -> str:
    return str(money(Decimal(text)))
