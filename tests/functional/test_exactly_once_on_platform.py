"""Issue 12: exactly once per customer, whatever the manifest is called and whichever state
store is used. The platform holds the anchors: ticket claims, the customer's credit key, the
cancelled direct account."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.builders import World, both_platform_paths, manifest
from tests.functional.test_forged_authorizations import _fails_without_writes, _rebuild
from transfer_runner import commands
from transfer_runner.platforms.sandbox.fixture import init_sandbox

SECOND_AUTHORIZATION = [
    {
        "id": "T-5011",
        "account": "C-1001",
        "subject": "Authorize transfer of account",
        "body": "We, acme.com, authorize the transfer of our direct account to resold under "
        "Northwind IT.",
    },
    {
        "id": "T-5012",
        "account": "R-301",
        "subject": "Authorize Customer Transfer",
        "body": "We, Northwind IT, Authorize acme.com to be transferred to our account.",
    },
]


def _money_and_comments(world: World) -> tuple[Any, ...]:
    dump = world.dump()
    comments = tuple(len(t["comments"]) for t in dump["tickets"])
    return len(dump["charges"]), len(dump["credits"]), comments


def _apply_elsewhere(world: World, name: str, text: str) -> Any:
    """Apply `text` as manifest `name` from another directory with a state store of its own
    (a second CI system, or a lost state bucket)."""
    other = world.root / f"other-{name}"
    other.mkdir(exist_ok=True)
    (other / f"{name}.yml").write_text(text, encoding="utf-8")
    settings = world.settings(state=f"sqlite:{world.root / f'state-{name}.db'}")
    [result] = commands.apply(settings, commands.Selection([str(other)])).transfers
    return result


@both_platform_paths
def test_a_renamed_manifest_with_a_new_state_store_is_refused_naming_the_earlier_run(
    world: World,
) -> None:
    [first] = world.apply().transfers
    assert first.status == "succeeded", first.message
    before, writes = _money_and_comments(world), world.writes()
    result = _apply_elsewhere(world, "acme-again", manifest("acme-again"))
    assert result.status == "failed"
    claimed = r"claimed on the platform by transfer acme-com \(run (r-\S+),"
    found = re.search(claimed, result.message)
    assert found, result.message
    assert found.group(1) == commands.status(world.settings())[0].record.last_run_id
    assert world.writes() == writes and _money_and_comments(world) == before


def test_new_tickets_for_a_customer_already_transferred_are_refused(world: World) -> None:
    _add_tickets(world)
    [first] = world.apply().transfers
    assert first.status == "succeeded", first.message
    before, writes = _money_and_comments(world), world.writes()
    text = manifest("acme-again", customer_ticket="T-5011", reseller_ticket="T-5012")
    result = _apply_elsewhere(world, "acme-again", text)
    assert result.status == "failed"
    assert "the direct account C-1001 is already cancelled (credited 80.00 on" in result.message
    assert "for transfer acme-com (run r-" in result.message
    assert world.writes() == writes and _money_and_comments(world) == before


def test_the_same_transfer_with_a_lost_state_store_completes_without_paying_twice(
    world: World,
) -> None:
    [first] = world.apply().transfers
    assert first.status == "succeeded", first.message
    before = _money_and_comments(world)
    result = _apply_elsewhere(world, "acme-com", manifest())
    assert result.status in ("succeeded", "unchanged"), result.message
    assert _money_and_comments(world) == before  # one fee, one credit, claim + outcome each


def test_a_state_store_that_lost_an_interrupted_transfer_resumes_it(world: World) -> None:
    [cut] = world.apply(tags=["authorize", "account", "data", "cutover"]).transfers
    assert cut.status == "succeeded", cut.message
    result = _apply_elsewhere(world, "acme-com", manifest())
    assert result.status == "succeeded", result.message
    dump = world.dump()
    assert len(dump["charges"]) == 1 and len(dump["credits"]) == 1
    for ticket in dump["tickets"][:2]:
        assert len(ticket["comments"]) == 2  # one claim (kept), one outcome


def test_a_failed_check_leaves_no_claim(world: World) -> None:
    """Claims are written right before the first other write, after every check: a transfer
    refused by the reseller's ticket has not claimed the customer's."""
    _rebuild(world, {"T-5002": {"body": "We, Northwind IT, do not authorize acme.com."}})
    [result] = world.apply().transfers
    assert result.status == "failed" and "is refused" in result.message
    assert world.writes() == 0


@both_platform_paths
def test_a_temporary_domain_held_by_another_customer_is_found_before_any_write(
    world: World,
) -> None:
    squatter = {"id": "C-1009", "type": "direct", "name": "Squat", "domains": ["gdi.acme.com"]}
    _rebuild(world, {}, [squatter])
    wanted = (
        "the temporary domain gdi.acme.com is held by account C-1009, which cannot become the "
        "new account: it is a direct account; its reseller is None, not R-301"
    )
    [planned] = world.plan().transfers
    assert planned.status == "failed" and wanted in planned.message
    _fails_without_writes(world, wanted)


def test_an_adopted_account_too_small_for_the_domains_is_found_before_any_write(
    world: World,
) -> None:
    staged = {
        "id": "A-900",
        "type": "resold",
        "name": "acme.com",
        "parent": "R-301",
        "domains": ["gdi.acme.com"],
        "users": 40,
        "max_domains": 1,
        "services": ["spamstopshere", "restoremail"],
    }
    _rebuild(world, {}, [staged])
    [result] = world.apply().transfers
    assert result.status == "failed"
    assert (
        "account A-900 (to be adopted on gdi.acme.com) allows 1 domain(s), fewer than the "
        "customer's 2" in result.message
    )
    assert world.writes() == 0 and world.account("C-1001")["status"] == "active"


def _add_tickets(world: World) -> None:
    fixture = world.root / "fixture.yml"
    data = yaml.safe_load(fixture.read_text(encoding="utf-8"))
    data["tickets"].extend(SECOND_AUTHORIZATION)
    fixture.write_text(yaml.safe_dump(data), encoding="utf-8")
    init_sandbox(world.sandbox, fixture, force=True)
