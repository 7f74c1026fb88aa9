"""What a task sees: the run's adapters and settings, the transfer, and earlier outputs.

Context is passed explicitly; there are no module-level globals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from transfer_runner.clock import SYSTEM_CLOCK, Clock
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform
from transfer_runner.state.base import StateStore, StepRecord

if TYPE_CHECKING:
    from transfer_runner.s3_client import S3Settings

__all__ = ["no_progress", "ProgressSink", "RunContext", "TaskContext"]


class ProgressSink(Protocol):
    """Receives progress of long steps (export, verify, import)."""

    def __call__(self, transfer: str, what: str, done: int, total: int, nbytes: int) -> None: ...


def no_progress(transfer: str, what: str, done: int, total: int, nbytes: int) -> None:
    """The `ProgressSink` that ignores progress."""
    return None


@dataclass(frozen=True)
class RunContext:
    """Shared by every task of a run, fixed when the run starts (only its caches fill in as
    it goes: the S3 client, created on first use, and the ticket claims seen)."""

    run_id: str
    platform: Platform
    state: StateStore
    check_mode: bool
    today: date  # the run's business day (billing), read once from `clock` when it starts
    clock: Clock = SYSTEM_CLOCK
    export: S3Settings | None = None
    s3_factory: Callable[[S3Settings], Any] | None = None
    progress: ProgressSink = no_progress
    lock_ttl_s: float = 900.0  # each transfer's lease: taken, renewed and checked with this
    git_commit: str | None = None  # of the manifests' repository, for receipts
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _claims: dict[str, str] = field(default_factory=dict, repr=False)
    _platform_claims: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False)

    def ticket_claim(self, ticket: str) -> str | None:
        """The transfer that claimed `ticket`, from the state store. Only `abort` releases a
        claim, holding the transfer's lock, so one seen once holds for the rest of the run."""
        if ticket in self._claims:
            return self._claims[ticket]
        holder = self.state.ticket_claim(ticket)
        if holder is not None:
            with self._lock:
                self._claims[ticket] = holder
        return holder

    def claim_ticket(self, ticket: str, transfer: str) -> str:
        """Claim `ticket` for `transfer` in the state store (first claim wins); the holder
        is remembered for the run, as `ticket_claim` remembers one it has seen."""
        holder = self.state.claim_ticket(ticket, transfer)
        with self._lock:
            self._claims[ticket] = holder
        return holder

    def platform_claim(self, ticket: str) -> str | None:
        """The transfer this run has seen hold `ticket`'s claim on the platform (None: not
        seen yet; `engine.runner` writes or reads it before the transfer's first write)."""
        found = self._platform_claims.get(ticket)
        return found[0] if found else None

    def remember_platform_claim(self, ticket: str, transfer: str, generation: int = 1) -> None:
        """Note that `transfer` holds `ticket`'s platform claim, of that generation (the n-th
        claim of the ticket: the ones before were released by `abort`)."""
        with self._lock:
            self._platform_claims[ticket] = (transfer, generation)

    def attempt(self, ticket: str) -> int:
        """The transfer's attempt: the generation of its claim on `ticket` (1 until an `abort`
        released one); keys of writes made before the cut-over carry it from the 2nd on."""
        found = self._platform_claims.get(ticket)
        return found[1] if found else 1

    def export_settings(self) -> S3Settings:
        """The export destination (ConfigError if none is configured)."""
        from transfer_runner.errors import ConfigError

        if self.export is None:
            raise ConfigError(
                "no export destination: pass --export-to s3://BUCKET/PREFIX "
                "or set TRANSFER_RUNNER_EXPORT_TO"
            )
        return self.export

    def s3(self) -> Any:
        """The S3 client for exports (ConfigError if no destination is configured)."""
        export = self.export_settings()
        with self._lock:
            if "s3" not in self._clients:
                from transfer_runner.s3_client import make_s3_client

                factory = self.s3_factory or make_s3_client
                self._clients["s3"] = factory(export)
            return self._clients["s3"]


@dataclass
class TaskContext:
    """One task of one transfer: the run, the transfer, earlier results of this transfer."""

    run: RunContext
    transfer: Transfer
    task_name: str
    previous: dict[str, StepRecord]  # latest record per task name, from earlier runs
    earlier: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # this run's results so far: task name -> (module, outputs)
    lease_proved: bool = False  # the step before this one ended with a write proving the lease
    first_run: bool = False  # no earlier run of this transfer was recorded before this one

    @property
    def platform(self) -> Platform:
        return self.run.platform

    @property
    def check_mode(self) -> bool:
        return self.run.check_mode

    def facts(self, module: str) -> dict[str, Any]:
        """Outputs of the last task using `module`: from this run, else from earlier runs."""
        for mod, outputs in list(self.earlier.values())[::-1]:
            if mod == module:
                return outputs
        records = [r for r in self.previous.values() if r.module == module]
        return dict(records[-1].outputs) if records else {}

    def fresh_records(self) -> dict[str, StepRecord]:
        """The state store's latest records for this transfer, read now (for safety gates)."""
        return self.run.state.latest_steps(self.transfer.name)
