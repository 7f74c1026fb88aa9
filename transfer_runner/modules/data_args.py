"""What the data steps share: their arguments (store, modes, sync policy, flags), where an
export goes, progress, the delta of a store against its export, and facts about accounts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transfer_runner.errors import StepError
from transfer_runner.export.status import ExportDelta, inspect_delta
from transfer_runner.export.sync import SyncPolicy
from transfer_runner.modules.base import Action, require
from transfer_runner.modules.context import TaskContext
from transfer_runner.platforms.base import STORES, Store

__all__ = [
    "count_arg",
    "delta_of",
    "describe_delta",
    "destination_of",
    "domains_of",
    "flag_arg",
    "is_cancelled",
    "modes_arg",
    "policy_arg",
    "progress_sink",
    "store_arg",
    "store_of",
]


def store_arg(args: Mapping[str, Any], task: str) -> Store:
    store: object = require(args, "store", task)
    if store not in STORES:
        raise StepError(task, f"store must be one of {', '.join(STORES)}, not {store!r}")
    return store


def store_of(action: Action) -> Store:
    """The store an export, verify or import action is about."""
    for store in STORES:
        if action.target == store:
            return store
    raise ValueError(f"{action.kind} action on {action.target!r}, not a store")


def modes_arg(args: Mapping[str, Any], task: str) -> dict[Store, str]:
    modes: dict[Store, str] = {}
    for store, mode in require(args, "stores", task, dict).items():
        if store not in STORES or mode not in ("migrate", "export", "skip"):
            raise StepError(task, f"bad store mode {store}: {mode!r}")
        modes[store] = mode
    return modes


def count_arg(args: Mapping[str, Any], key: str, default: float, task: str, kind: type) -> Any:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise StepError(task, f"{key} must be a number >= 0, not {value!r}")
    if kind is int and value != int(value):
        raise StepError(task, f"{key} must be a whole number, not {value!r}")
    return kind(value)


def policy_arg(args: Mapping[str, Any], task: str) -> SyncPolicy:
    default = SyncPolicy()
    policy = SyncPolicy(
        max_passes=count_arg(args, "max_passes", default.max_passes, task, int),
        delta_messages=count_arg(args, "delta_messages", default.delta_messages, task, int),
        delta_percent=count_arg(args, "delta_percent", default.delta_percent, task, float),
    )
    if policy.max_passes < 1:
        raise StepError(task, "max_passes must be at least 1")
    return policy


def flag_arg(args: Mapping[str, Any], key: str, default: bool, task: str) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise StepError(task, f"{key} must be true or false, not {value!r}")
    return value


def destination_of(ctx: TaskContext, store: str) -> str:
    if ctx.run.export is None:
        return "S3 (no --export-to set)"
    return f"{ctx.run.export.export_to.rstrip('/')}/{ctx.transfer.name}/{store}/"


def progress_sink(ctx: TaskContext, what: str, total: int) -> Callable[[int, int], None]:
    def report(done: int, nbytes: int) -> None:
        ctx.run.progress(ctx.transfer.name, what, done, total, nbytes)

    return report


def delta_of(ctx: TaskContext, account: str, store: Store) -> ExportDelta:
    delta = inspect_delta(
        ctx.platform, ctx.run.s3(), ctx.run.export_settings(), ctx.transfer.name, account, store
    )
    if delta.changed:
        raise StepError(
            ctx.task_name,
            f"{store}: message {delta.changed[0]} changed under the same id since it was "
            "exported (the export never overwrites a message): investigate before going on",
        )
    return delta


def describe_delta(delta: ExportDelta, store: str) -> str:
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


def is_cancelled(ctx: TaskContext, account: str) -> bool:
    found = ctx.platform.get_account(account)
    return found is not None and found.status == "cancelled"


def domains_of(ctx: TaskContext, account: str) -> tuple[str, ...]:
    found = ctx.platform.get_account(account)
    if found is None:
        raise StepError(ctx.task_name, f"direct account {account} does not exist")
    return found.domains
