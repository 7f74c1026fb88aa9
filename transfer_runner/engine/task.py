"""One task of a transfer: render its arguments, `check`, and only then `apply`, after the
last checks before a write (the lease is still ours, both tickets are claimed); then record it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer_runner.engine.durability import IRREVERSIBLE, renewed_after
from transfer_runner.engine.planned import unplanned
from transfer_runner.engine.results import StepResult, StepStatusT
from transfer_runner.errors import StepError, TransferRunnerError
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.base import Action, Check, ModuleRegistry
from transfer_runner.modules.claims import write_claim
from transfer_runner.modules.context import RunContext, TaskContext
from transfer_runner.playbook.loader import Task
from transfer_runner.playbook.templating import evaluate, render
from transfer_runner.state.base import StepRecord
from transfer_runner.testpoints import reached as testpoint

__all__ = ["before_write", "lease_held", "record_step", "run_task", "selected", "task_done"]

log = logging.getLogger("transfer_runner.engine.runner")


def selected(task: Task, tags: frozenset[str]) -> bool:
    """Tag filter; authorization (`ticket.verify`) and `always` tasks run whatever the tags."""
    if not tags or tags.intersection(task.tags):
        return True
    return task.module == "ticket.verify" or "always" in task.tags


def run_task(
    ctx: TaskContext,
    task: Task,
    modules: ModuleRegistry,
    variables: dict[str, Any],
    planned: tuple[Action, ...] | None = None,
) -> StepResult:
    """Render, check, and (outside check mode) apply one task. With `planned` (a saved plan's
    actions for this task), an action the plan did not show fails the step before it writes."""
    started = datetime.now(UTC)

    def done(
        status: StepStatusT,
        message: str = "",
        actions: tuple[Action, ...] = (),
        outputs: dict[str, Any] | None = None,
    ) -> StepResult:
        return StepResult(
            task.name,
            task.module,
            status,
            message,
            actions,
            outputs or {},
            started,
            datetime.now(UTC),
        )

    try:
        if task.when is not None and not truthy(task.when, variables, task.name):
            return done("skipped", f"skipped: when {task.when!r} is false")
        args = render(task.args, variables, task.name)
        module = modules[task.module]
        check: Check = module.check(ctx, args)
        if not check.changes:
            log.debug("%s: %s: nothing to do: %s", ctx.transfer.name, task.name, check.reason)
            return done("ok", check.reason, outputs=dict(check.facts))
        said = "; ".join(a.text for a in check.actions)
        log.debug("%s: %s: check found changes: %s", ctx.transfer.name, task.name, said)
        if ctx.check_mode:
            return done("changed", said, check.actions, dict(check.facts))
        if planned is not None:
            outside = unplanned(check.actions, planned)
            if outside:
                raise StepError(
                    task.name,
                    f"not in the saved plan: {'; '.join(a.text for a in outside)} "
                    "(the world changed since the plan: make a new one)",
                )
        before_write(ctx, task)
        testpoint(f"before-step-{task.index + 1}")
        outputs = {**check.facts, **module.apply(ctx, args, check)}
        log.debug("%s: %s: applied", ctx.transfer.name, task.name)
        testpoint(f"after-step-{task.index + 1}")
        return done("changed", said, check.actions, outputs)
    except StepError as exc:
        return done("failed", exc.cause)
    except TransferRunnerError as exc:
        return done("failed", str(exc))
    except Exception as exc:  # a bug: keep the run going for other transfers, keep the trace
        log.exception("internal error in task %r of %s", task.name, ctx.transfer.name)
        return done("failed", f"internal error: {type(exc).__name__}: {exc} (please report)")


def before_write(ctx: TaskContext, task: Task) -> None:
    """Last checks before a step writes: we still hold the lease (I6), proved by a write
    before an irreversible step (`engine.durability`), and both of the manifest's tickets are
    verified and claimed by this transfer (I1), whatever the playbook or the tag selection
    ran before."""
    run, transfer = ctx.run, ctx.transfer
    if task.module in IRREVERSIBLE and not ctx.lease_proved:
        held = run.state.renew_lock(transfer.name, run.run_id, run.lock_ttl_s)
    else:
        held = lease_held(run, transfer.name)
    if not held:
        raise StepError(task.name, "this runner no longer holds the transfer's lock")
    if task.module == "ticket.verify":
        return
    tickets = (("customer", transfer.customer_ticket), ("reseller", transfer.reseller_ticket))
    for role, ticket in tickets:
        if run.ticket_claim(ticket) != transfer.name:
            raise StepError(
                task.name,
                f"refusing to write: the {role} ticket {ticket} is not verified for this transfer",
            )
    for role, ticket in tickets:  # then on the platform, before its first other write
        if run.platform_claim(ticket) != transfer.name:
            claim = write_claim(run.platform, transfer, ticket, role, run.run_id)
            if claim.transfer != transfer.name:
                raise StepError(
                    task.name,
                    f"refusing to write: the {role} ticket {ticket} is claimed on the platform "
                    f"by {claim.describe()}",
                )
            run.remember_platform_claim(ticket, claim.transfer, claim.generation)


def lease_held(run: RunContext, name: str) -> bool:
    """Whether our lease on `name` is in the store with a third of its lifetime left.

    A read, not a write: the heartbeat renews the lease, and no other runner may take it
    before it expires, so a lease with time left is as good as a renewal. One that is about
    to expire (a stalled heartbeat) is renewed here, and a lease taken from us (expired and
    taken over, or removed by `unlock`) is seen here before the write.
    """
    lock = run.state.get_lock(name)
    if lock is None or lock.run_id != run.run_id:
        return False
    if lock.expires_at - datetime.now(UTC) > timedelta(seconds=run.lock_ttl_s / 3):
        return True
    return run.state.renew_lock(name, run.run_id, run.lock_ttl_s)


def truthy(when: str | bool, variables: dict[str, Any], task: str) -> bool:
    if isinstance(when, bool):
        return when
    return bool(evaluate(when, variables, task))


def record_step(run: RunContext, transfer: Transfer, task: Task, step: StepResult) -> bool:
    """Record the step; a DURABLE step that changed something is made durable at once by a
    renewal of the lease (`engine.durability`). False if that renewal found the lease lost."""
    run.state.record_step(
        StepRecord(
            run_id=run.run_id,
            transfer=transfer.name,
            index=task.index,
            name=task.name,
            module=task.module,
            status=step.status,
            started_at=step.started_at or datetime.now(UTC),
            ended_at=step.ended_at or datetime.now(UTC),
            outputs=step.outputs,
            message=step.message,
        )
    )
    if renewed_after(task.module, step.status):
        return run.state.renew_lock(transfer.name, run.run_id, run.lock_ttl_s)
    return True


def task_done(record: StepRecord | None, task: Task) -> bool:
    return (
        record is not None
        and record.module == task.module
        and record.status in ("ok", "changed", "skipped")
    )
