"""Re-applying completed transfers is answered from the state store (issue 4, invariant I5).

A completed transfer with the same manifest and the same playbook is reported `unchanged`
without a single platform call, lock or step record; another playbook, `--recheck`, or an
incomplete record send it through every step's check again, still without a write.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.builders import World
from transfer_runner import commands, platforms
from transfer_runner.state.open import open_state


class CountingPlatform:
    """Counts every platform method called through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or name == "close" or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[CountingPlatform]:
    """Every platform the commands open, counted."""
    opened: list[CountingPlatform] = []
    real = platforms.open_platform

    def open_counted(url: str) -> Any:
        opened.append(CountingPlatform(real(url)))
        return opened[-1]

    monkeypatch.setattr(platforms, "open_platform", open_counted)  # what commands.session opens
    return opened


def _calls(opened: list[CountingPlatform]) -> int:
    return sum(sum(p.calls.values()) for p in opened)


def _only_the_preflight(opened: list[CountingPlatform]) -> bool:
    """The run asked the platform one thing: the preflight's authenticated read, once per run
    whatever the number of transfers (the transfers themselves were answered from state)."""
    return [dict(p.calls) for p in opened] == [{"get_ticket": 1}]


def _events(world: World, run_id: str) -> list[str]:
    state = open_state(f"sqlite:{world.state}", read_only=True)
    try:
        return [e["kind"] for e in state.events() if e.get("run_id") == run_id]
    finally:
        state.close()


def _playbook_copy(world: World, name: str, append: str = "", old: str = "", new: str = "") -> Path:
    from transfer_runner.playbook.loader import default_playbook_path

    text = default_playbook_path().read_text(encoding="utf-8")
    assert old in text
    path = world.root / name
    path.write_text(text.replace(old, new) + append, encoding="utf-8")
    return path


def test_reapply_of_a_completed_transfer_asks_the_platform_only_the_preflight(
    world: World, counted: list[CountingPlatform]
) -> None:
    assert world.apply().transfers[0].status == "succeeded"
    counted.clear()
    dump, writes = world.dump(), world.writes()
    report = world.apply()
    [result] = report.transfers
    assert result.status == "unchanged" and "nothing to do" in result.message
    assert [s.status for s in result.steps] == ["ok"] * 15
    assert _only_the_preflight(counted)
    assert world.writes() == writes and world.dump() == dump
    assert _events(world, report.run_id) == ["transfer_finished"]  # no lock, no step record


def test_plan_without_refresh_asks_the_platform_only_the_preflight(
    world: World, counted: list[CountingPlatform]
) -> None:
    world.apply()
    counted.clear()
    [result] = world.plan(refresh=False).transfers
    assert result.status == "unchanged"
    assert _only_the_preflight(counted)


def test_a_refreshing_plan_reads_the_accounts_fee_and_credit_once_each(
    world: World, counted: list[CountingPlatform]
) -> None:
    world.apply()
    counted.clear()
    [result] = world.plan().transfers
    assert result.status == "unchanged"
    [platform] = counted
    assert dict(platform.calls) == {
        "get_ticket": 1, "get_account": 2, "find_charge": 1, "find_credit": 1
    }  # fmt: skip


def test_recheck_runs_every_check_against_the_platform_and_writes_nothing(
    world: World, counted: list[CountingPlatform]
) -> None:
    world.apply()
    counted.clear()
    writes = world.writes()
    [result] = world.apply(recheck=True).transfers
    assert result.status == "unchanged"
    assert counted[0].calls["get_ticket"] >= 2 and counted[0].calls["find_charge"] == 1
    assert world.writes() == writes


def test_a_comment_in_the_playbook_keeps_the_fast_path(
    world: World, counted: list[CountingPlatform]
) -> None:
    world.apply()
    counted.clear()
    playbook = _playbook_copy(world, "commented.yml", "# a comment changes nothing\n")
    report = commands.apply(
        world.settings(playbook=str(playbook)), commands.Selection([str(world.manifests)])
    )
    assert report.transfers[0].status == "unchanged"
    assert _only_the_preflight(counted)


def test_another_playbook_runs_the_checks_again_then_trusts_the_record(
    world: World, counted: list[CountingPlatform]
) -> None:
    world.apply()
    counted.clear()
    writes = world.writes()
    playbook = _playbook_copy(world, "v2.yml", old="defaults:\n", new="defaults:\n  release: 2\n")
    settings = world.settings(playbook=str(playbook))
    [result] = commands.apply(settings, commands.Selection([str(world.manifests)])).transfers
    assert result.status == "unchanged"
    assert _calls(counted) > 0 and world.writes() == writes
    counted.clear()
    assert (
        commands.apply(settings, commands.Selection([str(world.manifests)])).transfers[0].status
        == "unchanged"
    )
    assert _only_the_preflight(counted)  # v2 completed it: the record is trusted again


def test_a_changed_manifest_is_still_drift(world: World, counted: list[CountingPlatform]) -> None:
    from tests.builders import manifest

    world.apply()
    world.write("acme-com.yml", manifest(quarantine="migrate"))
    [result] = world.apply().transfers
    assert result.status == "failed" and "drift" in result.message


def test_a_state_of_schema_version_1_is_migrated(world: World) -> None:
    """A state file written before the playbook digest existed opens, and its completed
    transfers go through the checks once (their playbook is unknown)."""
    world.apply()
    conn = sqlite3.connect(world.state)
    conn.execute("ALTER TABLE transfers DROP COLUMN playbook_sha256")  # v2
    conn.execute("ALTER TABLE locks DROP COLUMN pid")  # v3
    conn.execute("ALTER TABLE locks DROP COLUMN machine")
    conn.execute("DELETE FROM schema_version WHERE version >= 2")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    state = open_state(f"sqlite:{world.state}")
    try:
        [record] = state.list_transfers()
        assert record.status == "succeeded" and record.playbook_sha256 == ""
    finally:
        state.close()
    writes = world.writes()
    assert world.apply().transfers[0].status == "unchanged"
    assert world.writes() == writes


def test_a_run_that_finds_every_step_done_completes_a_failed_transfer(world: World) -> None:
    """An earlier run did every write but failed before recording success (a lost reply on
    the last step): the run that finds everything done reports it succeeded, not unchanged."""
    from datetime import UTC, datetime

    from transfer_runner.state.base import TransferRecord

    world.apply()
    state = open_state(f"sqlite:{world.state}")
    try:
        [done] = state.list_transfers()
        state.set_transfer(TransferRecord(done.name, done.manifest_sha256, "failed",
                                          datetime.now(UTC), done.last_run_id))  # fmt: skip
    finally:
        state.close()
    writes = world.writes()
    [result] = world.apply().transfers
    assert result.status == "succeeded" and "already done" in result.message
    assert all(s.status == "ok" for s in result.steps) and world.writes() == writes
    assert world.apply().transfers[0].status == "unchanged"
