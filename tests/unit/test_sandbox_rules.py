"""What only the sandbox does: it is a Platform to the letter, audits every write, sleeps its
simulated latency, reopens after close and reports database failures. The platform's rules
(domains, cancelled accounts, new accounts, tickets, billing) are the contract suite's,
tests/contracts/platform.py, run on the sandbox and over HTTP."""

from __future__ import annotations

import inspect
import sqlite3
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from transfer_runner.clock import clock_from_env
from transfer_runner.errors import Conflict, PlatformError
from transfer_runner.platforms.base import NewAccount, Platform, Subscription
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

NEW = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))


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
# -- cancelled accounts ---------------------------------------------------------------------
# -- new accounts ---------------------------------------------------------------------------
# -- tickets --------------------------------------------------------------------------------
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
