"""The sandbox enforces the real platform's rules: domains, cancelled accounts, new accounts,
tickets, billing, the audit log and simulated latency."""

from __future__ import annotations

import inspect
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from transfer_runner.clock import clock_from_env
from transfer_runner.errors import AccountCancelled, Conflict, NotFound, PlatformError
from transfer_runner.platforms.base import NewAccount, Platform, Subscription
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

NEW = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))


def _holder(platform: SandboxPlatform, domain: str) -> str | None:
    account = platform.find_account_by_domain(domain)
    return account.id if account else None


def _audit(sandbox: Path) -> list[tuple[str, str | None, str | None, int, str | None]]:
    with sqlite3.connect(sandbox) as conn:
        return conn.execute(
            "SELECT op, idempotency_key, account, replayed, error FROM audit ORDER BY seq"
        ).fetchall()


def test_it_is_a_platform(platform: SandboxPlatform) -> None:
    assert isinstance(platform, Platform)
    for name, method in vars(Platform).items():
        if callable(method) and not name.startswith("_"):
            ours = getattr(SandboxPlatform, name)
            assert inspect.signature(ours) == inspect.signature(method), name


# -- domains --------------------------------------------------------------------------------
def test_a_domain_is_on_one_account_only(platform: SandboxPlatform) -> None:
    with pytest.raises(Conflict, match="acme.com is already on account C-1001"):
        platform.attach_domain("R-301", "acme.com", "k1")
    with pytest.raises(Conflict, match="already on account C-1001"):
        platform.attach_domain("C-1001", "ACME.com.", "k2")  # same name, other spelling
    assert _holder(platform, "acme.com") == "C-1001"
    platform.attach_domain("R-301", "northwind.example", "k3")
    assert platform.get_account("R-301").domains == ("northwind.example",)  # type: ignore[union-attr]


def test_find_account_by_domain(platform: SandboxPlatform) -> None:
    assert _holder(platform, "Acme.COM") == "C-1001"
    assert platform.find_account_by_domain("nobody.example") is None
    assert platform.find_account_by_domain("not a domain") is None


def test_detach_releases_the_domain(platform: SandboxPlatform) -> None:
    platform.detach_domain("C-1001", "acme.net", "d1")
    assert _holder(platform, "acme.net") is None
    with pytest.raises(NotFound, match="acme.net is on no account"):
        platform.detach_domain("C-1001", "acme.net", "d2")
    with pytest.raises(Conflict, match="acme.com is on account C-1001, not R-301"):
        platform.detach_domain("R-301", "acme.com", "d3")


def test_move_domain(platform: SandboxPlatform) -> None:
    new = platform.create_account(NEW, "acct")
    platform.move_domain("acme.com", "C-1001", new.id, "m1")
    assert _holder(platform, "acme.com") == new.id
    with pytest.raises(Conflict, match="is on account A-2, not C-1001"):
        platform.move_domain("acme.com", "C-1001", new.id, "m2")
    with pytest.raises(NotFound, match="does not exist"):
        platform.move_domain("acme.net", "C-1001", "A-99", "m3")
    assert _holder(platform, "acme.net") == "C-1001"


def test_move_into_a_cancelled_account_rolls_back(platform: SandboxPlatform) -> None:
    # C-1002 is cancelled in the fixture: the detach from C-1001 happens, the attach is
    # refused, and the transaction puts the domain back.
    with pytest.raises(AccountCancelled, match="C-1002 is cancelled"):
        platform.move_domain("acme.com", "C-1001", "C-1002", "m1")
    assert _holder(platform, "acme.com") == "C-1001"
    assert platform.get_account("C-1001").domains == ("acme.com", "acme.net")  # type: ignore[union-attr]


def test_move_to_the_same_account_is_refused(platform: SandboxPlatform) -> None:
    with pytest.raises(PlatformError, match="to itself"):
        platform.move_domain("acme.com", "C-1001", "C-1001", "m1")
    assert _holder(platform, "acme.com") == "C-1001"


# -- cancelled accounts ---------------------------------------------------------------------
def test_a_cancelled_account_takes_no_writes(platform: SandboxPlatform, sandbox: Path) -> None:
    cancelled = platform.cancel_account("C-1001", "cancel")
    assert cancelled.status == "cancelled"
    assert cancelled.domains == ("acme.com", "acme.net")  # kept until moved or detached
    refused = [
        lambda: platform.cancel_account("C-1001", "cancel-again"),
        lambda: platform.attach_domain("C-1001", "more.example", "attach"),
        lambda: platform.import_message(
            "C-1001", "archive", "x-1", b"Subject: x\r\n\r\nx\r\n", "i"
        ),
        lambda: platform.charge("C-1001", Decimal("1.00"), "fee", "charge"),
    ]
    for write in refused:
        with pytest.raises(AccountCancelled, match="C-1001 is cancelled and takes no writes"):
            write()
    assert dump_sandbox(sandbox)["charges"] == []


