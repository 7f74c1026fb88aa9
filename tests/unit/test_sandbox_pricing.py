"""The sandbox's resold subscriptions: the first period to the reseller's billing day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from transfer_runner.errors import Conflict, PlatformError
from transfer_runner.platforms.base import NewAccount, NewSubscription
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
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


def _resold(platform: SandboxPlatform) -> str:
    spec = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, SERVICES)
    return platform.create_account(spec, "account:x").id


def test_a_subscription_is_created_once_and_read_back(platform: SandboxPlatform) -> None:
    spec = NewSubscription(40, 2, SERVICES, date(2026, 12, 5))
    quote = platform.quote_subscription("R-301", spec)
    account = _resold(platform)
    first = platform.create_subscription(account, spec, "subscription:C-1001")
    assert (first.price, first.period_start) == (quote.price, date(2026, 12, 5))
    assert quote.account == "R-301" and first.account == account
    assert platform.create_subscription(account, spec, "subscription:C-1001") == first  # replay
    assert platform.get_subscription(account) == first
    with pytest.raises(Conflict, match="has a subscription already"):
        platform.create_subscription(account, spec, "subscription:other")


def test_only_an_active_resold_account_is_subscribed(platform: SandboxPlatform) -> None:
    spec = NewSubscription(40, 2, SERVICES, date(2026, 12, 5))
    with pytest.raises(Conflict, match="is direct, not resold"):
        platform.create_subscription("C-1001", spec, "k-1")
    with pytest.raises(PlatformError, match="not a reseller"):
        platform.quote_subscription("C-1001", spec)
    with pytest.raises(PlatformError, match="services must be distinct names"):
        platform.quote_subscription("R-301", NewSubscription(1, 1, ("fax",), date(2026, 12, 5)))
