"""Result objects returned by the commands and rendered by the reporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from transfer_runner.utc import seconds_between

if TYPE_CHECKING:
    from transfer_runner.modules.base import Action

__all__ = [
    "StepResult",
    "TransferResult",
    "RunReport",
    "STEP_STATUSES",
    "TRANSFER_STATUSES",
    "RETRY_STATUSES",
    "ATTENTION_STATUSES",
]

STEP_STATUSES = ("ok", "changed", "skipped", "failed")
# succeeded/failed/locked/unchanged come from apply; "pending" is plan's "changes pending";
# "interrupted" stopped between two steps (a signal), "not_started" never began (a signal or
# the wave's failure budget): both are resumed by applying again. "aborted": withdrawn by
# `abort`, never applied again unless its manifest changes.
TRANSFER_STATUSES = (
    "succeeded",
    "unchanged",
    "pending",
    "failed",
    "interrupted",
    "not_started",
    "locked",
    "aborted",
)  # fmt: skip; the order recaps and reports count them in
RETRY_STATUSES = ("failed", "interrupted", "not_started")  # what the retry file lists
ATTENTION_STATUSES = (*RETRY_STATUSES, "locked")  # what reports and notifications put first

StepStatusT = Literal["ok", "changed", "skipped", "failed"]
TransferStatusT = Literal[
    "succeeded",
    "failed",
    "locked",
    "unchanged",
    "pending",
    "interrupted",
    "not_started",
    "aborted",
]


@dataclass(frozen=True)
class StepResult:
    """One task's outcome. In check mode, `changed` means "would change" and `actions` says how."""

    name: str
    module: str
    status: StepStatusT
    message: str = ""
    actions: tuple[Action, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def duration_s(self) -> float:
        """Seconds the step took (0 when a time is unknown)."""
        return seconds_between(self.started_at, self.ended_at)


@dataclass(frozen=True)
class TransferResult:
    """One transfer's outcome in a run (or in a plan)."""

    name: str
    status: TransferStatusT
    steps: tuple[StepResult, ...] = ()
    message: str = ""
    path: str = ""

    def count(self, status: str) -> int:
        """How many steps ended with `status`."""
        return sum(1 for s in self.steps if s.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STEP_STATUSES}


@dataclass(frozen=True)
class RunReport:
    """Everything one `apply` (or `plan`) did, in playbook order per transfer."""

    run_id: str
    command: Literal["apply", "plan"]
    started_at: datetime
    finished_at: datetime
    transfers: tuple[TransferResult, ...] = ()
    git_commit: str | None = None
    user: str = ""

    @property
    def totals(self) -> dict[str, int]:
        """Transfer counts by status plus step counts by status."""
        out: dict[str, int] = {f"transfers_{s}": 0 for s in TRANSFER_STATUSES}
        out.update({s: 0 for s in STEP_STATUSES})
        for t in self.transfers:
            out[f"transfers_{t.status}"] += 1
            for s in STEP_STATUSES:
                out[s] += t.count(s)
        out["transfers"] = len(self.transfers)
        return out

    def to_retry(self) -> list[str]:
        """The transfers to apply again: failed, interrupted, or never started."""
        return [t.name for t in self.transfers if t.status in RETRY_STATUSES]
