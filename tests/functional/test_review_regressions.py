"""Regressions for holes found in review: each one broke an invariant before its fix."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import BUCKET, World, both_platform_paths, manifest
from transfer_runner import commands
from transfer_runner.errors import PlaybookError
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
from transfer_runner.playbook.loader import default_playbook_path
from transfer_runner.state.open import open_state

pytestmark = both_platform_paths  # the embedded sandbox, and over HTTP


def _playbook(world: World, name: str, edit: Any) -> str:
    data = yaml.safe_load(default_playbook_path().read_text())
    edit(data["tasks"])
    path = world.root / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_i2_mail_arriving_after_a_verified_export_is_exported_before_cancel(
    world: World, s3: Any
) -> None:
    world.apply(tags=("authorize", "account", "data"))  # data staged ahead of the cut-over
    with SandboxPlatform(world.sandbox) as platform:
        platform.import_message("C-1001", "archive", "zz-late-mail", b"Subject: late\r\n\r\nhi\r\n",
                                "test-late-mail")  # fmt: skip
    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    index = s3.get_object(Bucket=BUCKET, Key="runs/acme-com/archive/index.jsonl")["Body"].read()
    assert b"zz-late-mail" in index and len(index.splitlines()) == 81
    new = next(a for a in world.dump()["accounts"] if a["type"] == "resold")
    assert new["archive_messages"] == 81


def test_i1_tags_cannot_skip_ticket_verification(world: World) -> None:
    from tests.functional.test_invariants import _edit_ticket

    _edit_ticket(world, "T-5001", status="closed", resolution="rejected")
    for tags in (("billing",), ("account",), ("cutover",)):
        [result] = world.apply(tags=tags).transfers
        assert result.status == "failed" and "rejected" in result.message
    assert world.writes() == 0


def test_i1_no_write_when_the_playbook_drops_ticket_verification(world: World) -> None:
    playbook = _playbook(world, "no-tickets.yml",
                         lambda tasks: tasks.__delitem__(slice(0, 2)))  # fmt: skip
    [result] = commands.apply(
        world.settings(playbook=playbook), commands.Selection([str(world.manifests)])
    ).transfers
    assert result.status == "failed" and "not verified for this transfer" in result.message
    assert world.writes() == 0


def test_i3_fee_key_cannot_be_changed_by_the_playbook(world: World) -> None:
    world.apply()

    def rekey(tasks: list[dict[str, Any]]) -> None:
        tasks[13]["billing.charge"]["key"] = "fee:{{ metadata.name }}"

    playbook = _playbook(world, "rekeyed.yml", rekey)  # another playbook: the checks run again
    [result] = commands.apply(
        world.settings(playbook=playbook), commands.Selection([str(world.manifests)])
    ).transfers
    assert result.status == "failed" and "always 'transfer-fee:acme-com'" in result.message
    assert len(world.dump()["charges"]) == 1


def test_i4_domain_remove_only_takes_the_temporary_domain(world: World) -> None:
    def remove_real(tasks: list[dict[str, Any]]) -> None:
        step = {"name": "Remove a real domain",
                "domain.remove": {"account": "C-1001", "domain": "acme.com"}}  # fmt: skip
        tasks.insert(3, step)

    playbook = _playbook(world, "remove-real.yml", remove_real)
    [result] = commands.apply(
        world.settings(playbook=playbook), commands.Selection([str(world.manifests)])
    ).transfers
    assert result.status == "failed" and "only the temporary domain" in result.message
    assert sorted(world.account("C-1001")["domains"]) == ["acme.com", "acme.net"]


def test_drift_still_holds_after_a_failed_reapply(world: World) -> None:
    world.apply()
    failed = commands.apply(
        world.settings(export_to=None), commands.Selection([str(world.manifests)]), recheck=True
    )
    assert failed.transfers[0].status == "failed"
    world.write("acme-com.yml", manifest(quarantine="migrate"))
    before = world.writes()
    [result] = world.apply().transfers
    assert result.status == "failed" and "drift" in result.message
    assert world.writes() == before


def test_a_partial_tags_run_leaves_the_transfer_pending(world: World) -> None:
    assert world.apply(tags=("authorize",)).transfers[0].status == "succeeded"
    assert commands.status(world.settings())[0].record.status == "pending"
    world.write("acme-com.yml", manifest(users=40))  # unchanged content, still not drift
    assert world.apply().transfers[0].status == "succeeded"
    assert commands.status(world.settings())[0].record.status == "succeeded"


def test_bad_amount_in_a_playbook_is_a_clean_failure(world: World) -> None:
    def huge(tasks: list[dict[str, Any]]) -> None:
        tasks[13]["billing.charge"]["amount"] = "1e999"

    playbook = _playbook(world, "huge.yml", huge)  # 1e999 reads as a float (inf)
    with pytest.raises(PlaybookError, match="argument 'amount' must be str or int or Decimal"):
        commands.apply(
            world.settings(playbook=playbook), commands.Selection([str(world.manifests)])
        )
    assert world.dump()["charges"] == [] and world.writes() == 0  # refused when it loads


def test_a_bad_templated_amount_is_a_clean_failure_when_the_task_runs(world: World) -> None:
    def huge(tasks: list[dict[str, Any]]) -> None:
        tasks[13]["billing.charge"]["amount"] = "{{ 10.0 ** 400 }}"

    playbook = _playbook(world, "huge.yml", huge)
    [result] = commands.apply(
        world.settings(playbook=playbook), commands.Selection([str(world.manifests)])
    ).transfers
    assert result.status == "failed" and "internal" not in result.message
    assert world.dump()["charges"] == []


def test_a_failing_lease_renewal_stops_the_transfer(world: World, tmp_path: Path) -> None:
    from transfer_runner.engine.leases import Heartbeat

    class Run:
        run_id = "r-1"

        class state:  # noqa: N801 - a stand-in for the state store
            @staticmethod
            def renew_lock(name: str, run_id: str, ttl: float) -> bool:
                raise RuntimeError("database is locked")

    beat = Heartbeat(Run(), "acme-com", 0.03)  # type: ignore[arg-type]
    beat.start()
    assert beat.lost.wait(2.0)
    beat.stop()


def test_lock_lost_mid_run_stops_before_the_next_write(world: World, monkeypatch: Any) -> None:
    import transfer_runner.modules.account as account

    real_check = account.EnsureAccount.check
    stolen = threading.Event()

    def steal_then_check(self: Any, ctx: Any, args: Any) -> Any:
        state = open_state(f"sqlite:{world.state}")
        state.force_unlock("acme-com")
        assert state.acquire_lock("acme-com", "other", "r-other", "h", 600)
        state.close()
        stolen.set()
        return real_check(self, ctx, args)

    monkeypatch.setattr(account.EnsureAccount, "check", steal_then_check)
    [result] = world.apply().transfers
    assert stolen.is_set()
    assert result.status == "failed" and "no longer holds" in result.message
    assert not [a for a in world.dump()["accounts"] if a["type"] == "resold"]
    assert datetime.now(UTC)  # the run ended cleanly