def test_a_cancelled_account_lets_its_domains_go(platform: SandboxPlatform) -> None:
    new = platform.create_account(NEW, "acct")
    platform.cancel_account("C-1001", "cancel")
    platform.move_domain("acme.com", "C-1001", new.id, "move")
    platform.detach_domain("C-1001", "acme.net", "detach")
    assert platform.get_account("C-1001").domains == ()  # type: ignore[union-attr]
    assert _holder(platform, "acme.com") == new.id


def test_a_cancelled_subscription_can_still_be_credited(platform: SandboxPlatform) -> None:
    platform.cancel_account("C-1001", "cancel")
    credit = platform.credit("C-1001", Decimal("52.00"), "pro-ration", "prorate")
    assert (credit.account, credit.amount) == ("C-1001", Decimal("52.00"))


# -- new accounts ---------------------------------------------------------------------------
def test_create_account(platform: SandboxPlatform) -> None:
    first = platform.create_account(NEW, "a")
    # the fixture already has an account A-1: ids skip it and stay sequential
    assert first.id == "A-2"
    assert (first.type, first.parent, first.status) == ("resold", "R-301", "active")
    assert (first.domains, first.users, first.max_domains) == (("gdi.acme.com",), 40, 2)
    assert first.services == ("spamstopshere", "restoremail")
    assert platform.get_account("A-2") == first
    other = NewAccount("R-302", "other", "gdi.other.example", 1, 1, ("encryption",))
    assert platform.create_account(other, "b").id == "A-3"


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (NewAccount("R-301", "x", "acme.com", 1, 1, ("spamstopshere",)), Conflict, "already on"),
        (NewAccount("R-999", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), NotFound, "R-999"),
        (NewAccount("C-1001", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), Conflict, "a direct"),
        (NewAccount("A-1", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), Conflict, "a resold"),
        (NewAccount("R-301", "x", "gdi.x.com", 0, 1, ("spamstopshere",)), PlatformError, "users"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 0, ("spamstopshere",)), PlatformError, "max_"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 1, ()), PlatformError, "services"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 1, ("fax",)), PlatformError, "services"),
        (NewAccount("R-301", "x", "gdi_x", 1, 1, ("encryption",)), PlatformError, "domain"),
        (NewAccount("R-301", " ", "gdi.x.com", 1, 1, ("encryption",)), PlatformError, "name"),
    ],
)
def test_create_account_refusals(
    platform: SandboxPlatform, spec: NewAccount, error: type[Exception], message: str
) -> None:
    before = len(dump_sandbox(platform.path)["accounts"])
    with pytest.raises(error, match=message):
        platform.create_account(spec, "key")
    assert len(dump_sandbox(platform.path)["accounts"]) == before


def test_create_account_under_a_cancelled_reseller(platform: SandboxPlatform) -> None:
    platform.cancel_account("R-302", "cancel")
    spec = NewAccount("R-302", "x", "gdi.x.com", 1, 1, ("encryption",))
    with pytest.raises(AccountCancelled):
        platform.create_account(spec, "key")


def test_missing_things_read_as_none(platform: SandboxPlatform) -> None:
    assert platform.get_account("C-404") is None
    assert platform.get_ticket("T-404") is None
    assert platform.get_subscription("R-301") is None
    assert platform.find_charge("nope") is None and platform.find_credit("nope") is None


# -- tickets --------------------------------------------------------------------------------
def test_ticket_comments_in_order(platform: SandboxPlatform) -> None:
    ticket = platform.get_ticket("T-5002")
    assert ticket is not None
    assert (ticket.account, ticket.status, ticket.resolution) == ("R-301", "closed", "rejected")
    assert [c.body for c in ticket.comments] == ["first", "second"]
    added = platform.add_ticket_comment("T-5002", "third", "comment:1")
    assert (added.body, added.idempotency_key) == ("third", "comment:1")
    assert added.created_at.tzinfo is not None
    again = platform.add_ticket_comment("T-5002", "third", "comment:1")
    assert again == added
    comments = platform.get_ticket("T-5002").comments  # type: ignore[union-attr]
    assert [c.body for c in comments] == ["first", "second", "third"]
    assert comments[-1] == added
    assert platform.get_ticket("T-5001").created_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # type: ignore[union-attr]


