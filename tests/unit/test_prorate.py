"""Pro-ration: price x unused whole days / period days, half-up to cents, in Decimal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from transfer_runner.modules.billing import prorate_amount

D = date.fromisoformat
CASES = [
    # price, start, end, as_of, expected
    ("120.00", "2026-11-01", "2026-12-01", "2026-11-18", "52.00"),  # 13 of 30 days unused
    ("120.00", "2026-11-01", "2026-12-01", "2026-11-01", "120.00"),  # cancelled on day one
    ("120.00", "2026-11-01", "2026-12-01", "2026-11-30", "4.00"),  # last day unused
    ("120.00", "2026-11-01", "2026-12-01", "2026-12-01", "0.00"),  # period over
    ("120.00", "2026-11-01", "2026-12-01", "2027-03-01", "0.00"),  # long after
    ("120.00", "2026-11-01", "2026-12-01", "2026-10-15", "120.00"),  # not started
    ("100.00", "2026-11-01", "2026-12-01", "2026-11-02", "96.67"),  # 96.666.. rounds up
    ("10.00", "2026-02-01", "2026-03-01", "2026-02-15", "5.00"),  # 14 of 28 days
    ("0.01", "2026-11-01", "2026-12-01", "2026-11-16", "0.01"),  # 0.005 half-up
    ("1200.00", "2026-06-01", "2027-06-01", "2026-11-29", "604.93"),  # 184 of 365
    ("0.00", "2026-11-01", "2026-12-01", "2026-11-10", "0.00"),
]


@pytest.mark.parametrize(("price", "start", "end", "as_of", "expected"), CASES)
def test_prorate_amount(price, start, end, as_of, expected):
    amount = prorate_amount(Decimal(price), D(start), D(end), D(as_of))
    assert amount == Decimal(expected)
    assert amount.as_tuple().exponent == -2


def test_empty_period_is_an_error():
    with pytest.raises(ValueError):
        prorate_amount(Decimal("1"), D("2026-11-01"), D("2026-11-01"), D("2026-11-01"))
