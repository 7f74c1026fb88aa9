"""Each step, table-driven: first run `changed`, second run `ok`, against the sandbox.

The playbook is cut after task k; running it twice shows that task k makes its change once
and then finds it made (the run-twice idempotence test for every module).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.builders import World
from transfer_runner import commands
from transfer_runner.playbook.loader import default_playbook_path

TASKS = [t["name"] for t in yaml.safe_load(default_playbook_path().read_text())["tasks"]]


def _prefix_playbook(root: Path, k: int) -> Path:
    data = yaml.safe_load(default_playbook_path().read_text())
    data["tasks"] = data["tasks"][: k + 1]
    path = root / f"prefix-{k}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_default_playbook_has_the_fifteen_steps() -> None:
    assert len(TASKS) == 15


@pytest.mark.parametrize("k", range(len(TASKS)), ids=TASKS)
def test_step_changes_once_then_is_ok(world: World, k: int) -> None:
    settings = world.settings(playbook=str(_prefix_playbook(world.root, k)))
    first = commands.apply(settings, commands.Selection([str(world.manifests)])).transfers[0]
    assert first.status == "succeeded", first.message
    assert first.steps[k].status == "changed", first.steps[k]
    writes = world.writes()
    second = commands.apply(settings, commands.Selection([str(world.manifests)])).transfers[0]
    assert second.status == "unchanged", second.message
    assert [s.status for s in second.steps] == ["ok"] * (k + 1)
    assert world.writes() == writes
    planned = commands.plan(settings, commands.Selection([str(world.manifests)])).transfers[0]
    assert planned.status == "unchanged"


def test_skipped_when_false(world: World) -> None:
    from tests.builders import manifest

    world.write("acme-com.yml", manifest(quarantine="skip", prorate="false"))
    result = world.apply().transfers[0]
    assert result.status == "succeeded", result.message
    by_name = {s.name: s.status for s in result.steps}
    assert by_name["Export quarantine to S3"] == "skipped"
    assert by_name["Pro-rate the direct subscription"] == "skipped"
    assert world.dump()["credits"] == []
