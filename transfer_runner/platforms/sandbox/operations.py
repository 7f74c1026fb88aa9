"""The sandbox's writes, each run inside an open write transaction, enforcing the platform's rules.

These functions know nothing of idempotency keys or the audit log (the platform wraps them);
they check the rules and raise `NotFound`, `Conflict`, `AccountCancelled` or a 400
`PlatformError` for a malformed request. Raising rolls the whole transaction back, which is
what makes `move_domain` atomic: detach and attach commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from decimal import Decimal

from transfer_runner.domains import normalize_domain
from transfer_runner.errors import AccountCancelled, Conflict, NotFound, PlatformError
from transfer_runner.platforms.base import STORES, Account, Charge, Comment, Credit, NewAccount
from transfer_runner.platforms.sandbox import records
from transfer_runner.platforms.sandbox.db import to_text
from transfer_runner.platforms.sandbox.messages import date_of, is_message_id

__all__ = [
    "SERVICES",
    "bad_request",
    "domain_name",
    "check_store",
    "require_account",
    "create_account",
    "cancel_account",
    "attach_domain",
    "detach_domain",
    "move_domain",
    "add_comment",
    "import_message",
    "add_payment",
    "check_amount",
]

SERVICES = ("spamstopshere", "hosted-email", "restoremail", "encryption")
_ID_PREFIX = {"charges": "CH", "credits": "CR"}


def bad_request(operation: str, detail: str) -> PlatformError:
    """A malformed request (HTTP 400 on a real platform)."""
    return PlatformError(operation, detail, 400)


def domain_name(operation: str, domain: str) -> str:
    """The domain as stored (lowercase A-label), or a 400 error saying what is wrong."""
    try:
        return normalize_domain(domain)
    except ValueError as exc:
        raise bad_request(operation, f"domain {domain!r} {exc}") from exc


def check_store(operation: str, store: str) -> None:
    """A 400 error unless `store` is quarantine or archive."""
    if store not in STORES:
        raise bad_request(operation, f"store must be one of {', '.join(STORES)}, not {store!r}")


def require_account(conn: sqlite3.Connection, operation: str, account_id: str) -> Account:
    """The account, or NotFound."""
    account = records.read_account(conn, "id = ?", account_id)
    if account is None:
        raise NotFound(operation, f"account {account_id} does not exist")
    return account


def _require_active(conn: sqlite3.Connection, operation: str, account_id: str) -> Account:
    account = require_account(conn, operation, account_id)
    if account.status == "cancelled":
        raise AccountCancelled(operation, account_id)
    return account


def _check_free(conn: sqlite3.Connection, operation: str, domain: str) -> None:
    row = conn.execute("SELECT account FROM domains WHERE domain = ?", (domain,)).fetchone()
    if row is not None:
        raise Conflict(operation, f"domain {domain} is already on account {row[0]}")


def create_account(conn: sqlite3.Connection, spec: NewAccount, now: datetime) -> Account:
    """A new active resold account `A-<n>` under an active reseller, on one free domain."""
    op = "create_account"
    _check_new_account(spec)
    domain = domain_name(op, spec.domain)
    parent = _require_active(conn, op, spec.parent)
    if parent.type != "reseller":
        raise Conflict(op, f"parent {parent.id} is a {parent.type} account, not a reseller")
    _check_free(conn, op, domain)
    account_id = _next_account_id(conn)
    conn.execute(
        "INSERT INTO accounts (id, type, name, status, parent, users, max_domains, services, "
        "seed, created_at) VALUES (?, 'resold', ?, 'active', ?, ?, ?, ?, 0, ?)",
        (
            account_id,
            spec.name,
            parent.id,
            spec.users,
            spec.max_domains,
            json.dumps(list(spec.services)),
            to_text(now),
        ),
    )
    conn.execute("INSERT INTO domains VALUES (?, ?, ?)", (domain, account_id, to_text(now)))
    return require_account(conn, op, account_id)


def _check_new_account(spec: NewAccount) -> None:
    op = "create_account"
    if not spec.name.strip():
        raise bad_request(op, "the account name must not be empty")
    for field, value in (("users", spec.users), ("max_domains", spec.max_domains)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request(op, f"{field} must be an integer >= 1, not {value!r}")
    unknown = [s for s in spec.services if s not in SERVICES]
    if not spec.services or unknown or len(set(spec.services)) != len(spec.services):
        raise bad_request(
            op,
            f"services must be distinct names from {', '.join(SERVICES)}, "
            f"not {list(spec.services)!r}",
        )


def _next_account_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'next_account'").fetchone()
    number = int(row[0]) if row else 1
    while conn.execute("SELECT 1 FROM accounts WHERE id = ?", (f"A-{number}",)).fetchone():
        number += 1
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('next_account', ?)", (str(number + 1),))
    return f"A-{number}"


def cancel_account(conn: sqlite3.Connection, account_id: str, now: datetime) -> Account:
    """Mark an active account cancelled; it keeps its domains until they are moved or detached."""
    _require_active(conn, "cancel_account", account_id)
    conn.execute(
        "UPDATE accounts SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
        (to_text(now), account_id),
    )
    return require_account(conn, "cancel_account", account_id)


def attach_domain(
    conn: sqlite3.Connection, account_id: str, domain: str, now: datetime, op: str = "attach_domain"
) -> None:
    """Attach a free domain to an active account."""
    name = domain_name(op, domain)
    _require_active(conn, op, account_id)
    _check_free(conn, op, name)
    conn.execute("INSERT INTO domains VALUES (?, ?, ?)", (name, account_id, to_text(now)))


def detach_domain(
    conn: sqlite3.Connection, account_id: str, domain: str, op: str = "detach_domain"
) -> None:
    """Detach a domain from the account holding it (allowed on a cancelled account)."""
    name = domain_name(op, domain)
    require_account(conn, op, account_id)
    row = conn.execute("SELECT account FROM domains WHERE domain = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(op, f"domain {name} is on no account")
    if row[0] != account_id:
        raise Conflict(op, f"domain {name} is on account {row[0]}, not {account_id}")
    conn.execute("DELETE FROM domains WHERE domain = ?", (name,))


def move_domain(
    conn: sqlite3.Connection, domain: str, from_account: str, to_account: str, now: datetime
) -> None:
    """Detach then attach in the caller's transaction: if the attach fails, both roll back.
    A move from an account to itself breaks a platform rule (a 409 over HTTP): the request is
    well-formed, so it is not a 400."""
    if from_account == to_account:
        raise Conflict("move_domain", f"cannot move {domain} from {from_account} to itself")
    detach_domain(conn, from_account, domain, op="move_domain")
    attach_domain(conn, to_account, domain, now, op="move_domain")


def add_comment(
    conn: sqlite3.Connection, ticket_id: str, body: str, key: str, now: datetime
) -> Comment:
    """Append a comment to a ticket (open or closed)."""
    op = "add_ticket_comment"
    if not body.strip():
        raise bad_request(op, "the comment body must not be empty")
    if conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is None:
        raise NotFound(op, f"ticket {ticket_id} does not exist")
    seq = _next_seq(conn, "comments")
    comment = Comment(f"CM-{seq}", body, now, key)
    conn.execute(
        "INSERT INTO comments VALUES (?, ?, ?, ?, ?, ?)",
        (seq, comment.id, ticket_id, body, to_text(now), key),
    )
    return comment


def import_message(
    conn: sqlite3.Connection,
    account_id: str,
    store: str,
    message_id: str,
    raw: bytes,
    now: datetime,
) -> bool:
    """Store raw bytes under `message_id`; False (no change) if the id is already there."""
    op = "import_message"
    check_store(op, store)
    if not is_message_id(message_id):
        raise bad_request(op, f"message id {message_id!r} is not filename-safe")
    if not isinstance(raw, bytes) or not raw:
        raise bad_request(op, "the message must be non-empty bytes")
    _require_active(conn, op, account_id)
    exists = conn.execute(
        "SELECT 1 FROM messages WHERE account = ? AND store = ? AND id = ?",
        (account_id, store, message_id),
    ).fetchone()
    if exists:
        return False
    received = date_of(raw) or now
    conn.execute(
        "INSERT INTO messages (account, store, id, size, sha256, received_at, raw) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            store,
            message_id,
            len(raw),
            hashlib.sha256(raw).hexdigest(),
            to_text(received),
            raw,
        ),
    )
    return True


def add_payment(
    conn: sqlite3.Connection,
    table: str,
    account_id: str,
    amount: Decimal,
    reason: str,
    key: str,
    now: datetime,
) -> Charge | Credit:
    """A charge or credit (`table`). Charging a cancelled account is refused; crediting one is
    allowed, since pro-rating a cancelled subscription is exactly what a credit is for."""
    op = "charge" if table == "charges" else "credit"
    check_amount(op, amount)
    if not reason.strip():
        raise bad_request(op, "the reason must not be empty")
    if op == "charge":
        _require_active(conn, op, account_id)
    else:
        require_account(conn, op, account_id)
    seq = _next_seq(conn, table)
    payment_id = f"{_ID_PREFIX[table]}-{seq}"
    value = records.money(amount)
    conn.execute(
        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, payment_id, account_id, str(value), reason, key, to_text(now)),
    )
    kind = Charge if op == "charge" else Credit
    return kind(payment_id, account_id, value, reason, key, now)


def check_amount(op: str, amount: Decimal) -> None:
    """A 400 error unless `amount` is a positive Decimal with at most two decimal places."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise bad_request(op, f"amount must be a positive Decimal, not {amount!r}")
    if amount != records.money(amount):
        raise bad_request(op, f"amount {amount} has more than two decimal places")


def _next_seq(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {table}").fetchone()[0])
