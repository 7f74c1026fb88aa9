"""`abort`: an unfinished transfer is undone before its point of no return, at every step
boundary, on both platform paths; refused after it; never applied again unless its manifest
changes, and then applied from scratch."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.builders import BUCKET, World, both_platform_paths, manifest
from transfer_runner import commands
from transfer_runner.engine.results import StepResult
from transfer_runner.engine.runner import NullReporter
from transfer_runner.manifest.model import Transfer

pytestmark = both_platform_paths

REASON = "the reseller withdrew (T-5002)"
FIRST_WRITE_STEP = 3  # "Ensure the new account": the tickets are claimed on the platform first
MOVE_STEP = 8  # "Move the customer's domains": the point of no return


class StopAfter(NullReporter):
    """Sets the run's stop event once `steps` steps have finished: the transfer is then
    interrupted at that step boundary."""

    def __init__(self, steps: int, stop: threading.Event) -> None:
        self.left, self.stop = steps, stop

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        self.left -= 1
        if self.left == 0:
            self.stop.set()


def _apply_until(world: World, steps: int) -> None:
    stop = threading.Event()
    [result] = world.apply(reporter=StopAfter(steps, stop), stop=stop).transfers
    assert result.status == "interrupted" and len(result.steps) == steps, result


def _platform(world: World) -> dict[str, Any]:
    """What abort must leave as before: accounts (but a cancelled one the transfer made),
    their domains, money, and every ticket's status."""
    dump = world.dump()
    accounts = {
        a["id"]: (a["status"], tuple(a["domains"]))
        for a in dump["accounts"]
        if not (a["type"] == "resold" and a["status"] == "cancelled" and not a["domains"])
    }
    return {
        "accounts": accounts,
        "charges": dump["charges"],
        "credits": dump["credits"],
        "tickets": {t["id"]: t["status"] for t in dump["tickets"]},
    }


def _abort(world: World, **kw: Any) -> Any:
    return commands.abort(world.settings(), "acme-com", REASON, [str(world.manifests)], **kw)


@pytest.mark.parametrize("boundary", range(1, MOVE_STEP))
def test_abort_at_each_step_boundary_leaves_the_platform_as_before(
    world: World, boundary: int
) -> None:
    world.write("acme-com.yml", manifest())
    before = _platform(world)
    _apply_until(world, boundary)

    planned = _abort(world, dry_run=True)
    assert planned.status == "would abort"
    writes = world.writes()
    assert writes == world.writes()  # the dry run wrote nothing
    result = _abort(world)
    assert result.status == "aborted", result
    assert list(result.actions) == list(planned.actions)
    assert _platform(world) == before

    comments = {t["id"]: t["comments"] for t in world.dump()["tickets"]}
    for ticket in ("T-5001", "T-5002"):  # claimed on the platform before step 3's first write
        released = [c for c in comments[ticket] if REASON in c]
        assert len(released) == (1 if boundary >= FIRST_WRITE_STEP else 0), comments[ticket]
        assert all("claim is released" in c for c in released)
    [view] = commands.status(world.settings(), ["acme-com"])
    assert view.record.status == "aborted" and view.lock is None

    again = _abort(world)  # idempotent: nothing is left to undo
    assert again.status == "aborted" and len(again.actions) == 1  # only the record
    assert world.apply().transfers[0].status == "aborted"  # not applied again


def test_abort_is_refused_past_the_point_of_no_return(world: World) -> None:
    world.write("acme-com.yml", manifest())
    _apply_until(world, MOVE_STEP)
    writes = world.writes()
    result = _abort(world)
    assert result.status == "refused"
    assert "past the point of no return: acme.com is on" in result.message
    assert world.writes() == writes
    assert world.apply().transfers[0].status == "succeeded"  # apply finishes it
    refused = _abort(world)
    assert refused.status == "refused" and "is completed" in refused.message


def test_a_changed_manifest_is_applied_again_from_scratch(world: World) -> None:
    world.write("acme-com.yml", manifest())
    _apply_until(world, 5)
    assert _abort(world).status == "aborted"
    first_new = {a["id"] for a in world.dump()["accounts"] if a["type"] == "resold"}
    world.write("acme-com.yml", manifest(users=41))  # the customer comes back, with a change
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    resold = [a for a in world.dump()["accounts"] if a["type"] == "resold"]
    [active] = [a for a in resold if a["status"] == "active"]
    assert active["id"] not in first_new and active["users"] == 41
    assert sorted(active["domains"]) == ["acme.com", "acme.net"]
    assert len(world.dump()["charges"]) == 1


def test_another_transfer_may_use_the_released_tickets(world: World) -> None:
    world.write("acme-com.yml", manifest())
    _apply_until(world, 3)
    assert _abort(world).status == "aborted"
    (world.manifests / "acme-com.yml").unlink()
    world.write("acme-renamed.yml", manifest("acme-renamed"))
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message


def test_the_receipt_notes_the_abort_and_keeps_the_note(world: World, s3: Any) -> None:
    world.write("acme-com.yml", manifest())
    _apply_until(world, MOVE_STEP - 1)  # the exports are verified: a receipt vouches for them
    key = "runs/acme-com/receipt.json"
    assert "aborts" not in json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    planned = _abort(world, dry_run=True)
    assert f"note the abort in the export's receipt {key} (the export stays)" in planned.actions
    assert "aborts" not in json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert _abort(world).status == "aborted"
    [note] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["aborts"]
    assert note["reason"] == REASON and note["by"] and note["aborted_at"].endswith("Z")
    again = _abort(world)  # noted once per manifest version
    assert not any("receipt" in a for a in again.actions)

    world.write("acme-com.yml", manifest(users=41))  # applied again: the new receipt keeps it
    assert world.apply().transfers[0].status == "succeeded"
    receipt = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert receipt["aborts"] == [note]
