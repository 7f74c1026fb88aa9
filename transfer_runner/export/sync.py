"""Incremental sync of a live store: export passes until the delta a pass adds is small (or
a pass limit is reached), so the cut-over's final pass has little left to take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transfer_runner.export.exporter import Progress, export_store
from transfer_runner.export.status import ExportResult
from transfer_runner.platforms.base import Platform, Store
from transfer_runner.s3_client import S3Settings

__all__ = ["SyncPolicy", "sync_store"]


@dataclass(frozen=True)
class SyncPolicy:
    """When incremental passes stop: once a pass adds at most `max(delta_messages,
    delta_percent % of the store)` messages, or after `max_passes` passes. Correctness never
    depends on the delta's size (the final pass runs after the domains moved), so this only
    bounds the time spent before the cut-over."""

    max_passes: int = 4
    delta_messages: int = 50
    delta_percent: float = 1.0

    def allowed(self, store_messages: int) -> int:
        """The largest delta that counts as small for a store of `store_messages`."""
        return max(self.delta_messages, int(store_messages * self.delta_percent / 100))

    def small(self, result: ExportResult) -> bool:
        """Whether the delta this pass added is small enough to stop."""
        return result.new_messages <= self.allowed(result.messages)


def sync_store(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
    policy: SyncPolicy,
    progress: Progress | None = None,
    *,
    first_run: bool = False,
) -> list[ExportResult]:
    """Export passes until the delta is small or the pass limit is reached; every result.
    `first_run`: see `export_store`."""
    results: list[ExportResult] = []
    while len(results) < max(1, policy.max_passes):
        result = export_store(
            platform, s3, settings, transfer_name, account_id, store, progress,
            first_run=first_run,
        )  # fmt: skip
        results.append(result)
        if policy.small(result):
            break
    return results
