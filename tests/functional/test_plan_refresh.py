"""`plan` refreshes completed transfers against the platform (drift there is exit 1), on both
platform paths; `--no-refresh` answers from the state store alone; `apply` keeps its fast path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.builders import World, both_platform_paths

pytestmark = both_platform_paths

NEW = "the new account"


def _new_account(world: World) -> str:
    return next(a["id"] for a in world.dump()["accounts"] if a["type"] == "resold")


def _edit(world: World, sql: str, *args: object) -> None:
    """A change made by hand on the platform, behind the runner's back."""
    conn = sqlite3.connect(world.sandbox)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


DRIFTS: dict[str, tuple[Callable[[World, str], None], str]] = {
    "new-account-cancelled": (
        lambda w, new: _edit(
            w,
            "UPDATE accounts SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
            _now(),
            new,
        ),  # fmt: skip
        "the new account {new} is cancelled",
    ),
    "domain-moved-back": (
        lambda w, new: _edit(w, "UPDATE domains SET account = 'C-1001' WHERE domain = 'acme.net'"),
        "acme.net is not on the new account {new} (on C-1001)",
    ),
    "temporary-domain-back": (
        lambda w, new: _edit(w, "INSERT INTO domains VALUES ('gdi.acme.com', ?, ?)", new, _now()),
        "the temporary domain gdi.acme.com is back on {new}",
    ),
    "direct-account-reactivated": (
        lambda w, new: _edit(
            w, "UPDATE accounts SET status = 'active', cancelled_at = NULL WHERE id = 'C-1001'"
        ),  # fmt: skip
        "the direct account C-1001 is active again (it was cancelled)",
    ),
    "fee-gone": (
        lambda w, new: _edit(
            w, "DELETE FROM charges WHERE idempotency_key = ?", "transfer-fee:acme-com"
        ),  # fmt: skip
        "the transfer fee charge",
    ),
    "credit-gone": (
        lambda w, new: _edit(w, "DELETE FROM credits WHERE idempotency_key = ?", "prorate:C-1001"),
        "the pro-ration credit",
    ),
}


@pytest.mark.parametrize("kind", list(DRIFTS))
def test_plan_reports_each_kind_of_drift_on_the_platform(world: World, kind: str) -> None:
    assert world.apply().transfers[0].status == "succeeded"
    assert world.plan().transfers[0].status == "unchanged"
    new = _new_account(world)
    change, expected = DRIFTS[kind]
    change(world, new)
    [result] = world.plan().transfers
    assert result.status == "failed"
    assert result.message.startswith("drift on the platform since run r-")
    assert expected.format(new=new) in result.message
    [stale] = world.plan(refresh=False).transfers  # the state store alone does not see it
    assert stale.status == "unchanged"


def test_a_platform_that_agrees_is_reported_so(world: World) -> None:
    world.apply()
    [result] = world.plan().transfers
    assert result.status == "unchanged"
    assert "the platform agrees" in result.message
