"""Saved plans for approved-only apply: `plan --out FILE`, then `apply FILE`.

A plan file records the playbook's digest and, per transfer, the manifest's SHA-256, the
transfer's state when planned and each step's actions as data (`modules.base.Action`: kind,
target, idempotency key, amounts). `apply FILE` applies exactly those transfers and refuses the
whole plan if the playbook, any manifest or any transfer's state changed since (a stale plan).
Then each step's fresh check must stay within what the plan showed: a write the plan did not
show (another account, domain, amount or key) fails that step before it writes
(`engine.planned`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transfer_runner.engine.planned import Planned
from transfer_runner.engine.results import RunReport
from transfer_runner.errors import ConfigError
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.base import Action
from transfer_runner.private_files import write_private
from transfer_runner.sharding import shard_of
from transfer_runner.state.base import StateStore

if TYPE_CHECKING:
    from transfer_runner.command_types import Selection

__all__ = [
    "PLAN_KIND",
    "PLAN_VERSION",
    "planned_actions",
    "is_plan_file",
    "write_plan",
    "read_plan",
    "stale_reasons",
    "plan_selection",
    "state_fingerprint",
]

PLAN_KIND = "transfer-runner/plan"
PLAN_VERSION = 2  # 2: each step's actions as data (1 had display strings only)


def state_fingerprint(state: StateStore, name: str) -> str:
    """A digest of everything the state store knows of a transfer (status and steps)."""
    record = state.get_transfer(name)
    steps = state.latest_steps(name)
    doc = {
        "status": record.status if record else None,
        "sha": record.manifest_sha256 if record else None,
        "steps": sorted(
            (s.name, s.status, s.run_id, s.ended_at.isoformat()) for s in steps.values()
        ),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def write_plan(
    path: str | Path,
    report: RunReport,
    transfers: Sequence[Transfer],
    state: StateStore,
    playbook_sha256: str,
) -> None:
    """Save the plan: the playbook's digest, and each transfer's manifest hash, state
    fingerprint and actions."""
    by_name = {t.name: t for t in transfers}
    doc = {
        "kind": PLAN_KIND,
        "version": PLAN_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "run_id": report.run_id,
        "playbook_sha256": playbook_sha256,
        "transfers": [
            {
                "name": result.name,
                "path": by_name[result.name].path,
                "manifest_sha256": by_name[result.name].sha256,
                "state": state_fingerprint(state, result.name),
                "status": result.status,
                "actions": [a.text for step in result.steps for a in step.actions],
                "steps": {
                    step.name: [a.to_dict() for a in step.actions]
                    for step in result.steps
                    if step.actions
                },
            }
            for result in report.transfers
        ],
    }
    write_private(path, json.dumps(doc, indent=2) + "\n")


def is_plan_file(path: str) -> bool:
    """True if `path` is a saved plan (JSON of our kind), not a manifest or directory."""
    file = Path(path)
    if not file.is_file() or file.suffix.lower() != ".json":
        return False
    try:
        kind: object = json.loads(file.read_text(encoding="utf-8")).get("kind")
        return kind == PLAN_KIND
    except (OSError, ValueError, AttributeError):
        return False


def read_plan(path: str | Path) -> dict[str, Any]:
    """The saved plan; ConfigError if it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable plan file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND:
        raise ConfigError(f"{path}: not a transfer-runner plan (kind {PLAN_KIND!r})")
    if doc.get("version") != PLAN_VERSION:
        raise ConfigError(
            f"{path}: a plan of version {doc.get('version')!r}; this transfer-runner applies "
            f"version {PLAN_VERSION}: make a new plan"
        )
    planned_actions(doc, str(path))  # malformed actions: refused before anything runs
    return doc


def planned_actions(doc: Mapping[str, Any], path: str = "plan") -> Planned:
    """Per transfer, per task, the actions the plan saved; ConfigError if they do not read."""
    planned: dict[str, Mapping[str, tuple[Action, ...]]] = {}
    try:
        for entry in doc["transfers"]:
            planned[entry["name"]] = {
                task: tuple(Action.from_dict(a) for a in actions)
                for task, actions in entry["steps"].items()
            }
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{path}: the plan's actions do not read: {exc}") from exc
    return planned


def stale_reasons(
    plan: dict[str, Any], transfers: Sequence[Transfer], state: StateStore, playbook_sha256: str
) -> list[str]:
    """Why the plan no longer describes the world (empty: it still does)."""
    by_name = {t.name: t for t in transfers}
    reasons = []
    if plan.get("playbook_sha256") != playbook_sha256:
        reasons.append("the playbook changed since the plan")
    for entry in plan["transfers"]:
        transfer = by_name.get(entry["name"])
        if transfer is None:
            reasons.append(f"{entry['name']}: its manifest {entry['path']} is gone")
        elif transfer.sha256 != entry["manifest_sha256"]:
            reasons.append(f"{entry['name']}: {transfer.path} changed since the plan")
        elif state_fingerprint(state, entry["name"]) != entry["state"]:
            reasons.append(f"{entry['name']}: its state changed since the plan (another run?)")
    return reasons


def plan_selection(plan: dict[str, Any], selection: Selection) -> tuple[dict[str, Any], Selection]:
    """The plan narrowed to `--shard` (each shard of a wave applies its part of one reviewed
    plan), and the selection that loads exactly its transfers. `--limit` cannot narrow a plan:
    what was reviewed is what runs."""
    from transfer_runner.command_types import Selection

    if selection.limits:
        raise ConfigError(
            "--limit does not apply to a saved plan: it runs what was reviewed "
            "(make a plan with --limit instead)"
        )
    entries = plan["transfers"]
    if selection.shard is not None:
        index, count = selection.shard
        entries = [entry for entry in entries if shard_of(entry["name"], count) == index]
    narrowed = {**plan, "transfers": entries}
    loads = Selection(
        sorted({entry["path"] for entry in entries}),
        limits=[",".join(entry["name"] for entry in entries)],
        tags=selection.tags,
        git=selection.git,
    )
    return narrowed, loads
