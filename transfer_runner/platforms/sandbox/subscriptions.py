"""Resold subscriptions in the sandbox: the quote and the write (SQL; see `pricing`)."""

from __future__ import annotations

import sqlite3
from datetime import date

from transfer_runner.errors import Conflict
from transfer_runner.platforms.base import NewSubscription, Subscription
from transfer_runner.platforms.sandbox import pricing, records
from transfer_runner.platforms.sandbox.operations import SERVICES, bad_request, require_account

__all__ = ["quote_subscription", "create_subscription"]

_MAX_COUNT = 2_147_483_647


def quote_subscription(
    conn: sqlite3.Connection, parent: str, spec: NewSubscription
) -> Subscription:
    """The first period `parent` would be billed for `spec` (`account` is the parent)."""
    op = "quote_subscription"
    _check(op, spec)
    reseller = require_account(conn, op, parent)
    if reseller.type != "reseller":  # well-formed, but not for this account: a 409
        raise Conflict(op, f"account {parent} is a {reseller.type} account, not a reseller")
    return _first(conn, parent, spec)


def create_subscription(
    conn: sqlite3.Connection, account_id: str, spec: NewSubscription
) -> Subscription:
    """Subscribe an active resold account; Conflict if it has a subscription."""
    op = "create_subscription"
    _check(op, spec)
    account = require_account(conn, op, account_id)
    if account.type != "resold" or account.parent is None:
        raise Conflict(op, f"account {account_id} is {account.type}, not resold")
    if account.status != "active":
        raise Conflict(op, f"account {account_id} is {account.status}")
    if records.read_subscription(conn, account_id) is not None:
        raise Conflict(op, f"account {account_id} has a subscription already")
    quote = _first(conn, account.parent, spec)
    conn.execute(
        "INSERT INTO billing VALUES (?, ?, ?, ?)",
        (account_id, str(quote.price), quote.period_start.isoformat(),
         quote.period_end.isoformat()),
    )  # fmt: skip
    return Subscription(account_id, quote.price, quote.period_start, quote.period_end)


def _first(conn: sqlite3.Connection, parent: str, spec: NewSubscription) -> Subscription:
    own = records.read_subscription(conn, parent)
    day = own.period_end.day if own is not None else 1
    try:
        start, end = pricing.first_period(spec.start, day)
    except (ValueError, OverflowError):  # no billing day after 9999-12-31
        raise Conflict("subscription", f"no billing period follows {spec.start}") from None
    price = pricing.first_period_price(spec.users, spec.services, start, end, day)
    return Subscription(parent, price, start, end)


def _check(op: str, spec: NewSubscription) -> None:
    for field, value in (("users", spec.users), ("domains", spec.domains)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_COUNT:
            raise bad_request(op, f"{field} must be an integer 1..{_MAX_COUNT}, not {value!r}")
    unknown = [s for s in spec.services if s not in SERVICES]
    if not spec.services or unknown or len(set(spec.services)) != len(spec.services):
        raise bad_request(
            op, f"services must be distinct names from {', '.join(SERVICES)}, "
            f"not {list(spec.services)!r}"
        )  # fmt: skip
    if not isinstance(spec.start, date):
        raise bad_request(op, f"start must be a date, not {spec.start!r}")
