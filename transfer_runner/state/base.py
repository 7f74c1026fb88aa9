"""The state-store port. `status`, `plan` and `report` only read; `apply` writes.

A step's record is written right after its effect, atomically with an event, so that a crash
leaves the step either recorded or pending, never half-recorded. The event log is append-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = [
    "StepStatus",
    "TransferStatus",
    "RunInfo",
    "StepRecord",
    "TransferRecord",
    "LockInfo",
    "TransferState",
    "StateStore",
    "ComposedTransferState",
]

StepStatus = Literal["ok", "changed", "skipped", "failed"]
TransferStatus = Literal["pending", "running", "succeeded", "failed", "aborted"]


@dataclass(frozen=True)
class RunInfo:
    """One invocation of `apply`."""

    id: str
    started_at: datetime
    user: str
    ci_job: str | None = None
    git_commit: str | None = None
    command: str = "apply"
    finished_at: datetime | None = None
    totals: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """The outcome of one task of one transfer in one run."""

    run_id: str
    transfer: str
    index: int  # position of the task in the playbook, 0-based
    name: str  # the task's name
    module: str
    status: StepStatus
    started_at: datetime
    ended_at: datetime
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # reason for ok/skipped, error for failed


@dataclass(frozen=True)
class TransferRecord:
    """The latest known state of one transfer."""

    name: str
    manifest_sha256: str
    status: TransferStatus
    updated_at: datetime
    last_run_id: str | None = None
    playbook_sha256: str = ""  # of the playbook that last ran it; "" when unknown


@dataclass(frozen=True)
class LockInfo:
    """A lease on a transfer (invariant I6)."""

    name: str
    owner: str
    run_id: str
    host: str
    acquired_at: datetime
    expires_at: datetime
    pid: int | None = None  # the holding process, on `machine`
    machine: str = ""  # the holder's boot and process namespace (engine/leases.py); "" unknown


@dataclass(frozen=True)
class TransferState:
    """What the store knows of one transfer, read together: its record, the latest record of
    each step (by task name) and its lease."""

    record: TransferRecord | None
    steps: dict[str, StepRecord]
    lock: LockInfo | None


class StateStore(Protocol):
    """Where runs, transfers, steps, events and locks live (`sqlite:` or `s3://`)."""

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None: ...

    def finish_run(self, run_id: str, finished_at: datetime, totals: dict[str, int]) -> None: ...

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def last_run(self) -> RunInfo | None:
        """The most recently started apply run, or None."""
        ...

    def recent_runs(self, limit: int) -> list[RunInfo]:
        """The `limit` most recently started apply runs, newest first."""
        ...

    # -- transfers -------------------------------------------------------------------------
    def get_transfer(self, name: str) -> TransferRecord | None: ...

    def list_transfers(self) -> list[TransferRecord]: ...

    def set_transfer(self, record: TransferRecord) -> None: ...

    def transfer_state(self, name: str) -> TransferState:
        """The transfer's record, latest steps and lease, read together (one request on S3)."""
        ...

    # -- steps -----------------------------------------------------------------------------
    def record_step(self, step: StepRecord) -> None:
        """Store the step and append a `step` event, in one transaction."""
        ...

    def latest_steps(self, transfer: str) -> dict[str, StepRecord]:
        """The last record of each step (by task name) of a transfer, across runs."""
        ...

    def run_steps(self, run_id: str) -> list[StepRecord]:
        """Every step recorded by a run, in the order recorded."""
        ...

    # -- ticket claims (invariant I1: a ticket authorizes one transfer only) -------------
    def claim_ticket(self, ticket_id: str, transfer: str) -> str:
        """Claim a ticket for a transfer; returns the transfer that holds it (first claim wins)."""
        ...

    def ticket_claim(self, ticket_id: str) -> str | None:
        """The transfer that claimed a ticket, or None (read-only)."""
        ...

    def release_ticket(self, ticket_id: str, transfer: str) -> bool:
        """Release `transfer`'s claim on a ticket (`abort`); False if it holds none."""
        ...

    # -- events ----------------------------------------------------------------------------
    def append_event(
        self, run_id: str, transfer: str | None, kind: str, data: dict[str, Any]
    ) -> None: ...

    def events(self, transfer: str | None = None) -> list[dict[str, Any]]: ...

    # -- locks -----------------------------------------------------------------------------
    def acquire_lock(
        self,
        name: str,
        owner: str,
        run_id: str,
        host: str,
        ttl_s: float,
        *,
        pid: int | None = None,
        machine: str = "",
        replacing: str | None = None,
        record: TransferRecord | None = None,
    ) -> bool:
        """Take the lease if free, expired, already ours, or held by the run `replacing` (a
        holder the caller found gone); False if another live lease holds it. `record` (the
        transfer marked running) is written with the lease, in the same write."""
        ...

    def renew_lock(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our own lease; False if we no longer hold it. A store that buffers what is
        recorded under a lease (S3) makes it durable here, by a write that is conditional on
        the transfer being as this runner left it: the lease check is that write."""
        ...

    def release_lock(self, name: str, run_id: str) -> None:
        """Release our own lease (no-op if we do not hold it)."""
        ...

    def get_lock(self, name: str) -> LockInfo | None: ...

    def force_unlock(self, name: str) -> LockInfo | None:
        """Remove a lock whoever holds it (the `unlock` command); returns what was removed."""
        ...

    def close(self) -> None: ...


class ComposedTransferState:
    """`transfer_state` from the three reads, for a store where each is cheap (SQLite)."""

    def transfer_state(self, name: str) -> TransferState:
        store: Any = self
        return TransferState(store.get_transfer(name), store.latest_steps(name),
                             store.get_lock(name))  # fmt: skip
