"""The commands that read and repair the state store alone: `status`, `report`, `unlock`
(re-exported by `commands`, which the CLI calls)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from transfer_runner import run_identity
from transfer_runner.command_types import TransferStatusView
from transfer_runner.config import Settings
from transfer_runner.errors import StateError

if TYPE_CHECKING:
    from transfer_runner.engine.results import RunReport
    from transfer_runner.state.base import LockInfo

__all__ = ["report", "status", "unlock"]


def status(settings: Settings, names: Sequence[str] = ()) -> list[TransferStatusView]:
    """The state of transfers (all, or those named), read-only."""
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
        views = []
        for record in records:
            steps = sorted(state.latest_steps(record.name).values(), key=lambda s: s.index)
            lock = state.get_lock(record.name)
            gone = lock is not None and holder_gone(lock)
            views.append(TransferStatusView(record, tuple(steps), lock, lock_holder_gone=gone))
        return views
    finally:
        state.close()


def report(settings: Settings, run_id: str | None = None) -> RunReport:
    """The results of a run (the last one by default), rebuilt from the state store."""
    from transfer_runner.reporting.from_state import report_from_state
    from transfer_runner.state.open import open_state

    state = open_state(settings.state, read_only=True)
    try:
        return report_from_state(state, run_id)
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
