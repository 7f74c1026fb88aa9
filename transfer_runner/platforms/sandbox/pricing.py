"""The sandbox's price list for resold subscriptions, and their first period.

A reseller is billed per user and month for each service of its customers' accounts. A resold
account's first period runs from its start (the cut-over day) to the reseller's next billing
day, and costs that share of a month: the provider pro-rates the reseller's first period so that
every customer of a reseller renews on the same day. The reseller's billing day is the day of
month its own subscription renews (`period_end`), or the 1st when it has none.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["MONTHLY_PER_USER", "first_period", "first_period_price", "monthly_price"]

MONTHLY_PER_USER: dict[str, Decimal] = {
    "spamstopshere": Decimal("1.00"),
    "hosted-email": Decimal("4.00"),
    "restoremail": Decimal("1.50"),
    "encryption": Decimal("2.00"),
}
_CENT = Decimal("0.01")


def monthly_price(users: int, services: tuple[str, ...]) -> Decimal:
    """A month of `services` for `users` users."""
    return users * sum((MONTHLY_PER_USER[s] for s in services), Decimal(0))


def first_period(start: date, billing_day: int) -> tuple[date, date]:
    """[start, the first billing day after start). A billing day past a month's end bills on
    its last day (the 31st bills on April 30th)."""
    end = _billing_date(start.year, start.month, billing_day)
    if end <= start:
        end = _billing_date(*_next_month(start.year, start.month), billing_day)
    return start, end


def first_period_price(
    users: int, services: tuple[str, ...], start: date, end: date, billing_day: int
) -> Decimal:
    """The month's price x the period's days / the days of the billing month it ends, to cents
    (a period starting on a billing day is a whole month)."""
    year, month = (end.year - 1, 12) if end.month == 1 else (end.year, end.month - 1)
    month_days = (end - _billing_date(year, month, billing_day)).days
    share = min(Decimal((end - start).days) / Decimal(month_days), Decimal(1))
    return (monthly_price(users, services) * share).quantize(_CENT, rounding=ROUND_HALF_UP)


def _billing_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)
