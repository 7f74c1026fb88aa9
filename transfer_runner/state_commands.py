"""The commands that read and repair the state store alone: `status`, `report`, `unlock`
(re-exported by `commands`, which the CLI calls)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from transfer_runner import run_identity
from transfer_runner.command_types import TransferStatusView
from transfer_runner.config import Settings
from transfer_runner.errors import StateError

if TYPE_CHECKING:
    from transfer_runner.engine.results import RunReport
    from transfer_runner.reporting.rows import TransferRow, Wave
    from transfer_runner.state.base import LockInfo, RunInfo, StateStore, TransferRecord

MAX_RUNS_SCANNED = 10_000  # the recent runs `--commit` looks through

__all__ = [
    "recent_runs",
    "report",
    "report_rows",
    "runs_at_commit",
    "status",
    "unlock",
    "wave_report",
]


def status(
    settings: Settings,
    names: Sequence[str] = (),
    *,
    failed: bool = False,
    labels: Sequence[tuple[str, str]] = (),
) -> list[TransferStatusView]:
    """The state of transfers (all, or those named), read-only; `failed` keeps those whose
    last run failed, `labels` those whose manifest had every label (as recorded when the
    transfer last started)."""
    from transfer_runner.engine.leases import holder_gone
    from transfer_runner.state.open import open_state

    state = open_state(settings.state, read_only=True)
    try:
        records = state.list_transfers()
        if names:
            missing = set(names) - {r.name for r in records}
            if missing:
                raise StateError(f"no state for: {', '.join(sorted(missing))}")
            records = [r for r in records if r.name in names]
        if failed:
            records = [r for r in records if r.status == "failed"]
        if labels:
            records = _labelled(state, records, labels)
        views = []
        for record in records:
            steps = sorted(state.latest_steps(record.name).values(), key=lambda s: s.index)
            lock = state.get_lock(record.name)
            gone = lock is not None and holder_gone(lock)
            views.append(TransferStatusView(record, tuple(steps), lock, lock_holder_gone=gone))
        return views
    finally:
        state.close()


def _labelled(
    state: StateStore, records: list[TransferRecord], wanted: Sequence[tuple[str, str]]
) -> list[TransferRecord]:
    from transfer_runner.reporting.rows import label_matches

    labels: dict[str, dict[str, str]] = {}
    for event in state.events():
        if event.get("kind") == "transfer_started" and event.get("transfer"):
            labels[str(event["transfer"])] = dict((event.get("data") or {}).get("labels") or {})
    return [r for r in records if label_matches(labels.get(r.name, {}), wanted)]


def report(settings: Settings, run_id: str | None = None) -> RunReport:
    """The results of a run (the last one by default), rebuilt from the state store."""
    from transfer_runner.reporting.from_state import report_from_state
    from transfer_runner.state.open import open_state

    state = open_state(settings.state, read_only=True)
    try:
        return report_from_state(state, run_id)
    finally:
        state.close()


def report_rows(settings: Settings, run_ids: Sequence[str] = ()) -> list[TransferRow]:
    """A row per transfer of the runs given (the last run when none); see `wave_report`."""
    return wave_report(settings, run_ids).rows


def wave_report(settings: Settings, run_ids: Sequence[str] = ()) -> Wave:
    """The runs given (the last run when none) merged: a transfer in several (a retry, or the
    shards of one wave) appears once, as its latest run (by start time) left it."""
    from transfer_runner.reporting.from_state import report_with_facts, step_result
    from transfer_runner.reporting.rows import Wave, rows_of
    from transfer_runner.state.open import open_state

    state = open_state(settings.state, read_only=True)
    try:
        wanted: list[str | None] = list(run_ids) or [None]
        reports = [report_with_facts(state, run_id) for run_id in wanted]
        idle = {t.name for report, _ in reports for t in report.transfers if not t.steps}
        earlier = {
            name: [step_result(s) for s in sorted(steps.values(), key=lambda s: s.index)]
            for name in idle
            if (steps := state.latest_steps(name))
        }
    finally:
        state.close()
    latest: dict[str, TransferRow] = {}
    ordered = sorted(reports, key=lambda pair: pair[0].started_at)
    for report, facts in ordered:
        for row in rows_of(report, facts, earlier):
            latest.pop(row.name, None)  # re-inserted: the order is the latest run's
            latest[row.name] = row
    runs = tuple(replace(report, transfers=()) for report, _ in ordered)
    return Wave(runs, list(latest.values()))


def runs_at_commit(settings: Settings, commit: str) -> list[RunInfo]:
    """The apply runs at git commit `commit` (a prefix of at least 4 hex digits), newest
    first; StateError when there is none."""
    wanted = commit.strip().lower()
    if len(wanted) < 4 or any(ch not in "0123456789abcdef" for ch in wanted):
        raise StateError(f"{commit!r} is not a git commit (4 to 40 hex digits)")
    runs = [
        run
        for run in recent_runs(settings, MAX_RUNS_SCANNED)
        if (run.git_commit or "").lower().startswith(wanted)
    ]
    if not runs:
        raise StateError(f"no apply run at commit {commit} in the state store")
    return runs


def recent_runs(settings: Settings, limit: int) -> list[RunInfo]:
    """The `limit` most recent apply runs, newest first."""
    from transfer_runner.state.open import open_state

    state = open_state(settings.state, read_only=True)
    try:
        return state.recent_runs(limit)
    finally:
        state.close()


def unlock(settings: Settings, name: str) -> LockInfo:
    """Release a stale lock whoever holds it; StateError if there is none."""
    from transfer_runner.state.open import open_state

    state = open_state(settings.state)
    try:
        removed = state.force_unlock(name)
        if removed is None:
            raise StateError(f"transfer {name} is not locked")
        state.append_event(
            "unlock",
            name,
            "unlocked",
            {"owner": removed.owner, "run_id": removed.run_id, "by": run_identity.user()},
        )
        return removed
    finally:
        state.close()
