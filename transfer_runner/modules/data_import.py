"""`data.import`: import what the new account lacks of the verified exports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from transfer_runner.errors import ExportError, StepError
from transfer_runner.export import importer
from transfer_runner.modules.base import Action, ArgSpec, Check, optional, required, write_key
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.data_args import is_cancelled, modes_arg, progress_sink, store_of
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.modules.verification import recorded_verifications, step_history
from transfer_runner.platforms.base import MessageInfo, Store

__all__ = [
    "ImportStores",
    "MODULES",
    "import_action",
    "import_data",
    "import_facts",
    "import_key",
    "verified_export",
]


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
    args: ClassVar[ArgSpec] = {"account": optional(), "stores": required(dict)}

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        modes = modes_arg(args, ctx.task_name)
        target = args.get("account")
        wanted = [s for s, m in modes.items() if m == "migrate"]
        if not wanted:
            return Check(reason="no store is set to migrate", facts={"pending": []})
        if is_cancelled(ctx, ctx.transfer.customer_account):
            reason = "the direct account was cancelled after its import was checked"
            return Check(reason=reason, facts={"pending": []})
        if not target or ctx.run.export is None:
            if not ctx.check_mode:
                raise StepError(ctx.task_name, "no target account or no export destination")
            return Check(
                actions=tuple(
                    import_action(ctx, s, None, f"import the {s} export into the new account")
                    for s in wanted
                ),
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
        for action in check.actions:
            store = store_of(action)
            expected = check.facts["missing"].get(store, 0)
            pin = verified_export(ctx, store)
            result = import_data(ctx, action.param("account"), store, expected, action, pin=pin)
            in_target[store] = result.index_sha256
            imported[store] = import_facts(result)
        return {"imported": imported, "pending": [], "in_target": in_target}


def import_action(ctx: TaskContext, store: Store, target: str | None, text: str) -> Action:
    """Import what `target` (None in a plan before it exists) lacks of the `store` export;
    the key is per attempt (an abort cancels the account it imported into)."""
    return Action("import.store", store, text, key=import_key(ctx, store),
                  params={"account": target}, per_attempt=True)  # fmt: skip


def import_key(ctx: TaskContext, store: Store) -> str:
    """The key of a store's import (data.import and the final pass alike), before the
    attempt is appended (see `write_key`)."""
    return idempotency_key("import", ctx.transfer.name, store)


@dataclass
class _ImportPlan:
    pending: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
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


def verified_export(ctx: TaskContext, store: Store) -> importer.VerifiedExport:
    """The export of `store` as its newest recorded verification saw it; StepError when it
    was never verified (an import reads nothing unverified)."""
    for facts in recorded_verifications(step_history(ctx), store):
        pin = importer.VerifiedExport.from_facts(facts)
        if pin is not None:
            return pin
    raise StepError(
        ctx.task_name,
        f"the {store} export has no recorded verification: data.verify must verify an export "
        "before it is imported",
    )


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
            pin = verified_export(ctx, store)
            missing = importer.inspect_import(
                ctx.platform, s3, settings, name, target, store, ctx.transfer.customer_account,
                verified=pin,
            )  # fmt: skip
        except (ExportError, StepError):
            if not ctx.check_mode:
                raise
            plan.pending.append(store)  # not exported yet: the plan shows the import to come
            text = f"import the {store} export into {target}"
            plan.actions.append(import_action(ctx, store, target, text))
            continue
        if missing:
            plan.pending.append(store)
            plan.missing[store] = missing
            text = f"import {missing} {store} messages into {target}"
            plan.actions.append(import_action(ctx, store, target, text))
        elif sha256 is not None:
            plan.in_target[store] = sha256
    return plan


def import_data(
    ctx: TaskContext,
    target: str,
    store: Store,
    expected: int,
    action: Action,
    source: Sequence[MessageInfo] | None = None,
    *,
    pin: importer.VerifiedExport,
) -> importer.ImportResult:
    """Execute an `import.store` action: what `target` lacks of the `store` export, exactly
    as `pin` says it was verified."""
    return importer.import_store(
        ctx.platform,
        ctx.run.s3(),
        ctx.run.export_settings(),
        ctx.transfer.name,
        target,
        store,
        write_key(ctx, action),
        progress=progress_sink(ctx, f"import {store}", expected),
        from_account=ctx.transfer.customer_account,
        retry_suffix=ctx.run.run_id,
        source=source,
        verified=pin,
    )


def import_facts(result: importer.ImportResult) -> dict[str, int]:
    """What a step records of one store's import."""
    return {"imported": result.imported, "skipped": result.skipped}


MODULES = (ImportStores(),)
