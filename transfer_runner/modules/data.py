"""Data steps: export quarantine and archive to S3, verify them (gate of I2), import them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from transfer_runner.engine.context import TaskContext
from transfer_runner.engine.keys import idempotency_key
from transfer_runner.errors import ExportError, StepError
from transfer_runner.export import exporter, importer, receipt, verifier
from transfer_runner.export.layout import store_layout
from transfer_runner.modules.base import Check, require
from transfer_runner.platforms.base import STORES

__all__ = ["ExportStore", "VerifyExports", "ImportStores", "MODULES"]


def _store(args: Mapping[str, Any], task: str) -> str:
    store = require(args, "store", task)
    if store not in STORES:
        raise StepError(task, f"store must be one of {', '.join(STORES)}, not {store!r}")
    return store


def _modes(args: Mapping[str, Any], task: str) -> dict[str, str]:
    modes = require(args, "stores", task, dict)
    for store, mode in modes.items():
        if store not in STORES or mode not in ("migrate", "export", "skip"):
            raise StepError(task, f"bad store mode {store}: {mode!r}")
    return modes


def _destination(ctx: TaskContext, store: str) -> str:
    if ctx.run.export is None:
        return "S3 (no --export-to set)"
    return f"{ctx.run.export.export_to.rstrip('/')}/{ctx.transfer.name}/{store}/"


def _progress(ctx: TaskContext, what: str, total: int):
    def report(done: int, nbytes: int) -> None:
        ctx.run.progress(ctx.transfer.name, what, done, total, nbytes)

    return report


class ExportStore:
    """Export one store of the direct account to S3 as tar parts plus `index.jsonl`.

    ```yaml
    data.export:
      account: C-1001
      store: quarantine     # quarantine | archive
    ```
    """

    name: ClassVar[str] = "data.export"

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        store = _store(args, ctx.task_name)
        count, nbytes = ctx.platform.count_messages(account, store)
        facts: dict[str, Any] = {"store": store, "messages": count, "bytes": nbytes}
        if ctx.run.export is not None:
            status = exporter.inspect_export(
                ctx.platform, ctx.run.s3(), ctx.run.export, ctx.transfer.name, account, store
            )
            if status.complete and status.messages == count:
                facts = {"store": store, **status.facts()}
                return Check(reason=f"{store} exported ({status.messages} messages)", facts=facts)
            if status.complete:  # mail arrived (or left) since: the export no longer covers it
                action = (
                    f"re-export {store}: the source has {count} messages, "
                    f"the export {status.messages}"
                )
                return Check(actions=(action,), facts={**facts, "discard": True})
        action = f"export {count} {store} messages ({nbytes} bytes) to {_destination(ctx, store)}"
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        store = check.facts["store"]
        if check.facts.get("discard"):
            _discard_export(ctx, store)
        result = exporter.export_store(
            ctx.platform,
            ctx.run.s3(),
            ctx.run.export,
            ctx.transfer.name,
            args["account"],
            store,
            progress=_progress(ctx, f"export {store}", check.facts["messages"]),
        )
        return {"store": store, **result.facts(), "exported_in_run": ctx.run.run_id}


def _discard_export(ctx: TaskContext, store: str) -> None:
    """Delete a store's stale export (parts, index, journal) so it is rebuilt from the source."""
    s3, settings = ctx.run.s3(), ctx.run.export
    assert settings is not None
    layout = store_layout(settings, ctx.transfer.name, store)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=layout.bucket, Prefix=layout.base)
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=layout.bucket, Delete={"Objects": keys, "Quiet": True})


