"""Issue 12: a ticket that needs review authorizes only once a person named in the manifest
(`spec.authorization.reviewed_by`) approved it; the approval is in the plan, the step's
outputs and the receipt, and it never overrides a refusal."""

from __future__ import annotations

import json
from typing import Any

from tests.builders import BUCKET, World, manifest
from tests.functional.test_forged_authorizations import _fails_without_writes, _rebuild

UNCLEAR = {"T-5001": {"body": "We, acme.com, would like to talk about moving to Northwind IT."}}
REVIEWER = "Jane Roe <jane@example.com>"


def _reviewed(world: World) -> None:
    text = manifest().replace(
        "reseller_ticket: T-5002\n", f"reseller_ticket: T-5002\n    reviewed_by: {REVIEWER}\n"
    )
    assert f"reviewed_by: {REVIEWER}" in text
    world.write("acme-com.yml", text)


def test_a_ticket_that_needs_review_stops_the_transfer_without_a_reviewer(world: World) -> None:
    _rebuild(world, UNCLEAR)
    _fails_without_writes(
        world, "customer ticket T-5001 needs review", "spec.authorization.reviewed_by"
    )


def test_a_reviewed_ticket_authorizes_and_the_approval_is_shown_and_kept(
    world: World, s3: Any
) -> None:
    _rebuild(world, UNCLEAR)
    _reviewed(world)
    [planned] = world.plan().transfers
    step = planned.steps[0]
    assert step.status == "changed", step.message
    assert "needs review: it" in step.message and f"approved by {REVIEWER}" in step.message
    [applied] = world.apply().transfers
    assert applied.status == "succeeded", applied.message
    outputs = applied.steps[0].outputs
    assert outputs["reviewed_by"] == REVIEWER and outputs["review"].startswith("needs review")
    assert "reviewed_by" not in applied.steps[1].outputs  # the reseller's ticket is clear
    receipt = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/acme-com/receipt.json")["Body"].read()
    )
    assert receipt["authorization"] == {
        "customer_ticket": "T-5001", "reseller_ticket": "T-5002", "reviewed_by": REVIEWER,
    }  # fmt: skip


def test_a_reviewer_does_not_override_a_refusal(world: World) -> None:
    _rebuild(world, {"T-5001": {"body": "We, acme.com, do not authorize the transfer of our "
                                "direct account to resold under Northwind IT."}})  # fmt: skip
    _reviewed(world)
    _fails_without_writes(world, "customer ticket T-5001 is refused")


def test_the_reviewer_is_checked_by_the_schema(world: World) -> None:
    from transfer_runner import commands

    text = manifest().replace("reseller_ticket: T-5002\n", "reseller_ticket: T-5002\n"
                              "    reviewed_by: '  '\n")  # fmt: skip
    world.write("acme-com.yml", text)
    result = commands.validate(world.settings(), commands.Selection([str(world.manifests)]))
    assert any("reviewed_by" in d.where for d in result.diagnostics), result.diagnostics
