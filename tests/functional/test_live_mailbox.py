"""Live mailboxes (issue 11): mail arrives and expires while a transfer runs; nothing is lost.

The world is the functional fixture's sandbox (acme.com, acme.net on C-1001; quarantine
`export`, archive `migrate`) with moto S3. Mail is delivered to whichever active account holds
a domain and expired oldest first, by the sandbox's `MailFlow`, between and during the runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.builders import BUCKET, World, manifest
from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

DIRECT = "C-1001"


@pytest.fixture
def flow(world: World) -> Iterator[MailFlow]:
    with SandboxPlatform(world.sandbox) as platform:
        yield MailFlow(platform, FlowSpec(domains=("acme.com",), size=1500))


def ids(world: World, account: str, store: str) -> dict[str, str]:
    """id -> SHA-256 of what the sandbox holds in one store of one account."""
    with sqlite3.connect(f"{world.sandbox.resolve().as_uri()}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT id, sha256 FROM messages WHERE account = ? AND store = ?", (account, store)
        ).fetchall()
    return dict(rows)


def exported(s3: Any, store: str) -> dict[str, str]:
    import json

    body = s3.get_object(Bucket=BUCKET, Key=f"runs/acme-com/{store}/index.jsonl")["Body"].read()
    lines = [json.loads(line) for line in body.decode().splitlines()]
    return {line["id"]: line["sha256"] for line in lines}


def s3_objects(s3: Any) -> dict[str, str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


def new_account(world: World) -> str:
    return next(a["id"] for a in world.dump()["accounts"] if a["type"] == "resold")


def test_an_equal_count_swap_loses_nothing(world: World, s3: Any, flow: MailFlow) -> None:
    """Pre-stage, then one message expires and one arrives per store: the counts are equal,
    the id sets are not. The old count gate cancelled and lost the new message."""
    staged = world.apply(tags=["data"]).transfers[0]
    assert staged.status == "succeeded", staged.message
    before = {s: ids(world, DIRECT, s) for s in ("quarantine", "archive")}
    assert flow.expire(1) == 2 and flow.deliver(2).delivered == 2
    after = {s: ids(world, DIRECT, s) for s in ("quarantine", "archive")}
    assert all(len(after[s]) == len(before[s]) and after[s] != before[s] for s in after)

    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    target = new_account(world)
    for store in ("quarantine", "archive"):
        assert after[store].items() <= exported(s3, store).items()
    assert after["archive"].items() <= ids(world, target, "archive").items()
    arrived = set(after["archive"]) - set(before["archive"])
    assert arrived and arrived <= set(ids(world, target, "archive"))


def test_mail_during_the_cut_over_lands_in_the_new_account_untouched(
    world: World, s3: Any, flow: MailFlow
) -> None:
    staged = world.apply(tags=["data"]).transfers[0]
    assert staged.status == "succeeded", staged.message
    flow.deliver(4)  # before the move: to the direct account, into the final pass
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    target = new_account(world)
    flow.deliver(4)  # after the move: straight into the new account
    late = set(ids(world, target, "archive")) - set(exported(s3, "archive"))
    assert len(late) == 2  # round-robin over two stores: two of the four are archive
    final = next(s for s in result.steps if s.module == "data.final_sync")
    assert final.status == "changed"
    assert world.apply().transfers[0].status == "unchanged"
    assert late <= set(ids(world, target, "archive"))


def test_a_pass_over_an_unchanged_store_writes_nothing(world: World, s3: Any) -> None:
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    objects = s3_objects(s3)
    again = world.apply(tags=["data"], recheck=True).transfers[0]
    assert again.status == "unchanged", again.message
    assert s3_objects(s3) == objects  # no object added, rewritten or deleted


def test_a_delta_pass_adds_parts_and_never_rewrites_earlier_ones(
    world: World, s3: Any, flow: MailFlow
) -> None:
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    first = s3_objects(s3)
    flow.deliver(102)  # 51 a store: more than the sync policy's small delta (50)
    result = world.apply(tags=["data"]).transfers[0]
    assert result.status == "succeeded", result.message
    now = s3_objects(s3)
    parts = {k: v for k, v in first.items() if k.endswith(".tar.zst")}
    assert parts.items() <= now.items()  # every earlier part is still there, unchanged
    assert len([k for k in now if k.endswith(".tar.zst")]) == len(parts) + 2  # one new a store
    export = next(s for s in result.steps if s.name == "Export archive to S3")
    assert (export.outputs["pass"], export.outputs["new_messages"]) == (2, 51)


def test_a_small_delta_is_left_to_the_final_pass(world: World, s3: Any, flow: MailFlow) -> None:
    """A pre-staged export whose delta is already small takes no pass before the move: the
    final pass takes it, so the cut-over reads and rewrites the export once."""
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    flow.deliver(6)  # 3 a store: within the small delta
    before = s3_objects(s3)
    staged = world.apply(tags=["data"]).transfers[0]
    assert staged.status == "unchanged", staged.message
    export = next(s for s in staged.steps if s.name == "Export archive to S3")
    assert "3 new" in export.message and "left to the final pass" in export.message
    assert s3_objects(s3) == before  # nothing written

    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    export = next(s for s in result.steps if s.name == "Export archive to S3")
    assert export.status == "ok"  # no pass before the move
    final = next(s for s in result.steps if s.module == "data.final_sync")
    assert final.outputs["exported"] == {"quarantine": 3, "archive": 3}
    assert set(ids(world, DIRECT, "archive")) <= set(exported(s3, "archive"))
    assert set(ids(world, DIRECT, "archive")) <= set(ids(world, new_account(world), "archive"))


def test_a_message_changed_under_the_same_id_is_reported(world: World, s3: Any) -> None:
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    victim = sorted(ids(world, DIRECT, "archive"))[3]
    with sqlite3.connect(world.sandbox) as conn:
        conn.execute(
            "UPDATE messages SET sha256 = ? WHERE account = ? AND id = ?",
            ("0" * 64, DIRECT, victim),
        )
    [result] = world.apply().transfers
    assert result.status == "failed"
    assert f"message {victim} changed under the same id" in result.message
    assert world.account(DIRECT)["status"] == "active"


def test_plan_shows_the_delta_of_each_store(world: World, s3: Any, flow: MailFlow) -> None:
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    flow.deliver(4)
    flow.expire(1)
    planned = world.plan().transfers[0]
    export = next(s for s in planned.steps if s.name == "Export archive to S3")
    assert export.status == "ok"  # a small delta: the final pass takes it
    assert "80 messages in 1 pass(es); 2 new (3000 bytes)" in export.message
    assert "(1 expired since)" in export.message

    flow.deliver(102)  # 51 more a store: beyond the small delta, a pass before the move
    planned = world.plan().transfers[0]
    export = next(s for s in planned.steps if s.name == "Export archive to S3")
    assert export.status == "changed"
    assert "export pass 2 of archive: 53 new messages" in export.message
    assert "80 exported so far, 1 expired since" in export.message


def test_a_damaged_part_is_discarded_and_exported_again(world: World, s3: Any) -> None:
    assert world.apply(tags=["data"]).transfers[0].status == "succeeded"
    key = "runs/acme-com/archive/part-00001.tar.zst"
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    [failed] = world.apply(recheck=True).transfers
    assert failed.status == "failed"
    assert "discarded the damaged part(s) part-00001.tar.zst" in failed.message
    [healed] = world.apply().transfers
    assert healed.status == "succeeded", healed.message
    assert set(ids(world, DIRECT, "archive")) <= set(exported(s3, "archive"))
    assert "runs/acme-com/archive/part-00002.tar.zst" in s3_objects(s3)


def test_the_gate_refuses_a_direct_account_that_still_holds_a_domain(
    world: World, s3: Any, tmp_path: Any
) -> None:
    """A playbook edited back to cancel-then-move is refused: mail could still arrive."""
    from transfer_runner.playbook.loader import default_playbook_path

    text = default_playbook_path().read_text(encoding="utf-8")
    cancel = text.index("  - name: Cancel the direct account")
    move = text.index("  - name: Move the customer's domains")
    block = text[cancel : text.index("  - name: Remove the temporary domain")]
    edited = text.replace(block, "")
    edited = edited[:move] + block + edited[move:]
    path = tmp_path / "cancel-first.yml"
    path.write_text(edited, encoding="utf-8")
    [result] = commands_apply(world, path)
    assert result.status == "failed"
    assert "still holds acme.com, acme.net and may receive mail" in result.message
    assert world.account(DIRECT)["status"] == "active"


def commands_apply(world: World, playbook: Any) -> Any:
    from transfer_runner import commands

    return commands.apply(
        world.settings(playbook=str(playbook)), commands.Selection([str(world.manifests)])
    ).transfers


def test_skip_stores_need_no_export(world: World, s3: Any) -> None:
    world.write("acme-com.yml", manifest(quarantine="skip", archive="skip"))
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
