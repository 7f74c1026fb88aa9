"""The whole procedure through `commands.apply` on the sandbox and moto S3."""

from __future__ import annotations

import json

from tests.builders import BUCKET, GLOBEX, World, both_platform_paths, manifest

pytestmark = both_platform_paths  # the embedded sandbox, and over HTTP


def test_full_apply_moves_the_customer(world: World, s3) -> None:
    report = world.apply()
    [result] = report.transfers
    assert result.status == "succeeded", result.message
    assert result.counts == {"ok": 0, "changed": 15, "failed": 0, "skipped": 0}

    dump = world.dump()
    new = [a for a in dump["accounts"] if a["type"] == "resold"]
    assert len(new) == 1
    new = new[0]
    assert new["parent"] == "R-301" and new["status"] == "active"
    assert sorted(new["domains"]) == ["acme.com", "acme.net"]  # temporary domain removed
    assert new["users"] == 40 and new["max_domains"] == 2
    assert sorted(new["services"]) == ["restoremail", "spamstopshere"]
    assert new["archive_messages"] == 80  # archive: migrate
    assert new["quarantine_messages"] == 0  # quarantine: export only
    direct = world.account("C-1001")
    assert direct["status"] == "cancelled" and direct["domains"] == []
    assert [(c["account"], c["amount"], c["idempotency_key"]) for c in dump["charges"]] == [
        ("R-301", "25.00", "transfer-fee:acme-com")
    ]
    [credit] = dump["credits"]  # 120.00 for 30 days, cancelled after 10 of them
    assert (credit["account"], credit["amount"]) == ("C-1001", "80.00")
    assert credit["idempotency_key"] == "prorate:C-1001"  # the customer's, not the manifest's
    for ticket in dump["tickets"][:2]:  # claimed before the first write, then told the outcome
        claim, outcome = ticket["comments"]
        assert claim.startswith("Claimed by transfer-runner for transfer acme-com.\n")
        assert new["id"] in outcome

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]}
    for store, count in (("quarantine", 30), ("archive", 80)):
        assert f"runs/acme-com/{store}/index.jsonl" in keys
        assert f"runs/acme-com/{store}/part-00001.tar.zst" in keys
        index = s3.get_object(Bucket=BUCKET, Key=f"runs/acme-com/{store}/index.jsonl")
        lines = index["Body"].read().decode().splitlines()
        assert len(lines) == count
        assert {"id", "part", "size", "sha256", "received_at"} <= set(json.loads(lines[0]))


def test_reapply_changes_nothing_and_writes_nothing(world: World) -> None:
    assert world.apply().transfers[0].status == "succeeded"
    before, dump = world.writes(), world.dump()
    again = world.apply()
    [result] = again.transfers
    assert result.status == "unchanged", result.message
    assert result.counts["changed"] == 0 and result.counts["failed"] == 0
    assert world.writes() == before  # I5: no platform write at all
    after = world.dump()
    after.pop("writes", None), dump.pop("writes", None)
    assert after == dump


def test_plan_reports_changes_and_writes_nothing(world: World) -> None:
    report = world.plan()
    [result] = report.transfers
    assert result.status == "pending", result.message
    actions = [a.text for s in result.steps for a in s.actions]
    assert any("charge 25.00 transfer fee to R-301" in a for a in actions)
    assert any(a.startswith("credit ") and "C-1001" in a for a in actions)
    assert any("create a resold account under R-301 on gdi.acme.com" in a for a in actions)
    assert world.writes() == 0
    assert not world.state.exists()  # plan never writes state


def test_plan_after_apply_has_nothing_to_do(world: World) -> None:
    world.apply()
    [result] = world.plan().transfers
    assert result.status == "unchanged"


def test_two_transfers_in_one_run(world: World) -> None:
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    report = world.apply(forks=2)
    assert sorted((t.name, t.status) for t in report.transfers) == [
        ("acme-com", "succeeded"),
        ("globex-io", "succeeded"),
    ]
    dump = world.dump()
    assert len([a for a in dump["accounts"] if a["type"] == "resold"]) == 2
    assert sorted(c["idempotency_key"] for c in dump["charges"]) == [
        "transfer-fee:acme-com",
        "transfer-fee:globex-io",
    ]


def test_adopts_an_account_the_reseller_created(world: World) -> None:
    from transfer_runner.platforms.base import NewAccount
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    platform = SandboxPlatform(world.sandbox)
    made = platform.create_account(
        NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail")),
        "reseller-made-it",
    )
    platform.close()
    report = world.apply()
    assert report.transfers[0].status == "succeeded", report.transfers[0].message
    resold = [a for a in world.dump()["accounts"] if a["type"] == "resold"]
    assert [a["id"] for a in resold] == [made.id]
    assert sorted(resold[0]["domains"]) == ["acme.com", "acme.net"]


def test_conflicting_account_on_temporary_domain_fails_clearly(world: World) -> None:
    from transfer_runner.platforms.base import NewAccount
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    platform = SandboxPlatform(world.sandbox)
    platform.create_account(
        NewAccount("R-301", "acme.com", "gdi.acme.com", 10, 2, ("spamstopshere",)), "other"
    )
    platform.close()
    [result] = world.apply().transfers
    assert result.status == "failed"
    assert "conflicts" in result.message and "10 users" in result.message
    assert world.account("C-1001")["status"] == "active"


def test_drift_is_reported_and_not_applied(world: World) -> None:
    world.apply()
    world.write("acme-com.yml", manifest(users=41))
    before = world.writes()
    [planned] = world.plan().transfers
    assert planned.status == "failed" and "drift" in planned.message
    [applied] = world.apply().transfers
    assert applied.status == "failed" and "drift" in applied.message
    assert world.writes() == before


def test_plan_midway_shows_the_remaining_work(world: World) -> None:
    world.apply(tags=("authorize", "account"))  # tickets claimed, account made, nothing exported
    [planned] = world.plan().transfers
    assert planned.status == "pending", planned.message
    by_name = {s.name: s for s in planned.steps}
    ensure = by_name["Ensure the new account under the reseller on the temporary domain"]
    assert ensure.status == "ok"
    imports = by_name["Import the exports into the new account"]
    assert imports.status == "changed"
    assert "import the archive export into A-1" in [a.text for a in imports.actions]


def test_receipt_is_written_once_verified(world: World, s3) -> None:
    world.apply()
    receipt = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/acme-com/receipt.json")["Body"].read()
    )
    assert receipt["transfer"] == "acme-com"
    assert set(receipt["stores"]) == {"quarantine", "archive"}
    assert receipt["stores"]["archive"]["messages"] == 80
    before = s3.head_object(Bucket=BUCKET, Key="runs/acme-com/receipt.json")["ETag"]
    world.apply()
    assert s3.head_object(Bucket=BUCKET, Key="runs/acme-com/receipt.json")["ETag"] == before


def test_zstd_parts(world: World, s3) -> None:
    from transfer_runner import commands

    report = commands.apply(
        world.settings(compression="zstd"), commands.Selection([str(world.manifests)])
    )
    assert report.transfers[0].status == "succeeded", report.transfers[0].message
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]}
    assert "runs/acme-com/archive/part-00001.tar.zst" in keys