def test_comment_refusals(platform: SandboxPlatform) -> None:
    with pytest.raises(NotFound, match="T-404"):
        platform.add_ticket_comment("T-404", "hello", "k1")
    with pytest.raises(PlatformError, match="must not be empty"):
        platform.add_ticket_comment("T-5001", "  ", "k2")


# -- billing --------------------------------------------------------------------------------
def test_subscription_price_is_exact_decimal_text(platform: SandboxPlatform, sandbox: Path) -> None:
    today = clock_from_env().now().date()  # the fixture's period: today-10d .. today+20d
    assert platform.get_subscription("C-1001") == Subscription(
        "C-1001", Decimal("120.00"), today - timedelta(days=10), today + timedelta(days=20)
    )
    with sqlite3.connect(sandbox) as conn:
        assert conn.execute("SELECT typeof(price), price FROM billing").fetchall() == [
            ("text", "120.00")
        ]


def test_charge_and_credit(platform: SandboxPlatform) -> None:
    charge = platform.charge("R-301", Decimal("25.00"), "transfer fee", "fee")
    assert (charge.id, charge.account, charge.amount, charge.reason) == (
        "CH-1",
        "R-301",
        Decimal("25.00"),
        "transfer fee",
    )
    assert charge.created_at.tzinfo is not None
    assert platform.find_charge("fee") == charge
    assert platform.find_credit("fee") is None  # charges and credits are separate
    credit = platform.credit("C-1001", Decimal("0.01"), "pro-ration", "prorate")
    assert platform.find_credit("prorate") == credit and credit.id == "CR-1"


@pytest.mark.parametrize(
    "amount", [Decimal("0"), Decimal("-5.00"), Decimal("1.005"), Decimal("NaN"), 25.0]
)
def test_bad_amounts_are_refused(platform: SandboxPlatform, amount: Decimal) -> None:
    with pytest.raises(PlatformError) as caught:
        platform.charge("R-301", amount, "fee", "fee")
    assert caught.value.status == 400
    assert platform.find_charge("fee") is None


def test_charging_an_unknown_account(platform: SandboxPlatform) -> None:
    with pytest.raises(NotFound):
        platform.charge("R-999", Decimal("25.00"), "fee", "fee")


# -- audit and latency ----------------------------------------------------------------------
def test_every_write_call_is_audited_and_reads_are_not(
    platform: SandboxPlatform, sandbox: Path
) -> None:
    platform.get_account("C-1001")
    platform.list_messages("C-1001", "archive")
    platform.find_charge("fee")
    assert platform.write_calls() == 0
    platform.charge("R-301", Decimal("25.00"), "fee", "fee")
    platform.charge("R-301", Decimal("25.00"), "fee", "fee")
    with pytest.raises(Conflict):
        platform.attach_domain("R-301", "acme.com", "attach")
    with pytest.raises(PlatformError):
        platform.attach_domain("R-301", "x.example", "")
    assert platform.write_calls() == 4
    assert dump_sandbox(sandbox)["writes"] == 4
    rows = _audit(sandbox)
    assert rows[:2] == [("charge", "fee", "R-301", 0, None), ("charge", "fee", "R-301", 1, None)]
    assert rows[2][:4] == ("attach_domain", "attach", "R-301", 0)
    assert "already on account C-1001" in (rows[2][4] or "")
    assert "idempotency key" in (rows[3][4] or "")


def test_latency_is_slept_in_every_call(sandbox: Path) -> None:
    with SandboxPlatform(sandbox, latency_ms=40) as platform:
        for call in (
            lambda: platform.get_account("C-1001"),
            lambda: platform.find_account_by_domain("not a domain"),
            lambda: platform.attach_domain("R-301", "x.example", "k"),
        ):
            start = time.perf_counter()
            call()
            assert time.perf_counter() - start >= 0.04


def test_close_then_reuse(sandbox: Path) -> None:
    platform = SandboxPlatform(sandbox)
    platform.close()
    assert platform.get_account("C-1001") is not None  # reopens on demand
    platform.close()


def test_a_database_failure_is_a_platform_error_and_audited(
    platform: SandboxPlatform, sandbox: Path
) -> None:
    with sqlite3.connect(sandbox) as conn:
        conn.execute("DROP TABLE charges")
    with pytest.raises(PlatformError, match="sandbox database error: no such table") as caught:
        platform.charge("R-301", Decimal("25.00"), "fee", "fee")
    assert caught.value.status == 503
    assert _audit(sandbox)[-1][:2] == ("charge", "fee")
    with pytest.raises(PlatformError, match="no such table"):
        platform.find_charge("fee")
