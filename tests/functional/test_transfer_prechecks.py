"""Issue 12: what a later step would fail on is found before the first platform write, and
money follows the move (never precedes it)."""

from __future__ import annotations

import pytest
import yaml

from tests.builders import World, manifest
from tests.functional.test_forged_authorizations import _fails_without_writes, _rebuild


def test_a_reseller_account_of_another_name_is_refused(world: World) -> None:
    """The manifest names Northwind IT but gives Contoso's account: the customer would land
    under Contoso and Contoso would be billed."""
    fixture = world.root / "fixture.yml"
    data = yaml.safe_load(fixture.read_text(encoding="utf-8"))
    data["accounts"].append({"id": "R-302", "type": "reseller", "name": "Contoso"})
    data["tickets"].append(
        {
            "id": "T-5010",
            "account": "R-302",
            "subject": "Authorize Customer Transfer",
            "body": "We, Northwind IT, Authorize acme.com to be transferred to our account.",
        }
    )
    fixture.write_text(yaml.safe_dump(data), encoding="utf-8")
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    init_sandbox(world.sandbox, fixture, force=True)
    world.write("acme-com.yml", manifest(reseller="R-302", reseller_ticket="T-5010"))
    _fails_without_writes(
        world, "reseller account R-302, named 'Contoso' on the platform, not 'Northwind IT'"
    )


def test_the_reseller_name_is_compared_normalised(world: World) -> None:
    world.write("acme-com.yml", manifest(reseller_name="'Northwind I.T.'"))
    _rebuild(
        world,
        {
            "T-5001": {
                "body": "We, acme.com, authorize the transfer of our direct account to resold "
                "under Northwind I.T."
            }
        },
    )
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message


def test_a_domain_the_manifest_leaves_out_would_be_stranded(world: World) -> None:
    world.write("acme-com.yml", manifest(domains="[acme.com]", max_domains=1))
    _fails_without_writes(world, "C-1001 also holds acme.net, which the manifest does not list")


def test_a_misspelt_domain_is_found_before_any_write(world: World) -> None:
    world.write("acme-com.yml", manifest(domains="[acme.com, acme.nett]"))
    _fails_without_writes(world, "acme.nett is on no account, not on the direct account C-1001")


def test_a_zero_fee_does_not_validate(world: World) -> None:
    from transfer_runner import commands

    text = manifest().replace("billing: {prorate: true}", 'billing: {prorate: true, '
                              'transfer_fee: "0.00"}')  # fmt: skip
    world.write("acme-com.yml", text)
    result = commands.validate(world.settings(), commands.Selection([str(world.manifests)]))
    assert any("the transfer fee must be more than 0.00" in d.message for d in result.diagnostics)


@pytest.mark.parametrize("tags", [("billing",), ("account", "billing")])
def test_billing_before_the_move_is_refused(world: World, tags: tuple[str, ...]) -> None:
    [result] = world.apply(tags=list(tags)).transfers
    assert result.status == "failed"
    assert "refusing to bill before the cut-over" in result.message
    dump = world.dump()
    assert dump["charges"] == [] and dump["credits"] == []


def test_plan_before_the_move_still_shows_the_amounts(world: World) -> None:
    planned = world.plan().transfers[0]
    actions = [a.text for s in planned.steps for a in s.actions]
    assert any(a.startswith("credit 80.00 to C-1001") for a in actions), actions
    assert "charge 25.00 transfer fee to R-301" in actions
