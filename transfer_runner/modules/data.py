"""Data steps: incremental export of quarantine and archive to S3, verification by id set, import,
and the final delta pass from the quiescent direct account (invariant I2).

A live mailbox receives and expires mail while a transfer runs. The export therefore grows by
passes (each adds only what the export lacks), verification compares id sets and SHA-256s
(never counts), and the cut-over moves the domains first so that the last pass reads a
mailbox that no longer receives mail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from transfer_runner.errors import StepError
from transfer_runner.export import receipt
from transfer_runner.export.layout import store_layout
from transfer_runner.export.objects import list_objects
from transfer_runner.export.status import ExportDelta, store_status
from transfer_runner.export.sync import SyncPolicy, sync_store
from transfer_runner.modules.base import (
    Action,
    ArgSpec,
    Check,
    only_action,
    optional,
    require,
    required,
)
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.data_args import (
    delta_of,
    describe_delta,
    destination_of,
    flag_arg,
    modes_arg,
    policy_arg,
    progress_sink,
    store_arg,
    store_of,
)
from transfer_runner.modules.verification import (
    discard_damaged_parts,
    prior_verification,
    verify_facts,
)
from transfer_runner.platforms.base import MessageInfo, Store

__all__ = ["ExportStore", "MODULES", "VerifyExports", "verify_exports", "write_receipt"]


class ExportStore:
    """Export one store of the direct account to S3, incrementally, in passes.

    ```yaml
    data.export:
      account: C-1001
      store: archive        # quarantine | archive
      max_passes: 4         # optional: passes until the delta is small ...
      delta_messages: 50    # ... at most this many new messages
      delta_percent: 1      # ... or this share of the store, whichever is larger
      defer_small_delta: true  # optional: a delta already that small is left to the final pass
    ```
    Each pass adds, as new parts, only the messages the export lacks; a pass with nothing new
    writes nothing. Run it days ahead (`apply --tags data`) to pre-stage the bulk: the cut-over
    then copies only the delta. With `defer_small_delta`, an export whose delta is already
    small takes no pass at all: `data.final_sync` takes that delta after the domains move, so
    a pre-staged cut-over reads and rewrites the export once, not twice.
    """

    name: ClassVar[str] = "data.export"
    args: ClassVar[ArgSpec] = {
        "account": required(),
        "store": required(),
        "defer_small_delta": optional(bool),
        "max_passes": optional(int),
        "delta_messages": optional(int),
        "delta_percent": optional(int, float),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        store = store_arg(args, ctx.task_name)
        policy_arg(args, ctx.task_name)
        if ctx.run.export is None:
            count, nbytes = ctx.platform.count_messages(account, store)
            where = destination_of(ctx, store)
            text = f"export {count} {store} messages ({nbytes} bytes) to {where}"
            action = _export_pass(account, store, text)
            return Check(actions=(action,), facts={"store": store, "messages": count})
        delta = delta_of(ctx, account, store)
        facts: dict[str, Any] = {
            "store": store,
            **delta.status.facts(),
            "new_messages": delta.new_messages,
            "new_bytes": delta.new_bytes,
            "expired": delta.expired,
            "source_messages": delta.source_messages,
        }
        if delta.current:
            reason = (
                f"{store} exported: {delta.status.messages} messages in {delta.status.passes} "
                f"pass(es), nothing new ({delta.expired} expired since)"
            )
            return Check(reason=reason, facts=facts)
        deferred = _deferred(delta, policy_arg(args, ctx.task_name), args, ctx.task_name)
        if deferred:
            return Check(reason=f"{store} exported: {deferred}", facts=facts)
        action = _export_pass(account, store, describe_delta(delta, store))
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "export.pass")
        store = store_of(action)
        results = sync_store(
            ctx.platform,
            ctx.run.s3(),
            ctx.run.export_settings(),
            ctx.transfer.name,
            action.param("account"),
            store,
            policy_arg(args, ctx.task_name),
            progress=progress_sink(ctx, f"export {store}", check.facts.get("source_messages", 0)),
            first_run=ctx.first_run,
        )
        last = results[-1]
        return {
            "store": store,
            **last.facts(),
            "passes_run": len(results),
            "new_messages": sum(r.new_messages for r in results),
            "new_bytes": sum(r.new_bytes for r in results),
            "exported_in_run": ctx.run.run_id,
        }


def _export_pass(account: str, store: Store, text: str) -> Action:
    """Passes over `store` of `account` until its delta is small (S3 keys name the parts)."""
    return Action("export.pass", store, text, params={"account": account})


def _deferred(delta: ExportDelta, policy: SyncPolicy, args: Mapping[str, Any], task: str) -> str:
    """Why no pass is needed now (the delta is already small and left to the final pass), or
    an empty string."""
    status = delta.status
    if not flag_arg(args, "defer_small_delta", False, task) or not status.complete:
        return ""
    allowed = policy.allowed(status.messages + delta.new_messages)
    if status.discarded or delta.new_messages > allowed:
        return ""
    return (
        f"{status.messages} messages in {status.passes} pass(es); {delta.new_messages} new "
        f"({delta.new_bytes} bytes), within the sync policy's small delta ({allowed}): "
        f"left to the final pass after the domains move ({delta.expired} expired since)"
    )


class VerifyExports:
    """Read the exports back from S3 and compare them with the source, by id set and SHA-256.

    ```yaml
    data.verify:
      account: C-1001
      stores: {quarantine: migrate, archive: export}   # skip: not exported, not verified
      complete: false   # before the cut-over: mail still arrives, new messages are pending
    ```
    Parts verified before are not read again while S3 holds them unchanged. A damaged part is
    discarded, and the next pass exports its messages again from the source. Its recorded
    success is what `domain.move` requires; `account.cancel` requires a `complete` one.
    """

    name: ClassVar[str] = "data.verify"
    args: ClassVar[ArgSpec] = {
        "account": required(),
        "stores": required(dict),
        "complete": optional(bool),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        require(args, "account", ctx.task_name)
        modes = modes_arg(args, ctx.task_name)
        complete = flag_arg(args, "complete", True, ctx.task_name)
        stores: dict[str, Any] = {}
        pending: list[str] = []
        for store, mode in modes.items():
            if mode == "skip":
                continue
            prior = prior_verification(ctx, store, complete)
            if prior is not None:
                stores[store] = prior
            else:
                pending.append(store)
        facts = {"stores": stores, "pending": pending, "complete": complete}
        if not pending:  # S3 is asked only when a store was exported: all skipped needs none
            if stores and receipt.read_receipt(ctx.run.s3(), ctx.run.export_settings(),
                                               ctx.transfer.name) is None:  # fmt: skip
                action = Action("export.receipt", ctx.transfer.name, "write the export receipt")
                return Check(actions=(action,), facts=facts)
            return Check(reason="every export is verified", facts=facts)
        kind = "id set and SHA-256" if complete else "SHA-256 of every exported message"
        actions = tuple(
            Action(
                "export.verify",
                store,
                f"verify the {store} export against the source ({kind})",
                params={"account": require(args, "account", ctx.task_name), "complete": complete},
            )
            for store in pending
        )  # each verification writes the receipt anew
        return Check(actions=actions, facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        stores = dict(check.facts["stores"])
        complete = check.facts["complete"]
        for action in check.actions:
            if action.kind == "export.verify":
                account, store = action.param("account"), store_of(action)
                stores[store] = verify_exports(ctx, account, store, action.param("complete"))
        outputs: dict[str, Any] = {"stores": stores, "pending": [], "complete": complete}
        if stores:
            written = write_receipt(ctx, stores)
            outputs["receipt"] = written
        return outputs


def verify_exports(
    ctx: TaskContext,
    account: str,
    store: Store,
    complete: bool,
    source: Sequence[MessageInfo] | None = None,
) -> dict[str, Any]:
    """Verify one store now; its facts, or StepError (after discarding damaged parts)."""
    from transfer_runner.export import verifier

    known = (prior_verification(ctx, store, False, same_index=False) or {}).get("parts") or {}
    s3, settings = ctx.run.s3(), ctx.run.export_settings()
    layout = store_layout(settings, ctx.transfer.name, store)
    listing = list_objects(s3, layout.bucket, layout.base)
    status = store_status(s3, settings, ctx.transfer.name, store, listing)
    result = verifier.verify_store(
        ctx.platform,
        s3,
        settings,
        ctx.transfer.name,
        account,
        store,
        progress=progress_sink(ctx, f"verify {store}", status.messages),
        complete=complete,
        known_parts=known,
        source=source,
        listing=listing,
    )
    if not result.ok:
        shown = "; ".join(result.problems[:5])
        more = f" (+{len(result.problems) - 5} more)" if len(result.problems) > 5 else ""
        healed = discard_damaged_parts(ctx, store, result.damaged_parts)
        raise StepError(ctx.task_name, f"{store} export does not verify: {shown}{more}{healed}")
    return verify_facts(result, complete, datetime.now(UTC))


def write_receipt(ctx: TaskContext, stores: dict[str, Any]) -> str:
    t = ctx.transfer
    authorization = {
        "customer_ticket": t.customer_ticket,
        "reseller_ticket": t.reseller_ticket,
        "reviewed_by": t.reviewed_by,
    }
    written = receipt.write_receipt(
        ctx.run.s3(), ctx.run.export_settings(), t.name, stores, ctx.run.git_commit,
        authorization=authorization,
    )  # fmt: skip
    return written.key


MODULES = (ExportStore(), VerifyExports())
