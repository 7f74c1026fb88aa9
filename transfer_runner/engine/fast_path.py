"""The completed-transfer fast path (invariant I5): a completed transfer with the same manifest
and playbook is answered `unchanged` from the state store, without a platform call, a lock or a
step record; `plan` (refresh) reads the platform to confirm what the records say."""

from __future__ import annotations

from transfer_runner.engine.options import RunOptions
from transfer_runner.engine.reporter import Reporter
from transfer_runner.engine.results import StepResult, TransferResult
from transfer_runner.engine.task import selected, task_done
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.context import RunContext
from transfer_runner.modules.refresh import platform_drift
from transfer_runner.playbook.loader import Playbook
from transfer_runner.state.base import TransferState

__all__ = ["completed"]


def completed(
    run: RunContext,
    playbook: Playbook,
    transfer: Transfer,
    options: RunOptions,
    reporter: Reporter,
    known: TransferState,
) -> TransferResult | None:
    """`unchanged`, from the state store alone, for a completed transfer with the same
    manifest whose every task of this playbook is recorded as done (`known`, what the state
    store holds of the transfer); None to run the steps.

    A completed transfer changes nothing when applied again (invariant I5), so its checks
    need not ask the platform: this answers without a platform call, a lock or a step
    record, which makes re-applying a wave of completed transfers cheap. `--recheck` runs
    the checks against the platform instead. With `refresh` (plan's default) the platform is
    read to confirm what the records say (`modules.refresh`): a difference fails the transfer
    as drift on the platform.
    """
    if options.recheck:
        return None
    record = known.record
    if (
        record is None
        or record.status != "succeeded"
        or record.manifest_sha256 != transfer.sha256
        or record.playbook_sha256 != playbook.sha256
    ):
        return None  # not completed, or completed by another playbook: run the checks
    recorded = known.steps
    tasks = [t for t in playbook.tasks if selected(t, options.tags)]
    if not all(task_done(recorded.get(t.name), t) for t in playbook.tasks):
        return None  # the playbook gained or changed a task since: run the checks
    message = f"completed in run {record.last_run_id}; nothing to do"
    if options.refresh:
        drift = platform_drift(run.platform, transfer, recorded)
        if drift:
            result = TransferResult(
                transfer.name, "failed",
                message=f"drift on the platform since run {record.last_run_id}: "
                + "; ".join(drift),
                path=transfer.path,
            )  # fmt: skip
            reporter.transfer_finished(result)
            return result
        message = f"completed in run {record.last_run_id}; the platform agrees; nothing to do"
    reporter.transfer_started(transfer)
    steps = []
    for task in tasks:
        done = recorded[task.name]
        step = StepResult(
            task.name, task.module, "ok", f"done in run {done.run_id}", (), dict(done.outputs),
            done.started_at, done.ended_at,
        )  # fmt: skip
        steps.append(step)
        reporter.step_finished(transfer, step)
    if not run.check_mode:
        run.state.append_event(
            run.run_id,
            transfer.name,
            "transfer_finished",
            {"status": "unchanged", "message": message, "path": transfer.path},
        )
    result = TransferResult(transfer.name, "unchanged", tuple(steps), message, transfer.path)
    reporter.transfer_finished(result)
    return result
