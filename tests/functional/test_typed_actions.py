"""Typed actions: `check` returns the writes as data, `apply` executes exactly those, `plan
--out` saves them, and `apply plan.json` refuses a write the plan did not show."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from tests.builders import World, both_platform_paths
from transfer_runner import commands
from transfer_runner.errors import ConfigError
from transfer_runner.modules.claims import CLAIM_KIND

UP_TO_THE_CUT_OVER = ("authorize", "account", "data", "cutover")


def _audit(world: World) -> list[tuple[str, str]]:
    """(operation, idempotency key) of every write the sandbox carried out (not replays)."""
    with sqlite3.connect(world.sandbox) as db:
        rows = db.execute(
            "SELECT op, idempotency_key FROM audit WHERE replayed = 0 AND error IS NULL "
            "AND idempotency_key IS NOT NULL ORDER BY seq"
        ).fetchall()
    return [(op, key) for op, key in rows]


def _plan_file(world: World, **kw: Any) -> tuple[str, dict[str, Any]]:
    path = str(world.root / "plan.json")
    commands.plan(world.settings(), commands.Selection([str(world.manifests)]), out=path, **kw)
    with open(path, encoding="utf-8") as f:
        return path, json.load(f)


@both_platform_paths
def test_every_platform_write_is_an_action_its_check_returned(world: World) -> None:
    report = world.apply()
    [result] = report.transfers
    assert result.status == "succeeded", result.message
    keys = {a.key for s in result.steps for a in s.actions if a.key}
    assert len(keys) >= 10  # account, moves, detach, cancel, credit, subscription, fee, ...
    for op, key in _audit(world):
        if key.startswith(f"{CLAIM_KIND}:"):
            continue  # the ticket claims come before the first write (before_write), not a step
        # a message import's key is its store's import key and the message id
        assert key in keys or any(key.startswith(f"{k}:") for k in keys), (op, key, keys)


def test_plan_out_saves_each_steps_actions_as_data(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    _, doc = _plan_file(world)
    assert doc["version"] == 2 and len(doc["playbook_sha256"]) == 64
    steps = doc["transfers"][0]["steps"]
    [create] = steps["Ensure the new account under the reseller on the temporary domain"]
    assert create["kind"] == "account.create" and create["target"] == "gdi.acme.com"
    assert create["key"] == "account:acme-com" and create["per_attempt"] is True
    assert create["params"] == {
        "parent": "R-301",
        "name": "acme.com",
        "users": 40,
        "max_domains": 2,
        "services": ["spamstopshere", "restoremail"],
    }
    moves = steps["Move the customer's domains to the new account"]
    assert [(m["target"], m["params"]) for m in moves] == [
        ("acme.com", {"from": "C-1001", "to": None}),  # the new account is known after apply
        ("acme.net", {"from": "C-1001", "to": None}),
    ]
    [fee] = steps["Charge the reseller the transfer fee"]
    assert (fee["kind"], fee["target"], fee["key"]) == (
        "billing.charge",
        "R-301",
        "transfer-fee:acme-com",
    )
    assert fee["params"] == {"amount": "25.00"}
    [credit] = steps["Pro-rate the direct subscription"]
    assert credit["params"]["amount"] is None  # before the cut-over the day is an estimate
    assert credit["text"].startswith("credit 80.00 to C-1001")
    assert world.writes() == 0


def test_apply_plan_refuses_a_write_the_plan_did_not_show(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    assert world.apply(tags=UP_TO_THE_CUT_OVER).transfers[0].status == "succeeded"
    path, doc = _plan_file(world)
    [credit] = doc["transfers"][0]["steps"]["Pro-rate the direct subscription"]
    assert credit["params"]["amount"] == "80.00"  # after the cut-over: the amount is known
    with sqlite3.connect(world.sandbox) as db:  # the price changes after the review
        db.execute("UPDATE billing SET price = '240.00' WHERE account = 'C-1001'")
    [result] = commands.apply(world.settings(), commands.Selection([path])).transfers
    assert result.status == "failed"
    assert "Pro-rate the direct subscription: not in the saved plan: credit 160.00" in (
        result.message
    )
    assert world.dump()["credits"] == [] and world.dump()["charges"] == []
    # A new plan shows the new amount; applying it completes the transfer.
    path, _ = _plan_file(world)
    [result] = commands.apply(world.settings(), commands.Selection([path])).transfers
    assert result.status == "succeeded", result.message
    assert [c["amount"] for c in world.dump()["credits"]] == ["160.00"]  # 20 of 30 days unused


def test_apply_plan_executes_the_actions_it_saved(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    path, doc = _plan_file(world)
    [result] = commands.apply(world.settings(), commands.Selection([path])).transfers
    assert result.status == "succeeded", result.message
    planned = doc["transfers"][0]["steps"]
    for step in result.steps:
        for action in step.actions:
            if action.kind.startswith(("export.", "import.")):
                continue  # copies of the mail follow the mailbox
            shown = [p for p in planned[step.name] if p["kind"] == action.kind]
            assert any(p["target"] in (None, action.target) for p in shown), (step.name, action)


def test_a_plan_is_stale_after_the_playbook_changes(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    path, _ = _plan_file(world)
    from transfer_runner.playbook.loader import default_playbook_path

    changed = world.root / "playbook.yml"
    text = default_playbook_path().read_text(encoding="utf-8")
    changed.write_text(text.replace('transfer_fee: "25.00"', 'transfer_fee: "30.00"'))
    with pytest.raises(ConfigError, match="(?s)stale plan.*the playbook changed since the plan"):
        commands.apply(world.settings(playbook=str(changed)), commands.Selection([path]))
    assert world.writes() == 0


def test_a_plan_of_an_earlier_version_is_refused(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    path, doc = _plan_file(world)
    doc["version"] = 1
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    with pytest.raises(ConfigError, match="a plan of version 1.*make a new plan"):
        commands.apply(world.settings(), commands.Selection([path]))
    assert world.writes() == 0


def test_a_plan_whose_actions_do_not_read_is_refused(world: World, monkeypatch) -> None:
    monkeypatch.chdir(world.root)
    path, doc = _plan_file(world)
    step = next(iter(doc["transfers"][0]["steps"]))
    doc["transfers"][0]["steps"][step][0]["params"] = "amount=1"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    with pytest.raises(ConfigError, match="the plan's actions do not read: .*params"):
        commands.apply(world.settings(), commands.Selection([path]))
    assert world.writes() == 0
