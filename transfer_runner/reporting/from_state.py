"""Rebuild a run's RunReport from the state store (the `report` command). Read-only.

A transfer's status comes from its `transfer_finished` event when there is one; otherwise it
is "locked" after a `locked` event, "failed" when it started but never finished (crash,
interruption) or a step failed, "unchanged" when every step was ok or skipped, else
"succeeded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from transfer_runner.engine.results import (
    TRANSFER_STATUSES,
    RunReport,
    StepResult,
    TransferResult,
)
from transfer_runner.errors import StateError
from transfer_runner.state.base import RunInfo, StateStore, StepRecord

__all__ = ["report_from_state", "report_with_facts", "step_result"]

_NOT_FINISHED = "did not finish (interrupted, crashed, or still running)"


@dataclass
class _Seen:
    """What the state says about one transfer in one run."""

    steps: list[StepRecord] = field(default_factory=list)
    started: bool = False
    path: str = ""
    finished: dict[str, Any] | None = None
    locked: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # Transfer.facts() at its start


def _find_run(state: StateStore, run_id: str | None) -> RunInfo:
    if run_id is None:
        run = state.last_run()
        if run is None:
            raise StateError("no apply run is recorded in the state store yet")
        return run
    run = state.get_run(run_id)
    if run is None:
        raise StateError(f"no run {run_id!r} in the state store")
    return run


def _collect(state: StateStore, run_id: str) -> dict[str, _Seen]:
    """Per transfer, in order of first appearance: its events and steps in this run."""
    seen: dict[str, _Seen] = {}
    for event in state.events():
        name = event.get("transfer")
        if event.get("run_id") != run_id or not name:
            continue
        entry = seen.setdefault(name, _Seen())
        data = event.get("data") or {}
        kind = event.get("kind")
        if kind == "transfer_started":
            entry.started, entry.path = True, str(data.get("path") or "")
            entry.facts = dict(data)
        elif kind == "transfer_finished":
            entry.finished = data
        elif kind == "locked":
            entry.locked = str(data.get("holder") or "another runner")
    for step in state.run_steps(run_id):
        seen.setdefault(step.transfer, _Seen()).steps.append(step)
    return seen


def _status_and_message(entry: _Seen) -> tuple[str, str]:
    failed = next((s for s in entry.steps if s.status == "failed"), None)
    if entry.finished is not None and entry.finished.get("status") in TRANSFER_STATUSES:
        return str(entry.finished["status"]), str(entry.finished.get("message") or "")
    if entry.locked is not None:
        return "locked", f"locked by {entry.locked}"
    if failed is not None:
        return "failed", f"{failed.name}: {failed.message}"
    if entry.started:
        return "failed", _NOT_FINISHED
    if all(s.status in ("ok", "skipped") for s in entry.steps):
        return "unchanged", ""
    return "succeeded", ""


def step_result(record: StepRecord) -> StepResult:
    """A recorded step as a report's step."""
    return StepResult(
        name=record.name,
        module=record.module,
        status=record.status,
        message=record.message,
        outputs=dict(record.outputs),
        started_at=record.started_at,
        ended_at=record.ended_at,
    )


def _finished_at(run: RunInfo, transfers: dict[str, _Seen]) -> datetime:
    if run.finished_at is not None:
        return run.finished_at
    ends = [s.ended_at for t in transfers.values() for s in t.steps]
    return max([run.started_at, *ends])


def report_from_state(state: StateStore, run_id: str | None) -> RunReport:
    """The RunReport of run `run_id` (the last apply run when None), from steps and events."""
    return report_with_facts(state, run_id)[0]


def report_with_facts(
    state: StateStore, run_id: str | None
) -> tuple[RunReport, dict[str, dict[str, Any]]]:
    """The RunReport of run `run_id` and, per transfer, what its manifest said when it started
    (`Transfer.facts()`; empty for a transfer that did not start, or one run before they were
    recorded)."""
    run = _find_run(state, run_id)
    seen = _collect(state, run.id)
    results = []
    for name, entry in seen.items():
        status, message = _status_and_message(entry)
        steps = tuple(step_result(s) for s in entry.steps)
        results.append(TransferResult(name, status, steps, message, entry.path))  # type: ignore[arg-type]
    command = run.command if run.command in ("apply", "plan") else "apply"
    report = RunReport(
        run_id=run.id,
        command=command,  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=_finished_at(run, seen),
        transfers=tuple(results),
        git_commit=run.git_commit,
        user=run.user,
    )
    return report, {name: entry.facts for name, entry in seen.items()}
