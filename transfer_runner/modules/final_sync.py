"""`data.final_sync`: the last delta pass, from the quiescent direct account once the domains
moved, then its verification and import (invariant I2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from transfer_runner.errors import StepError
from transfer_runner.export import exporter, importer
from transfer_runner.export.source import list_source
from transfer_runner.modules.base import Action, ArgSpec, Check, optional, require, required
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.data import verify_exports, write_receipt
from transfer_runner.modules.data_args import (
    delta_of,
    domains_of,
    is_cancelled,
    modes_arg,
    progress_sink,
    store_of,
)
from transfer_runner.modules.data_import import import_data, import_facts, import_key
from transfer_runner.modules.verification import (
    prior_verification,
)
from transfer_runner.platforms.base import Store

__all__ = ["FinalSync", "MODULES"]


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
    args: ClassVar[ArgSpec] = {
        "account": required(),
        "to_account": optional(),
        "stores": required(dict),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        modes = modes_arg(args, ctx.task_name)
        target = args.get("to_account")
        stores = [s for s, m in modes.items() if m != "skip"]
        facts: dict[str, Any] = {"stores": {}, "pending": [], "complete": True}
        if not stores:
            return Check(reason="every store is skipped", facts=facts)
        if is_cancelled(ctx, account):  # the gate checked everything before it cancelled
            return Check(reason=f"{account} is cancelled: its final pass was taken", facts=facts)
        holding = domains_of(ctx, account)
        if holding:
            if not ctx.check_mode:
                raise StepError(
                    ctx.task_name,
                    f"{account} still holds {', '.join(holding)}: the final pass needs a "
                    "mailbox that receives no mail (move the domains first)",
                )
            return Check(
                actions=tuple(
                    _final_pass(
                        ctx, s, account, target, modes, f"final {s} pass after the domains move"
                    )  # fmt: skip
                    for s in stores
                ),
                facts={**facts, "pending": stores},
            )
        if ctx.run.export is None or not target:
            if not ctx.check_mode:
                raise StepError(ctx.task_name, "no target account or no export destination")
            return Check(
                actions=tuple(
                    _final_pass(ctx, s, account, target, modes, f"final {s} pass") for s in stores
                ),
                facts=facts,
            )
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
        actions: list[Action] = []
        for store in stores:
            prior = prior_verification(ctx, store, True)
            if prior is None and not ctx.check_mode:
                # Not taken yet: the pass runs whatever the delta (apply lists the source
                # once, for the pass, its verification and the import).
                facts["pending"].append(store)
                text = f"final {store} pass: export what is new, verify the id set" + (
                    f", import into {target}" if modes[store] == "migrate" else ""
                )
                actions.append(_final_pass(ctx, store, account, target, modes, text))
                continue
            delta = delta_of(ctx, account, store)
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
                    verified=importer.VerifiedExport.from_facts(prior),
                )
            if delta.current and prior is not None and not lacking:
                facts["stores"][store] = prior
                continue
            facts["pending"].append(store)
            text = (
                f"final {store} pass: export {delta.new_messages} new messages, verify the "
                f"id set ({delta.source_messages} in the source)"
                + (f", import into {target}" if modes[store] == "migrate" else "")
            )
            actions.append(_final_pass(ctx, store, account, target, modes, text))
        if not actions:
            return Check(reason="the final pass is done: every export verified", facts=facts)
        return Check(actions=tuple(actions), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        stores = dict(check.facts["stores"])
        imported: dict[str, Any] = {}
        exported: dict[str, int] = {}
        for action in check.actions:
            store, account = store_of(action), action.param("account")
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
                progress=progress_sink(ctx, f"final export {store}", len(source)),
                source=source,
                first_run=ctx.first_run,
            )
            exported[store] = result.new_messages
            stores[store] = verify_exports(ctx, account, store, complete=True, source=source)
            if action.param("migrate"):
                target = action.param("to_account")
                pin = importer.VerifiedExport.from_facts(stores[store])
                if pin is None:  # verify_exports records both: a bug if not
                    raise StepError(ctx.task_name, f"the {store} verification recorded no pin")
                done = import_data(ctx, target, store, 0, action, source=source, pin=pin)
                imported[store] = import_facts(done)
        outputs: dict[str, Any] = {
            "stores": stores,
            "pending": [],
            "complete": True,
            "exported": exported,
            "imported": imported,
        }
        if stores:
            outputs["receipt"] = write_receipt(ctx, stores)
        return outputs


def _final_pass(
    ctx: TaskContext,
    store: Store,
    account: str,
    target: str | None,
    modes: dict[Store, str],
    text: str,
) -> Action:
    """The final pass over `store`: export, verify, and for a migrated store import into
    `target` under the import's key (per attempt: an abort cancels that account)."""
    migrate = modes[store] == "migrate"
    return Action(
        "export.final_pass",
        store,
        text,
        key=import_key(ctx, store) if migrate else None,
        params={"account": account, "to_account": target or None, "migrate": migrate},
        per_attempt=migrate,
    )


MODULES = (FinalSync(),)
