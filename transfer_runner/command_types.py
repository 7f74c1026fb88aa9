"""What commands take and give besides settings: which transfers (`Selection`), the git
guards and pacing of a run (requests), the result of `validate` and what `status` shows of a
transfer (results)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from transfer_runner.engine.waves import WaveSize
from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.model import Transfer
from transfer_runner.state.base import LockInfo, StepRecord, TransferRecord

__all__ = ["BulkOptions", "GitGuards", "Selection", "TransferStatusView", "ValidationResult"]


@dataclass(frozen=True)
class GitGuards:
    """`--changed-since REF` selects manifests changed since a git ref; `--require-clean`
    refuses manifests with uncommitted changes (what runs is what was reviewed)."""

    changed_since: str | None = None
    require_clean: bool = False


@dataclass(frozen=True, init=False)
class Selection:
    """Which transfers a command takes, and which of their tasks: the manifests under `paths`
    (files or directories, or one saved plan for `apply`), the git guards, the `--limit`
    expressions (NAME, key=value, @retry-file), `--shard (I, N)` and `--tags`."""

    paths: tuple[str, ...]
    limits: tuple[str, ...]
    tags: frozenset[str]
    shard: tuple[int, int] | None
    git: GitGuards

    def __init__(
        self,
        paths: Iterable[str],
        *,
        limits: Iterable[str] = (),
        tags: Iterable[str] = (),
        shard: tuple[int, int] | None = None,
        git: GitGuards | None = None,
    ) -> None:
        if isinstance(paths, str):
            raise TypeError("Selection takes a sequence of paths, not one string")
        object.__setattr__(self, "paths", tuple(paths))
        object.__setattr__(self, "limits", tuple(limits))
        object.__setattr__(self, "tags", frozenset(tags))
        object.__setattr__(self, "shard", shard)
        object.__setattr__(self, "git", git or GitGuards())


@dataclass(frozen=True)
class BulkOptions:
    """How a large apply is paced and stopped: waves, failure budget, the shared platform
    throttle, the lease on each transfer's lock (a crashed runner's lock is taken over after
    it), and the grace period running steps get to finish after a stop."""

    serial: WaveSize | None = None  # `WaveSize.parse("10%")`
    max_fail_percentage: float | None = None
    max_platform_calls_per_second: float | None = None
    max_platform_concurrency: int | None = None
    lock_ttl_s: float = 900.0
    grace_s: float | None = None


@dataclass(frozen=True)
class ValidationResult:
    """Diagnostics of every manifest given, and the transfers that passed."""

    diagnostics: tuple[Diagnostic, ...]
    transfers: tuple[Transfer, ...]

    @property
    def valid(self) -> bool:
        return not self.diagnostics


@dataclass(frozen=True)
class TransferStatusView:
    """What `status` shows of one transfer."""

    record: TransferRecord
    steps: tuple[StepRecord, ...] = ()
    lock: LockInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lock_holder_gone: bool = False  # the lock's process is gone: the next apply here takes it

    def to_dict(self) -> dict[str, Any]:
        """The view as `status --json` prints it."""
        v = self
        return {
            "name": v.record.name,
            "status": v.record.status,
            "manifest_sha256": v.record.manifest_sha256,
            "updated_at": v.record.updated_at.isoformat(),
            "last_run_id": v.record.last_run_id,
            "lock": None
            if v.lock is None
            else {
                "owner": v.lock.owner,
                "run_id": v.lock.run_id,
                "expires_at": v.lock.expires_at.isoformat(),
                "pid": v.lock.pid,
                "holder_gone": v.lock_holder_gone,
            },
            "steps": [
                {
                    "name": s.name,
                    "module": s.module,
                    "status": s.status,
                    "message": s.message,
                    "ended_at": s.ended_at.isoformat(),
                    "outputs": s.outputs,
                }
                for s in v.steps
            ],
        }
