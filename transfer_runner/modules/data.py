"""Data steps: incremental export of quarantine and archive to S3, verification by id set, import,
and the final delta pass from the quiescent direct account (invariant I2).

A live mailbox receives and expires mail while a transfer runs. The export therefore grows by
passes (each adds only what the export lacks), verification compares id sets and SHA-256s
(never counts), and the cut-over moves the domains first so that the last pass reads a
mailbox that no longer receives mail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from transfer_runner.errors import ExportError, StepError
from transfer_runner.export import exporter, importer, receipt
from transfer_runner.export.exporter import ExportDelta, SyncPolicy
from transfer_runner.export.source import list_source
from transfer_runner.modules.base import Check, require
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.keys import attempt_key
from transfer_runner.modules.verification import (
    discard_damaged_parts,
    prior_verification,
    step_history,
    verify_facts,
)
from transfer_runner.platforms.base import STORES, MessageInfo, Store

__all__ = ["ExportStore", "VerifyExports", "ImportStores", "FinalSync", "MODULES"]


def _store(args: Mapping[str, Any], task: str) -> Store:
    store: object = require(args, "store", task)
    if store not in STORES:
        raise StepError(task, f"store must be one of {', '.join(STORES)}, not {store!r}")
    return store


def _modes(args: Mapping[str, Any], task: str) -> dict[Store, str]:
    modes: dict[Store, str] = {}
    for store, mode in require(args, "stores", task, dict).items():
        if store not in STORES or mode not in ("migrate", "export", "skip"):
            raise StepError(task, f"bad store mode {store}: {mode!r}")
        modes[store] = mode
    return modes


def _count(args: Mapping[str, Any], key: str, default: float, task: str, kind: type) -> Any:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise StepError(task, f"{key} must be a number >= 0, not {value!r}")
    if kind is int and value != int(value):
        raise StepError(task, f"{key} must be a whole number, not {value!r}")
    return kind(value)


def _policy(args: Mapping[str, Any], task: str) -> SyncPolicy:
    default = SyncPolicy()
    policy = SyncPolicy(
        max_passes=_count(args, "max_passes", default.max_passes, task, int),
        delta_messages=_count(args, "delta_messages", default.delta_messages, task, int),
        delta_percent=_count(args, "delta_percent", default.delta_percent, task, float),
    )
    if policy.max_passes < 1:
        raise StepError(task, "max_passes must be at least 1")
    return policy


def _destination(ctx: TaskContext, store: str) -> str:
    if ctx.run.export is None:
        return "S3 (no --export-to set)"
    return f"{ctx.run.export.export_to.rstrip('/')}/{ctx.transfer.name}/{store}/"


def _progress(ctx: TaskContext, what: str, total: int) -> Callable[[int, int], None]:
    def report(done: int, nbytes: int) -> None:
        ctx.run.progress(ctx.transfer.name, what, done, total, nbytes)

    return report


def _delta(ctx: TaskContext, account: str, store: Store) -> ExportDelta:
    delta = exporter.inspect_delta(
        ctx.platform, ctx.run.s3(), ctx.run.export_settings(), ctx.transfer.name, account, store
    )
    if delta.changed:
        raise StepError(
            ctx.task_name,
            f"{store}: message {delta.changed[0]} changed under the same id since it was "
            "exported (the export never overwrites a message): investigate before going on",
        )
    return delta


def _describe(delta: ExportDelta, store: str) -> str:
    """`plan`'s view of one store: exported so far, new since the last pass, expired since."""
    status = delta.status
    if not status.exists:
        return f"export {delta.new_messages} {store} messages ({delta.new_bytes} bytes)"
    if not status.complete or status.discarded:
        problem = status.problem or f"{len(status.discarded)} part(s) discarded as damaged"
        return (
            f"repair the {store} export ({problem}): export again from the source what it "
            f"lacks ({delta.new_messages} new messages since the last pass)"
        )
    return (
        f"export pass {status.passes + 1} of {store}: {delta.new_messages} new messages "
        f"({delta.new_bytes} bytes) since the last pass; {status.messages} exported so far, "
        f"{delta.expired} expired since"
    )


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

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        store = _store(args, ctx.task_name)
        _policy(args, ctx.task_name)
        if ctx.run.export is None:
            count, nbytes = ctx.platform.count_messages(account, store)
            where = _destination(ctx, store)
            action = f"export {count} {store} messages ({nbytes} bytes) to {where}"
            return Check(actions=(action,), facts={"store": store, "messages": count})
        delta = _delta(ctx, account, store)
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
        deferred = _deferred(delta, _policy(args, ctx.task_name), args, ctx.task_name)
        if deferred:
            return Check(reason=f"{store} exported: {deferred}", facts=facts)
        return Check(actions=(_describe(delta, store),), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        store = check.facts["store"]
        results = exporter.sync_store(
            ctx.platform,
            ctx.run.s3(),
            ctx.run.export_settings(),
            ctx.transfer.name,
            args["account"],
            store,
            _policy(args, ctx.task_name),
            progress=_progress(ctx, f"export {store}", check.facts.get("source_messages", 0)),
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


def _deferred(delta: ExportDelta, policy: SyncPolicy, args: Mapping[str, Any], task: str) -> str:
    """Why no pass is needed now (the delta is already small and left to the final pass), or
    an empty string."""
    status = delta.status
    if not _flag(args, "defer_small_delta", False, task) or not status.complete:
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

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        require(args, "account", ctx.task_name)
        modes = _modes(args, ctx.task_name)
        complete = _flag(args, "complete", True, ctx.task_name)
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
                return Check(actions=("write the export receipt",), facts=facts)
            return Check(reason="every export is verified", facts=facts)
        kind = "id set and SHA-256" if complete else "SHA-256 of every exported message"
        actions = tuple(f"verify the {s} export against the source ({kind})" for s in pending)
        return Check(actions=actions, facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        stores = dict(check.facts["stores"])
        complete = check.facts["complete"]
        for store in check.facts["pending"]:
            stores[store] = _verify(ctx, args["account"], store, complete)
        outputs: dict[str, Any] = {"stores": stores, "pending": [], "complete": complete}
        if stores:
            written = _write_receipt(ctx, stores)
            outputs["receipt"] = written
        return outputs


def _flag(args: Mapping[str, Any], key: str, default: bool, task: str) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise StepError(task, f"{key} must be true or false, not {value!r}")
    return value


def _verify(
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
    status = exporter.store_status(s3, settings, ctx.transfer.name, store)
    result = verifier.verify_store(
        ctx.platform,
        s3,
        settings,
        ctx.transfer.name,
        account,
        store,
        progress=_progress(ctx, f"verify {store}", status.messages),
        complete=complete,
        known_parts=known,
        source=source,
    )
    if not result.ok:
        shown = "; ".join(result.problems[:5])
        more = f" (+{len(result.problems) - 5} more)" if len(result.problems) > 5 else ""
        healed = discard_damaged_parts(ctx, store, result.damaged_parts)
        raise StepError(ctx.task_name, f"{store} export does not verify: {shown}{more}{healed}")
    return verify_facts(result, complete, datetime.now(UTC))


def _write_receipt(ctx: TaskContext, stores: dict[str, Any]) -> str:
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


class ImportStores:
    """Import what the new account lacks of the verified exports, for stores set to `migrate`.

    ```yaml
    data.import:
      account: A-1
      stores: {quarantine: migrate, archive: migrate}
    ```
    Messages already in the new account (by id) are skipped, and only parts holding a missing
    message are read, so a delta pass's import reads the delta; mail that arrived directly in
    the new account after the cut-over is never touched. A store imported completely from the
    export S3 holds now (same index SHA-256, as recorded) is not listed again: the final pass
    imports whatever the new account lacks, and the cancel gate checks it by id set.
    """

    name: ClassVar[str] = "data.import"

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        modes = _modes(args, ctx.task_name)
        target = args.get("account")
        wanted = [s for s, m in modes.items() if m == "migrate"]
        if not wanted:
            return Check(reason="no store is set to migrate", facts={"pending": []})
        if _cancelled(ctx, ctx.transfer.customer_account):
            reason = "the direct account was cancelled after its import was checked"
            return Check(reason=reason, facts={"pending": []})
        if not target or ctx.run.export is None:
            if not ctx.check_mode:
                raise StepError(ctx.task_name, "no target account or no export destination")
            return Check(
                actions=tuple(f"import the {s} export into the new account" for s in wanted),
                facts={"pending": wanted},
            )
        plan = _import_plan(ctx, target, wanted)
        facts = {
            "pending": plan.pending,
            "account": target,
            "missing": plan.missing,
            "in_target": plan.in_target,
        }
        if not plan.pending:
            recorded = f" ({', '.join(plan.recorded)}: as recorded)" if plan.recorded else ""
            return Check(reason=f"every migrated store is in {target}{recorded}", facts=facts)
        return Check(actions=tuple(plan.actions), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        in_target = dict(check.facts.get("in_target") or {})
        imported: dict[str, Any] = {}
        for store in check.facts["pending"]:
            result = _import(ctx, args["account"], store, check.facts["missing"].get(store, 0))
            in_target[store] = result.index_sha256
            imported[store] = _import_facts(result)
        return {"imported": imported, "pending": [], "in_target": in_target}


@dataclass
class _ImportPlan:
    pending: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    in_target: dict[str, str] = field(default_factory=dict)  # store -> index SHA-256 imported
    recorded: list[str] = field(default_factory=list)  # stores known imported from the record


def _recorded_import(ctx: TaskContext, store: str, target: str, sha256: str) -> bool:
    """Whether a data.import step recorded `store` wholly in `target` from the index whose
    SHA-256 is `sha256` (the export S3 holds now)."""
    for module, status, outputs in reversed(step_history(ctx)):
        if module == "data.import" and status in ("ok", "changed") and outputs.get("account"):
            recorded = (outputs.get("in_target") or {}).get(store)
            return outputs["account"] == target and recorded == sha256
    return False


def _import_plan(ctx: TaskContext, target: str, wanted: list[Store]) -> _ImportPlan:
    plan = _ImportPlan()
    s3, settings, name = ctx.run.s3(), ctx.run.export_settings(), ctx.transfer.name
    for store in wanted:
        sha256 = importer.index_sha256(s3, settings, name, store)
        if sha256 is not None and _recorded_import(ctx, store, target, sha256):
            plan.in_target[store] = sha256
            plan.recorded.append(store)
            continue
        try:
            missing = importer.inspect_import(
                ctx.platform,
                ctx.run.s3(),
                ctx.run.export_settings(),
                ctx.transfer.name,
                target,
                store,
                ctx.transfer.customer_account,
            )
        except ExportError:
            if not ctx.check_mode:
                raise
            plan.pending.append(store)  # not exported yet: the plan shows the import to come
            plan.actions.append(f"import the {store} export into {target}")
            continue
        if missing:
            plan.pending.append(store)
            plan.missing[store] = missing
            plan.actions.append(f"import {missing} {store} messages into {target}")
        elif sha256 is not None:
            plan.in_target[store] = sha256
    return plan


def _import(
    ctx: TaskContext,
    target: str,
    store: Store,
    expected: int,
    source: Sequence[MessageInfo] | None = None,
) -> importer.ImportResult:
    return importer.import_store(
        ctx.platform,
        ctx.run.s3(),
        ctx.run.export_settings(),
        ctx.transfer.name,
        target,
        store,
        attempt_key(
            ctx.run.attempt(ctx.transfer.customer_ticket), "import", ctx.transfer.name, store
        ),  # fmt: skip
        progress=_progress(ctx, f"import {store}", expected),
        from_account=ctx.transfer.customer_account,
        retry_suffix=ctx.run.run_id,
        source=source,
    )


def _import_facts(result: importer.ImportResult) -> dict[str, int]:
    """What a step records of one store's import."""
    return {"imported": result.imported, "skipped": result.skipped}


class FinalSync:
    """The last pass, from the quiescent direct account: export the delta, verify the whole
    id set, import the delta into the new account.

    ```yaml
    data.final_sync:
      account: C-1001          # the direct account: it must hold no domain any more
      to_account: A-1          # the new account (imports for stores set to migrate)
      stores: {quarantine: migrate, archive: export}
    ```
    Runs after `domain.move`: the direct account receives no mail any more, so what this pass
    verifies is everything it will ever hold (retention may still expire some: that only
    shrinks it). Its recorded `complete` verification is what `account.cancel` requires.
    """

    name: ClassVar[str] = "data.final_sync"

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        modes = _modes(args, ctx.task_name)
        target = args.get("to_account")
        stores = [s for s, m in modes.items() if m != "skip"]
        facts: dict[str, Any] = {"stores": {}, "pending": [], "complete": True}
        if not stores:
            return Check(reason="every store is skipped", facts=facts)
        if _cancelled(ctx, account):  # the gate checked everything before it cancelled
            return Check(reason=f"{account} is cancelled: its final pass was taken", facts=facts)
        holding = _domains_of(ctx, account)
        if holding:
            if not ctx.check_mode:
                raise StepError(
                    ctx.task_name,
                    f"{account} still holds {', '.join(holding)}: the final pass needs a "
                    "mailbox that receives no mail (move the domains first)",
                )
            return Check(
                actions=tuple(f"final {s} pass after the domains move" for s in stores),
                facts={**facts, "pending": stores},
            )
        if ctx.run.export is None or not target:
            if not ctx.check_mode:
                raise StepError(ctx.task_name, "no target account or no export destination")
            return Check(actions=tuple(f"final {s} pass" for s in stores), facts=facts)
        return self._check_stores(ctx, account, target, modes, stores, facts)

    def _check_stores(
        self,
        ctx: TaskContext,
        account: str,
        target: str,
        modes: dict[Store, str],
        stores: list[Store],
        facts: dict[str, Any],
    ) -> Check:
        actions: list[str] = []
        for store in stores:
            prior = prior_verification(ctx, store, True)
            if prior is None and not ctx.check_mode:
                # Not taken yet: the pass runs whatever the delta (apply lists the source
                # once, for the pass, its verification and the import).
                facts["pending"].append(store)
                actions.append(
                    f"final {store} pass: export what is new, verify the id set"
                    + (f", import into {target}" if modes[store] == "migrate" else "")
                )
                continue
            delta = _delta(ctx, account, store)
            lacking = 0
            # Only a pass that may be done already needs the import's count (two listings).
            if modes[store] == "migrate" and delta.current and prior is not None:
                lacking = importer.inspect_import(
                    ctx.platform,
                    ctx.run.s3(),
                    ctx.run.export_settings(),
                    ctx.transfer.name,
                    target,
                    store,
                    account,
                )
            if delta.current and prior is not None and not lacking:
                facts["stores"][store] = prior
                continue
            facts["pending"].append(store)
            actions.append(
                f"final {store} pass: export {delta.new_messages} new messages, verify the "
                f"id set ({delta.source_messages} in the source)"
                + (f", import into {target}" if modes[store] == "migrate" else "")
            )
        if not actions:
            return Check(reason="the final pass is done: every export verified", facts=facts)
        return Check(actions=tuple(actions), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        account, target = args["account"], args["to_account"]
        modes = _modes(args, ctx.task_name)
        stores = dict(check.facts["stores"])
        imported: dict[str, Any] = {}
        exported: dict[str, int] = {}
        for store in check.facts["pending"]:
            # One listing of the quiescent direct account serves the pass, its verification
            # and the import: it only shrinks now, and the gate lists it again before cancel.
            source = list_source(ctx.platform, account, store)
            result = exporter.export_store(
                ctx.platform,
                ctx.run.s3(),
                ctx.run.export_settings(),
                ctx.transfer.name,
                account,
                store,
                progress=_progress(ctx, f"final export {store}", len(source)),
                source=source,
            )
            exported[store] = result.new_messages
            stores[store] = _verify(ctx, account, store, complete=True, source=source)
            if modes[store] == "migrate":
                imported[store] = _import_facts(_import(ctx, target, store, 0, source=source))
        outputs: dict[str, Any] = {
            "stores": stores,
            "pending": [],
            "complete": True,
            "exported": exported,
            "imported": imported,
        }
        if stores:
            outputs["receipt"] = _write_receipt(ctx, stores)
        return outputs


def _cancelled(ctx: TaskContext, account: str) -> bool:
    found = ctx.platform.get_account(account)
    return found is not None and found.status == "cancelled"


def _domains_of(ctx: TaskContext, account: str) -> tuple[str, ...]:
    found = ctx.platform.get_account(account)
    if found is None:
        raise StepError(ctx.task_name, f"direct account {account} does not exist")
    return found.domains


MODULES = (ExportStore(), VerifyExports(), ImportStores(), FinalSync())
