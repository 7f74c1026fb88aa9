"""Approved-only apply: `plan --out FILE`, then `apply FILE` exactly, refused when stale."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.builders import GLOBEX, World, manifest
from transfer_runner import commands
from transfer_runner.errors import ConfigError


def test_apply_a_saved_plan(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.root)
    plan_file = str(world.root / "plan.json")
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    commands.plan(
        world.settings(),
        commands.Selection([str(world.manifests)], limits=["acme-com"]),
        out=plan_file,
    )
    report = commands.apply(world.settings(), commands.Selection([plan_file]))
    assert [t.name for t in report.transfers] == ["acme-com"]  # exactly the planned transfer
    assert report.transfers[0].status == "succeeded"
    assert world.account("C-1002")["status"] == "active"


def test_a_plan_is_stale_after_the_manifest_changes(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    plan_file = str(world.root / "plan.json")
    commands.plan(world.settings(), commands.Selection([str(world.manifests)]), out=plan_file)
    world.write("acme-com.yml", manifest(users=41))
    with pytest.raises(ConfigError, match="(?s)stale plan.*changed since the plan"):
        commands.apply(world.settings(), commands.Selection([plan_file]))
    assert world.writes() == 0


def test_a_plan_is_stale_after_another_run(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    plan_file = str(world.root / "plan.json")
    commands.plan(world.settings(), commands.Selection([str(world.manifests)]), out=plan_file)
    world.apply(tags=("authorize",))  # someone else moved the transfer on
    with pytest.raises(ConfigError, match="state changed since the plan"):
        commands.apply(world.settings(), commands.Selection([plan_file]))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_changed_since_and_require_clean(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    _git(world.root, "init", "-q")
    _git(world.root, "add", "transfers")
    _git(world.root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    _git(world.root, "tag", "base")
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    with pytest.raises(ConfigError, match="uncommitted manifests: transfers/globex-io.yml"):
        commands.plan(
            world.settings(),
            commands.Selection(["transfers"], git=commands.GitGuards(require_clean=True)),
        )
    _git(world.root, "add", "transfers")
    _git(world.root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "two")
    guards = commands.GitGuards(changed_since="base", require_clean=True)
    report = commands.plan(world.settings(), commands.Selection(["transfers"], git=guards))
    assert [t.name for t in report.transfers] == ["globex-io"]


def test_each_shard_applies_its_part_of_one_plan(world: World, monkeypatch) -> None:
    from transfer_runner.sharding import shard_of

    monkeypatch.chdir(world.root)
    plan_file = str(world.root / "plan.json")
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    commands.plan(world.settings(), commands.Selection([str(world.manifests)]), out=plan_file)
    count = 3  # three shards for two transfers: one shard is empty and must do nothing
    while shard_of("acme-com", count) == shard_of("globex-io", count):
        count += 1  # a shard count that puts the two transfers apart
    applied = []
    for index in range(1, count + 1):
        selection = commands.Selection([plan_file], shard=(index, count))
        report = commands.apply(world.settings(), selection)
        applied.append(sorted(t.name for t in report.transfers))
        assert all(t.status == "succeeded" for t in report.transfers)
    assert sorted(name for names in applied for name in names) == ["acme-com", "globex-io"]
    assert sum(1 for names in applied if names) == 2  # each transfer in one shard only
    assert [] in applied


def test_limit_cannot_narrow_a_saved_plan(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    plan_file = str(world.root / "plan.json")
    commands.plan(world.settings(), commands.Selection([str(world.manifests)]), out=plan_file)
    with pytest.raises(ConfigError, match="--limit does not apply to a saved plan"):
        commands.apply(world.settings(), commands.Selection([plan_file], limits=["acme-com"]))
    assert world.writes() == 0
