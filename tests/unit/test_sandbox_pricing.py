"""The sandbox's pricing: the first period to the reseller's billing day. (Creating and
reading subscriptions is in the contract suite, tests/contracts/platform.py.)"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from transfer_runner.platforms.sandbox.pricing import first_period, first_period_price

SERVICES = ("spamstopshere", "restoremail")  # 1.00 + 1.50 a user and month


@pytest.mark.parametrize(
    ("start", "day", "end", "price"),
    [
        (date(2026, 12, 5), 1, date(2027, 1, 1), "87.10"),  # 27 of December's 31 days
        (date(2026, 12, 1), 1, date(2027, 1, 1), "100.00"),  # on the billing day: a month
        (date(2026, 12, 5), 15, date(2026, 12, 15), "33.33"),  # 10 of 30 days (Nov 15..Dec 15)
        (date(2027, 1, 31), 31, date(2027, 2, 28), "100.00"),  # the 31st bills on Feb 28th
        (date(2027, 2, 10), 31, date(2027, 2, 28), "64.29"),  # 18 of 28 days
        (date(2028, 2, 29), 29, date(2028, 3, 29), "100.00"),  # a leap day
    ],
)
def test_the_first_period_ends_on_the_resellers_billing_day(
    start: date, day: int, end: date, price: str
) -> None:
    assert first_period(start, day) == (start, end)
    assert first_period_price(40, SERVICES, start, end, day) == Decimal(price)