class VerifyExports:
    """Read every exported part back from S3 and compare each message with the source.

    ```yaml
    data.verify:
      account: C-1001
      stores: {quarantine: migrate, archive: export}   # skip: not exported, not verified
    ```
    Its recorded success is what `account.cancel` and `domain.move` require (invariant I2).
    """

    name: ClassVar[str] = "data.verify"

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        require(args, "account", ctx.task_name)
        modes = _modes(args, ctx.task_name)
        done = self._already_verified(ctx)
        stores: dict[str, Any] = {}
        pending: list[str] = []
        for store, mode in modes.items():
            if mode == "skip":
                continue
            exported = _export_facts(ctx, store)
            prior = done.get(store)
            if (
                prior
                and exported
                and prior.get("index_sha256") == exported.get("index_sha256")
                and exported.get("exported_in_run") != ctx.run.run_id  # a new export is read back
                and prior.get("messages") == exported.get("messages")
            ):
                stores[store] = prior
            else:
                pending.append(store)
        facts = {"stores": stores, "pending": pending}
        if not pending:
            if (
                stores
                and receipt.read_receipt(ctx.run.s3(), ctx.run.export, ctx.transfer.name) is None
            ):
                return Check(actions=("write the export receipt",), facts=facts)
            return Check(reason="every export is verified", facts=facts)
        actions = tuple(f"verify the {s} export against the source" for s in pending)
        return Check(actions=actions, facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        stores = dict(check.facts["stores"])
        for store in check.facts["pending"]:
            result = verifier.verify_store(
                ctx.platform,
                ctx.run.s3(),
                ctx.run.export,
                ctx.transfer.name,
                args["account"],
                store,
                progress=_progress(
                    ctx, f"verify {store}", _export_facts(ctx, store).get("messages", 0)
                ),
            )
            if not result.ok:
                shown = "; ".join(result.problems[:5])
                more = f" (+{len(result.problems) - 5} more)" if len(result.problems) > 5 else ""
                raise StepError(ctx.task_name, f"{store} export does not verify: {shown}{more}")
            stores[store] = {
                "verified": True,
                "messages": result.messages,
                "bytes": result.bytes,
                "index_sha256": result.index_sha256,
                "verified_at": datetime.now(UTC).isoformat(),
            }
        if stores:
            written = receipt.write_receipt(
                ctx.run.s3(), ctx.run.export, ctx.transfer.name, stores, ctx.run.git_commit
            )
            return {"stores": stores, "pending": [], "receipt": written.key}
        return {"stores": stores, "pending": []}

    def _already_verified(self, ctx: TaskContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for record in ctx.previous.values():
            if record.module == self.name and record.status in ("ok", "changed"):
                for store, info in (record.outputs.get("stores") or {}).items():
                    if isinstance(info, dict) and info.get("verified") is True:
                        out[store] = info
        return out


def _export_facts(ctx: TaskContext, store: str) -> dict[str, Any]:
    for module, outputs in reversed(list(ctx.earlier.values())):
        if module == "data.export" and outputs.get("store") == store:
            return outputs
    for record in ctx.previous.values():
        if record.module == "data.export" and record.outputs.get("store") == store:
            return dict(record.outputs)
    return {}


class ImportStores:
    """Import the verified exports into the new account, for the stores set to `migrate`.

    ```yaml
    data.import:
      account: A-1
      stores: {quarantine: migrate, archive: migrate}
    ```
    Messages already in the new account (by id) are skipped, so a repeat imports nothing.
    """

    name: ClassVar[str] = "data.import"

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        modes = _modes(args, ctx.task_name)
        target = args.get("account")
        wanted = [s for s, m in modes.items() if m == "migrate"]
        if not wanted:
            return Check(reason="no store is set to migrate", facts={"pending": []})
        if not target or ctx.run.export is None:
            if not ctx.check_mode:
                raise StepError(ctx.task_name, "no target account or no export destination")
            return Check(
                actions=tuple(f"import the {s} export into the new account" for s in wanted),
                facts={"pending": wanted},
            )
        pending, actions, missing_by_store = [], [], {}
        for store in wanted:
            try:
                missing = importer.inspect_import(
                    ctx.platform, ctx.run.s3(), ctx.run.export, ctx.transfer.name, target, store
                )
            except ExportError:
                if not ctx.check_mode:
                    raise
                pending.append(store)  # not exported yet: the plan shows the import to come
                actions.append(f"import the {store} export into {target}")
                continue
            if missing:
                pending.append(store)
                missing_by_store[store] = missing
                actions.append(f"import {missing} {store} messages into {target}")
        facts = {"pending": pending, "account": target, "missing": missing_by_store}
        if not pending:
            return Check(reason=f"every migrated store is in {target}", facts=facts)
        return Check(actions=tuple(actions), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        target = args["account"]
        imported: dict[str, Any] = {}
        for store in check.facts["pending"]:
            result = importer.import_store(
                ctx.platform,
                ctx.run.s3(),
                ctx.run.export,
                ctx.transfer.name,
                target,
                store,
                idempotency_key("import", ctx.transfer.name, store),
                progress=_progress(ctx, f"import {store}", check.facts["missing"].get(store, 0)),
            )
            imported[store] = {"imported": result.imported, "skipped": result.skipped}
        return {"imported": imported, "pending": []}


MODULES = (ExportStore(), VerifyExports(), ImportStores())
