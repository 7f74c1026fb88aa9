"""One transfer: the early answers (drift, aborted, completed, locked), then its tasks in
playbook order under its lease, the first failure stopping it, and its final status.

Per transfer, tasks run in playbook order and the first failure stops the transfer (later steps
depend on earlier ones). Each step is recorded in the state store right after its effect.
"""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from typing import Any

from transfer_runner.engine.durability import renewed_after
from transfer_runner.engine.fast_path import completed
from transfer_runner.engine.leases import Heartbeat, acquire_lease
from transfer_runner.engine.options import RunOptions
from transfer_runner.engine.planned import Planned
from transfer_runner.engine.reporter import Reporter
from transfer_runner.engine.results import StepResult, TransferResult, TransferStatusT
from transfer_runner.engine.task import record_step, run_task, selected, task_done
from transfer_runner.errors import TransferRunnerError
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.base import Action, ModuleRegistry
from transfer_runner.modules.context import RunContext, TaskContext
from transfer_runner.modules.precheck import transfer_problems
from transfer_runner.playbook.loader import Playbook, Task
from transfer_runner.state.base import TransferRecord, TransferState

__all__ = ["PRECHECK", "run_transfer"]

PRECHECK = "Precheck the whole transfer"  # the name its failure is reported under


def run_transfer(
    run: RunContext,
    playbook: Playbook,
    modules: ModuleRegistry,
    transfer: Transfer,
    options: RunOptions,
    reporter: Reporter,
    stop: threading.Event | None = None,
) -> TransferResult:
    """Check (plan) or apply one transfer, holding its lock while applying (invariant I6).

    The transfer's state is read once before the lock (one request on S3) and once under it
    (from memory on S3: the store keeps what it holds the lease on)."""
    known = run.state.transfer_state(transfer.name)
    done = (
        _drifted(run, transfer, reporter, known)
        or _aborted(run, transfer, reporter, known)
        or completed(run, playbook, transfer, options, reporter, known)
    )
    if done is not None:
        return done
    if run.check_mode:
        return _execute(run, playbook, modules, transfer, options, reporter, known, stop)
    host = socket.gethostname()
    # Marked running with the lease (one write), unless completed: a completed one stays so.
    running = None if _completed(known) else _record(run, transfer, "running")
    if not acquire_lease(run.state, transfer.name, options.owner or host, run.run_id,
                         run.lock_ttl_s, running):  # fmt: skip
        return _locked(run, transfer, reporter)
    heartbeat = Heartbeat(run, transfer.name, run.lock_ttl_s)
    heartbeat.start()
    try:
        # Drift is judged under the lock: another runner may have just completed the transfer.
        first_run = known.record is None  # read just before the lease: nobody ran it before
        known = run.state.transfer_state(transfer.name)
        return _drifted(run, transfer, reporter, known) or _execute(
            run, playbook, modules, transfer, options, reporter, known, stop, heartbeat.lost,
            first_run,
        )  # fmt: skip
    finally:
        heartbeat.stop()
        run.state.release_lock(transfer.name, run.run_id)


def _aborted(
    run: RunContext, transfer: Transfer, reporter: Reporter, known: TransferState
) -> TransferResult | None:
    """`aborted` for a transfer withdrawn by `abort` whose manifest has not changed since: it
    is not applied again. A changed manifest is a new attempt, from scratch: `abort` recorded
    every step it undid as failed, without outputs."""
    record = known.record
    if record is None or record.status != "aborted" or record.manifest_sha256 != transfer.sha256:
        return None
    why = next(
        (e.get("data") or {} for e in reversed(run.state.events(transfer.name))
         if e.get("kind") == "aborted"),
        {},
    )  # fmt: skip
    message = (
        f"aborted by {why.get('by', 'someone')}: {why.get('reason', '(no reason recorded)')}; "
        "change the manifest to apply it again"
    )
    result = TransferResult(transfer.name, "aborted", message=message, path=transfer.path)
    reporter.transfer_finished(result)
    return result


def _drifted(
    run: RunContext, transfer: Transfer, reporter: Reporter, known: TransferState
) -> TransferResult | None:
    """A failed result if the completed transfer's manifest changed since (never re-applied)."""
    drift = _drift(known.record, transfer)
    if not drift:
        return None
    if not run.check_mode:
        run.state.append_event(run.run_id, transfer.name, "drift", {"message": drift})
    result = TransferResult(transfer.name, "failed", message=drift, path=transfer.path)
    reporter.transfer_finished(result)
    return result


def _drift(record: TransferRecord | None, transfer: Transfer) -> str:
    if record and record.status == "succeeded" and record.manifest_sha256 != transfer.sha256:
        return (
            f"drift: {transfer.path} changed after the transfer completed "
            f"(manifest sha256 {record.manifest_sha256[:12]} -> {transfer.sha256[:12]}); "
            "a completed transfer is not re-applied"
        )
    return ""


def _locked(run: RunContext, transfer: Transfer, reporter: Reporter) -> TransferResult:
    lock = run.state.get_lock(transfer.name)
    holder = (
        f"{lock.owner} (run {lock.run_id}) until {lock.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        if lock
        else "another runner"
    )
    run.state.append_event(run.run_id, transfer.name, "locked", {"holder": holder})
    result = TransferResult(
        transfer.name, "locked", message=f"locked by {holder}", path=transfer.path
    )
    reporter.transfer_finished(result)
    return result


