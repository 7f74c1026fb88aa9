"""Issue 12: the resold account gets its subscription through the contract, from the cut-over
day, priced by the platform; `plan` shows it with its amounts; it is made once."""

from __future__ import annotations

from datetime import date

from tests.builders import World, both_platform_paths
from transfer_runner.clock import clock_from_env
from transfer_runner.platforms.base import NewSubscription
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

STEP = "Subscribe the new account from the cut-over day"
SERVICES = ("spamstopshere", "restoremail")


def _expected(world: World, start: date) -> tuple[str, str]:
    """The sandbox's quote for the manifest (40 users, 2 domains) from `start`."""
    with SandboxPlatform(world.sandbox) as platform:
        quote = platform.quote_subscription("R-301", NewSubscription(40, 2, SERVICES, start))
    return str(quote.price), f"{quote.period_start}..{quote.period_end}"


@both_platform_paths
def test_plan_shows_the_subscription_and_apply_makes_it_once(world: World) -> None:
    today = clock_from_env().now().date()
    price, period = _expected(world, today)
    [planned] = world.plan().transfers
    step = next(s for s in planned.steps if s.name == STEP)
    assert step.status == "changed"
    assert (
        f"subscribe the new account to 40 users, 2 domains, spamstopshere, restoremail: first "
        f"period {period} for {price}, billed to R-301" in step.message
    ), step.message
    [applied] = world.apply().transfers
    assert applied.status == "succeeded", applied.message
    new = next(a for a in world.dump()["accounts"] if a["type"] == "resold")
    cancelled = world.account("C-1001")
    assert cancelled["status"] == "cancelled"
    start, end = period.split("..")
    assert new["billing"] == {"price": price, "period_start": start, "period_end": end}
    step = next(s for s in applied.steps if s.name == STEP)
    assert step.outputs["price"] == price and step.outputs["period"] == period
    writes = world.writes()
    [again] = world.apply(recheck=True).transfers
    assert again.status == "unchanged" and world.writes() == writes


def test_the_subscription_waits_for_the_cut_over(world: World) -> None:
    [result] = world.apply(tags=["account", "billing"]).transfers
    assert result.status == "failed" and "refusing to bill before the cut-over" in result.message
    assert all("billing" not in a for a in world.dump()["accounts"] if a["type"] == "resold")
