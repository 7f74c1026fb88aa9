"""What a store's verification proved, as recorded with its step, and how to find it again.

`data.verify` and `data.final_sync` record, per store, the facts of a successful verification:
the index's SHA-256 (which identifies one state of the export exactly), the id set's digest,
the parts read back intact (name -> ETag), and whether it was `complete` (every message the
source listed was in the export). Later steps and the safety gates look these up instead of
trusting templated arguments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from transfer_runner.export.layout import store_layout
from transfer_runner.export.objects import delete_objects, list_objects
from transfer_runner.export.status import store_status
from transfer_runner.export.verifier import VerifyResult
from transfer_runner.modules.context import TaskContext

__all__ = [
    "VERIFYING_MODULES",
    "verify_facts",
    "recorded_verifications",
    "prior_verification",
    "step_history",
    "discard_damaged_parts",
]

VERIFYING_MODULES = ("data.verify", "data.final_sync")


def verify_facts(result: VerifyResult, complete: bool, when: datetime) -> dict[str, Any]:
    """The recorded facts of a successful verification of one store."""
    return {
        "verified": True,
        "complete": complete,
        "messages": result.messages,
        "bytes": result.bytes,
        "expired": result.expired,
        "pending": result.pending,
        "source_messages": result.source_messages,
        "passes": result.passes,
        "index_sha256": result.index_sha256,
        "id_set_sha256": result.id_set_sha256,
        "parts": dict(result.parts),
        "verified_at": when.isoformat(),
    }


def recorded_verifications(
    outputs_in_order: list[tuple[str, str, dict[str, Any]]], store: str
) -> list[dict[str, Any]]:
    """Every successful verification of `store` in (module, status, outputs), newest first."""
    found = []
    for module, status, outputs in reversed(outputs_in_order):
        if module not in VERIFYING_MODULES or status not in ("ok", "changed"):
            continue
        info = (outputs.get("stores") or {}).get(store)
        if isinstance(info, dict) and info.get("verified") is True:
            found.append(info)
    return found


def step_history(ctx: TaskContext, fresh: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """(module, status, outputs) of this transfer's steps, oldest first: earlier runs, then
    this one."""
    records = ctx.fresh_records() if fresh else ctx.previous
    ordered = sorted(records.values(), key=lambda r: (r.ended_at, r.index))
    history: list[tuple[str, str, dict[str, Any]]] = [
        (r.module, r.status, dict(r.outputs)) for r in ordered
    ]
    history += [(module, "changed", outputs) for module, outputs in ctx.earlier.values()]
    return history


def prior_verification(
    ctx: TaskContext,
    store: str,
    complete: bool,
    *,
    same_index: bool = True,
    fresh: bool = False,
) -> dict[str, Any] | None:
    """The newest recorded verification of `store` that still holds: `complete` if asked, and
    (with `same_index`) of the index S3 holds now. None when there is none."""
    candidates = recorded_verifications(step_history(ctx, fresh), store)
    if complete:  # records from before passes existed compared whole sets: complete ones
        candidates = [c for c in candidates if c.get("complete", True) is True]
    if not candidates or not same_index:
        return candidates[0] if candidates else None
    settings = ctx.run.export_settings()
    layout = store_layout(settings, ctx.transfer.name, store)
    listing = list_objects(ctx.run.s3(), layout.bucket, layout.base)
    status = store_status(ctx.run.s3(), settings, ctx.transfer.name, store, listing)
    if not status.complete or status.discarded:
        return None
    etags = {key[len(layout.base) :]: etag for key, etag in listing.etags.items()}
    for info in candidates:
        parts = info.get("parts") or {}
        # The same index, and every part it names still the object that was read back.
        if info.get("index_sha256") == status.index_sha256 and all(
            etags.get(name) == etag for name, etag in parts.items()
        ):
            return info
    return None


def discard_damaged_parts(ctx: TaskContext, store: str, parts: tuple[str, ...]) -> str:
    """Forget damaged parts (their journal records), so that the next export pass exports
    their messages again from the source; the sentence that tells the operator so."""
    if not parts or ctx.run.export is None:
        return ""
    layout = store_layout(ctx.run.export, ctx.transfer.name, store)
    keys = []
    for part in parts:
        number = layout.part_number(part)
        if number is not None:
            keys.append(layout.journal_key(number))
    delete_objects(ctx.run.s3(), layout.bucket, keys)
    return (
        f"; discarded the damaged part(s) {', '.join(parts)}: the next apply exports their "
        "messages again from the source"
    )
