"""Reading the sandbox's rows into the Platform dataclasses, and results to and from JSON.

Write results are kept as JSON in the idempotency table so that a replayed key returns exactly
the first result; the codecs here are the only place that knows their shape.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from transfer_runner.platforms.base import (
    Account,
    Charge,
    Comment,
    Credit,
    MessageInfo,
    Subscription,
    Ticket,
)
from transfer_runner.platforms.sandbox.db import from_text, to_text

__all__ = [
    "amount_text",
    "CENT",
    "money",
    "read_account",
    "read_ticket",
    "read_subscription",
    "decode_subscription",
    "read_payment",
    "message_info",
    "WriteResult",
    "encode",
    "decode_account",
    "decode_comment",
    "decode_charge",
    "decode_credit",
]

CENT = Decimal("0.01")

_ACCOUNT_COLUMNS = "id, type, name, status, parent, users, max_domains, services, cancelled_at"
_PAYMENT_COLUMNS = "id, account, amount, reason, idempotency_key, created_at"


def money(amount: Decimal) -> Decimal:
    """An amount to the cent (half up), as stored and returned."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def read_account(conn: sqlite3.Connection, where: str, value: str) -> Account | None:
    """The account matching `where` (a trusted SQL condition on `value`), with its domains."""
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE {where}", (value,)
    ).fetchone()
    if row is None:
        return None
    domains = conn.execute(
        "SELECT domain FROM domains WHERE account = ? ORDER BY domain", (row[0],)
    ).fetchall()
    return Account(
        id=row[0],
        type=row[1],
        name=row[2],
        status=row[3],
        parent=row[4],
        domains=tuple(d for (d,) in domains),
        users=row[5],
        max_domains=row[6],
        services=tuple(json.loads(row[7])),
        cancelled_at=from_text(row[8]) if row[8] else None,
    )


def read_ticket(conn: sqlite3.Connection, ticket_id: str) -> Ticket | None:
    """The ticket with its comments in the order they were written, or None."""
    row = conn.execute(
        "SELECT id, account, subject, body, status, resolution, created_at FROM tickets "
        "WHERE id = ?",
        (ticket_id,),
    ).fetchone()
    if row is None:
        return None
    comments = conn.execute(
        "SELECT id, body, created_at, idempotency_key FROM comments WHERE ticket = ? ORDER BY seq",
        (ticket_id,),
    ).fetchall()
    return Ticket(
        id=row[0],
        account=row[1],
        subject=row[2],
        body=row[3],
        status=row[4],
        resolution=row[5],
        created_at=from_text(row[6]),
        comments=tuple(Comment(c[0], c[1], from_text(c[2]), c[3]) for c in comments),
    )


def read_subscription(conn: sqlite3.Connection, account_id: str) -> Subscription | None:
    """The account's billing period and price (a decimal string in the table), or None."""
    row = conn.execute(
        "SELECT price, period_start, period_end FROM billing WHERE account = ?", (account_id,)
    ).fetchone()
    if row is None:
        return None
    return Subscription(
        account_id, Decimal(row[0]), date.fromisoformat(row[1]), date.fromisoformat(row[2])
    )


def read_payment(conn: sqlite3.Connection, table: str, key: str) -> Charge | Credit | None:
    """The charge or credit (`table` is "charges" or "credits") made with `key`, or None."""
    if table not in ("charges", "credits"):
        raise ValueError(f"no payment table {table!r}")
    row = conn.execute(
        f"SELECT {_PAYMENT_COLUMNS} FROM {table} WHERE idempotency_key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    values = (row[0], row[1], Decimal(row[2]), row[3], row[4], from_text(row[5]))
    return Charge(*values) if table == "charges" else Credit(*values)


def message_info(row: tuple[Any, ...]) -> MessageInfo:
    """A listing entry from `(id, size, received_at, sha256)`.

    A listing makes one per message, so it is built without the frozen dataclass's
    `__init__` (an `object.__setattr__` per field): the same object at half the cost.
    """
    info = _new_info(MessageInfo)
    info.__dict__.update(id=row[0], size=row[1], received_at=from_text(row[2]), sha256=row[3])
    return info


_new_info = object.__new__


WriteResult = Account | Comment | Charge | Credit | Subscription | bool | None
"""What a sandbox write returns, and its idempotency record replays."""


def encode(result: WriteResult) -> str:
    """A write's result as JSON for the idempotency table."""
    if result is None or isinstance(result, bool):
        return json.dumps(result)
    return json.dumps(asdict(result), default=_json_default, sort_keys=True)


def decode_account(text: str) -> Account:
    """The Account stored by `encode`."""
    data = json.loads(text)
    data["domains"], data["services"] = tuple(data["domains"]), tuple(data["services"])
    cancelled = data.get("cancelled_at")  # absent in results stored before it existed
    data["cancelled_at"] = from_text(cancelled) if cancelled else None
    return Account(**data)


def decode_subscription(text: str) -> Subscription:
    """The Subscription stored by `encode`."""
    data = json.loads(text)
    return Subscription(
        data["account"],
        Decimal(data["price"]),
        date.fromisoformat(data["period_start"]),
        date.fromisoformat(data["period_end"]),
    )


def decode_comment(text: str) -> Comment:
    """The Comment stored by `encode`."""
    data = json.loads(text)
    return Comment(data["id"], data["body"], from_text(data["created_at"]), data["idempotency_key"])


def decode_charge(text: str) -> Charge:
    """The Charge stored by `encode`."""
    return Charge(**_payment(text))


def decode_credit(text: str) -> Credit:
    """The Credit stored by `encode`."""
    return Credit(**_payment(text))


def _payment(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    data["amount"] = Decimal(data["amount"])
    data["created_at"] = from_text(data["created_at"])
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "tzinfo"):
        return to_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a result")


def amount_text(amount: Any) -> str:
    """An amount as a request fingerprint records it: exact money digits, or its repr."""
    if isinstance(amount, Decimal) and amount.is_finite():
        return str(money(amount))
    return repr(amount)