def _execute(
    run: RunContext,
    playbook: Playbook,
    modules: ModuleRegistry,
    transfer: Transfer,
    options: RunOptions,
    reporter: Reporter,
    known: TransferState,
    stop: threading.Event | None,
    lost: threading.Event | None = None,
    first_run: bool = False,
) -> TransferResult:
    reporter.transfer_started(transfer)
    record, previous = known.record, known.steps
    previous_status = record.status if record else None
    if not run.check_mode and previous_status != "succeeded":  # marked running with the lease
        run.state.append_event(run.run_id, transfer.name, "transfer_started", transfer.facts())
    variables: dict[str, Any] = {
        "metadata": transfer.document.get("metadata", {}),
        "spec": transfer.document.get("spec", {}),
        "transfer": transfer.name,
        "defaults": playbook.defaults,
    }
    earlier: dict[str, tuple[str, dict[str, Any]]] = {}
    steps: list[StepResult] = []
    message = ""
    interrupted = False
    proved = False  # whether the last step ended with a conditional write (engine.durability)
    kept = True  # whether the lease was still ours at the last renewal
    refused = _precheck(TaskContext(run, transfer, PRECHECK, previous, earlier))
    if refused is not None:
        steps.append(refused)
        reporter.step_finished(transfer, refused)
        message = f"{PRECHECK}: {refused.message}"
    for task in playbook.tasks if refused is None else ():
        if not selected(task, options.tags):
            continue
        if stop is not None and stop.is_set():
            message = f"interrupted before {task.name!r}; apply again to resume"
            interrupted = True
            break
        if lost is not None and lost.is_set():
            message = f"lost the lock before {task.name!r}; another runner may have taken over"
            break
        reporter.step_started(transfer.name, task.name)
        ctx = TaskContext(run, transfer, task.name, previous, earlier, proved, first_run)
        planned = None if options.planned is None else _planned(options.planned, transfer, task)
        step = run_task(ctx, task, modules, variables, planned)
        kept = run.check_mode or record_step(run, transfer, task, step)
        proved = renewed_after(task.module, step.status)  # renewed just now
        steps.append(step)
        reporter.step_finished(transfer, step)
        if task.register:
            variables[task.register] = step.outputs
        earlier[task.name] = (task.module, step.outputs)
        if step.status == "failed":
            message = f"{task.name}: {step.message}"
            break
        if not kept:
            message = f"lost the lock after {task.name!r}; another runner may have taken over"
            break
    lease_lost = (lost is not None and lost.is_set()) or not kept
    if lease_lost and not message:
        message = "lost the lock; another runner may have taken over"
    status: TransferStatusT = (
        "interrupted" if interrupted else _status(run.check_mode, steps, message)
    )
    if not run.check_mode and not lease_lost:  # who lost the lock writes nothing more of it
        recorded = _set_final_status(run, transfer, playbook, status, record)
        if status == "unchanged" and recorded == "succeeded" and previous_status != "succeeded":
            # Every step found its work done (an earlier run did it, then failed before it
            # could record so): this run is the one that completes the transfer.
            status, message = "succeeded", "completed: every step was already done"
        run.state.append_event(
            run.run_id, transfer.name, "transfer_finished", {"status": status, "message": message}
        )
    result = TransferResult(transfer.name, status, tuple(steps), message, transfer.path)
    reporter.transfer_finished(result)
    return result


def _planned(planned: Planned, transfer: Transfer, task: Task) -> tuple[Action, ...]:
    """What the saved plan showed for this task (nothing: it was to change nothing)."""
    return tuple(planned.get(transfer.name, {}).get(task.name, ()))


def _precheck(ctx: TaskContext) -> StepResult | None:
    """A failed step if the transfer would fail after writing (`modules.precheck`), else None.
    Platform reads only: a refused transfer has written nothing."""
    started = datetime.now(UTC)
    try:
        problems = transfer_problems(ctx)
    except TransferRunnerError as exc:
        problems = [str(exc)]
    if not problems:
        return None
    message = "; ".join(problems)
    return StepResult(PRECHECK, "precheck", "failed", message, (), {}, started, datetime.now(UTC))


def _status(check_mode: bool, steps: list[StepResult], message: str) -> TransferStatusT:
    if message or any(s.status == "failed" for s in steps):
        return "failed"
    if any(s.status == "changed" for s in steps):
        return "pending" if check_mode else "succeeded"
    return "unchanged"


def _set_final_status(
    run: RunContext,
    transfer: Transfer,
    playbook: Playbook,
    status: str,
    record: TransferRecord | None,
) -> str | None:
    """succeeded only when every task of the playbook is done; a completed transfer whose
    re-apply fails stays succeeded (the failure is in the run's events), so drift still holds.
    Returns the status recorded. `record` is the transfer's record before this run."""
    before = record.status if record else None
    if status in ("failed", "interrupted"):  # interrupted: resumable, so pending
        recorded = "failed" if status == "failed" else "pending"
        if before != "succeeded":
            _set_status(run, transfer, recorded)
        return before if before == "succeeded" else recorded
    done = run.state.latest_steps(transfer.name)
    complete = all(task_done(done.get(t.name), t) for t in playbook.tasks)
    status = "succeeded" if complete or before == "succeeded" else "pending"
    _set_status(run, transfer, status, playbook.sha256 if complete else "")
    return status


def _set_status(
    run: RunContext, transfer: Transfer, status: Any, playbook_sha256: str = ""
) -> None:
    """Record the transfer's status; `playbook_sha256` names the playbook that completed it."""
    run.state.set_transfer(_record(run, transfer, status, playbook_sha256))


def _record(
    run: RunContext, transfer: Transfer, status: Any, playbook_sha256: str = ""
) -> TransferRecord:
    return TransferRecord(
        transfer.name, transfer.sha256, status, datetime.now(UTC), run.run_id, playbook_sha256
    )


def _completed(known: TransferState) -> bool:
    return known.record is not None and known.record.status == "succeeded"
