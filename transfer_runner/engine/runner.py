"""Run a playbook over transfers: ordering, check/apply, locks, recording, forks.

Per transfer, tasks run in playbook order and the first failure stops the transfer (later steps
depend on earlier ones). Each step is recorded in the state store right after its effect. The
engine never prints: it tells a `Reporter`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from transfer_runner.engine.leases import acquire_lease
from transfer_runner.engine.results import (
    StepResult,
    StepStatusT,
    TransferResult,
    TransferStatusT,
)
from transfer_runner.errors import StepError, TransferRunnerError
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.base import Check, ModuleRegistry
from transfer_runner.modules.claims import write_claim
from transfer_runner.modules.context import RunContext, TaskContext
from transfer_runner.modules.precheck import transfer_problems
from transfer_runner.modules.refresh import platform_drift
from transfer_runner.playbook.loader import Playbook, Task
from transfer_runner.playbook.templating import evaluate, render
from transfer_runner.state.base import StepRecord, TransferRecord
from transfer_runner.testpoints import reached as testpoint

__all__ = ["Reporter", "RunOptions", "run_transfers", "run_transfer", "NullReporter", "StopNow"]

log = logging.getLogger(__name__)
PRECHECK = "Precheck the whole transfer"  # the name its failure is reported under


class Reporter(Protocol):
    """Receives the engine's events (console output, progress)."""

    def transfer_started(self, transfer: Transfer) -> None: ...

    def step_finished(self, transfer: Transfer, step: StepResult) -> None: ...

    def transfer_finished(self, result: TransferResult) -> None: ...


class NullReporter:
    """A reporter that ignores everything."""

    def transfer_started(self, transfer: Transfer) -> None:
        return None

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        return None

    def transfer_finished(self, result: TransferResult) -> None:
        return None


@dataclass(frozen=True)
class RunOptions:
    """How to run: forks, tag filter, lock lease, waves and their failure budget."""

    forks: int = 1
    tags: frozenset[str] = frozenset()
    lock_ttl_s: float = 900.0
    owner: str = ""
    serial: str | None = None  # wave size: "10" transfers or "10%" of them
    max_fail_percentage: float | None = None  # stop starting waves above this
    recheck: bool = False  # check completed transfers against the platform again
    grace_s: float | None = None  # after a stop, how long running steps may take to finish
    refresh: bool = False  # plan: read the platform for completed transfers (drift)


def run_transfers(
    run: RunContext,
    playbook: Playbook,
    modules: ModuleRegistry,
    transfers: Sequence[Transfer],
    options: RunOptions,
    reporter: Reporter,
    stop: threading.Event | None = None,
) -> list[TransferResult]:
    """Run every transfer (up to `forks` at once), wave by wave; results in the order given.

    After each wave, if the share of failed transfers so far exceeds `max_fail_percentage`, no
    new wave starts (running transfers have finished); the rest are reported `not_started`.
    Once `stop` is set (a first signal), no new step starts: running steps finish within
    `grace_s`, their transfers end `interrupted` and the rest `not_started`. A
    KeyboardInterrupt after the stop, or the grace period running out, raises
    `StopNow`: the caller stops at once (as after a crash, the next run resumes).
    """
    stop = stop or threading.Event()
    run.lock_ttl_s = options.lock_ttl_s  # the lease re-checked before each write is this one
    results: list[TransferResult] = []
    waves = _waves(list(transfers), options.serial)
    for number, wave in enumerate(waves):
        results.extend(_run_wave(run, playbook, modules, wave, options, reporter, stop))
        if number + 1 < len(waves) and _over_budget(results, options.max_fail_percentage):
            rest = [t for later in waves[number + 1 :] for t in later]
            why = f"not started: more than {options.max_fail_percentage:g}% of transfers failed"
            results.extend(_not_started(run, t, why) for t in rest)
            break
    return results


def _run_wave(
    run: RunContext,
    playbook: Playbook,
    modules: ModuleRegistry,
    transfers: list[Transfer],
    options: RunOptions,
    reporter: Reporter,
    stop: threading.Event,
) -> list[TransferResult]:
    def one(transfer: Transfer) -> TransferResult:
        if stop.is_set():
            return _not_started(run, transfer, "not started: the run was stopped")
        return run_transfer(run, playbook, modules, transfer, options, reporter, stop)

    # Transfers run in worker threads even with one fork, so that Ctrl-C in the main thread
    # only sets `stop`: running steps finish and are recorded, no new step or transfer starts.
    pool = ThreadPoolExecutor(max_workers=max(1, options.forks), thread_name_prefix="transfer")
    try:
        futures = [pool.submit(one, t) for t in transfers]
        _wait_allowing_interrupt(futures, stop, options.grace_s)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # stopping at once: wait for nothing
        raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]


class StopNow(KeyboardInterrupt):
    """A second interrupt, or the grace period over: stop at once, mid-step (like a crash)."""


def _wait_allowing_interrupt(
    futures: list[Future[TransferResult]], stop: threading.Event, grace_s: float | None = None
) -> None:
    """Wait for every future. A first Ctrl-C sets `stop` and keeps waiting (for at most
    `grace_s` once stopped); a second one, or the grace period over, raises StopNow."""
    pending = set(futures)
    deadline: float | None = None
    while pending:
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + (grace_s if grace_s is not None else float("inf"))
            log.warning(
                "stopping: no new step starts; waiting for %d running transfer(s)%s",
                sum(1 for f in pending if f.running()),
                f" for at most {grace_s:g} s" if grace_s is not None else "",
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise StopNow(f"the grace period of {grace_s:g} s is over")
        try:
            _, pending = wait(pending, timeout=0.2)
        except StopNow:
            raise
        except KeyboardInterrupt as exc:
            if stop.is_set():
                raise StopNow("interrupted again") from exc
            stop.set()


def _waves(transfers: list[Transfer], serial: str | None) -> list[list[Transfer]]:
    if not serial or not transfers:
        return [transfers]
    text = serial.strip()
    size = max(1, len(transfers) * int(text[:-1]) // 100) if text.endswith("%") else int(text)
    size = max(size, 1)
    return [transfers[i : i + size] for i in range(0, len(transfers), size)]


def _not_started(run: RunContext, transfer: Transfer, why: str) -> TransferResult:
    """The result of a transfer the run never began, recorded as such for `report`."""
    if not run.check_mode:
        run.state.append_event(
            run.run_id,
            transfer.name,
            "transfer_finished",
            {"status": "not_started", "message": why, "path": transfer.path},
        )
    return TransferResult(transfer.name, "not_started", message=why, path=transfer.path)


def _over_budget(results: list[TransferResult], max_fail_percentage: float | None) -> bool:
    if max_fail_percentage is None or not results:
        return False
    failed = sum(1 for r in results if r.status == "failed")
    return failed * 100 / len(results) > max_fail_percentage


def run_transfer(
    run: RunContext,
    playbook: Playbook,
    modules: ModuleRegistry,
    transfer: Transfer,
    options: RunOptions,
    reporter: Reporter,
    stop: threading.Event | None = None,
) -> TransferResult:
    """Check (plan) or apply one transfer, holding its lock while applying (invariant I6)."""
    done = (
        _drifted(run, transfer, reporter)
        or _aborted(run, transfer, reporter)
        or _completed(run, playbook, transfer, options, reporter)
    )
    if done is not None:
        return done
    if run.check_mode:
        return _execute(run, playbook, modules, transfer, options, reporter, stop)
    host = socket.gethostname()
    if not acquire_lease(run.state, transfer.name, options.owner or host, run.run_id,
                         options.lock_ttl_s):  # fmt: skip
        return _locked(run, transfer, reporter)
    heartbeat = _Heartbeat(run, transfer.name, options.lock_ttl_s)
    heartbeat.start()
    try:
        # Drift is judged under the lock: another runner may have just completed the transfer.
        return _drifted(run, transfer, reporter) or _execute(
            run, playbook, modules, transfer, options, reporter, stop, heartbeat.lost
        )
    finally:
        heartbeat.stop()
        run.state.release_lock(transfer.name, run.run_id)


def _aborted(run: RunContext, transfer: Transfer, reporter: Reporter) -> TransferResult | None:
    """`aborted` for a transfer withdrawn by `abort` whose manifest has not changed since: it
    is not applied again. A changed manifest is a new attempt, from scratch: `abort` recorded
    every step it undid as failed, without outputs."""
    record = run.state.get_transfer(transfer.name)
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


def _drifted(run: RunContext, transfer: Transfer, reporter: Reporter) -> TransferResult | None:
    """A failed result if the completed transfer's manifest changed since (never re-applied)."""
    drift = _drift(run, transfer)
    if not drift:
        return None
    if not run.check_mode:
        run.state.append_event(run.run_id, transfer.name, "drift", {"message": drift})
    result = TransferResult(transfer.name, "failed", message=drift, path=transfer.path)
    reporter.transfer_finished(result)
    return result


def _completed(
    run: RunContext,
    playbook: Playbook,
    transfer: Transfer,
    options: RunOptions,
    reporter: Reporter,
) -> TransferResult | None:
    """`unchanged`, from the state store alone, for a completed transfer with the same
    manifest whose every task of this playbook is recorded as done; None to run the steps.

    A completed transfer changes nothing when applied again (invariant I5), so its checks
    need not ask the platform: this answers without a platform call, a lock or a step
    record, which makes re-applying a wave of completed transfers cheap. `--recheck` runs
    the checks against the platform instead. With `refresh` (plan's default) the platform is
    read to confirm what the records say (`modules.refresh`): a difference fails the transfer
    as drift on the platform.
    """
    if options.recheck:
        return None
    record = run.state.get_transfer(transfer.name)
    if (
        record is None
        or record.status != "succeeded"
        or record.manifest_sha256 != transfer.sha256
        or record.playbook_sha256 != playbook.sha256
    ):
        return None  # not completed, or completed by another playbook: run the checks
    recorded = run.state.latest_steps(transfer.name)
    tasks = [t for t in playbook.tasks if _selected(t, options.tags)]
    if not all(_done(recorded.get(t.name), t) for t in playbook.tasks):
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


def _done(record: StepRecord | None, task: Task) -> bool:
    return (
        record is not None
        and record.module == task.module
        and record.status in ("ok", "changed", "skipped")
    )


def _drift(run: RunContext, transfer: Transfer) -> str:
    record = run.state.get_transfer(transfer.name)
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
    stop: threading.Event | None,
    lost: threading.Event | None = None,
) -> TransferResult:
    reporter.transfer_started(transfer)
    record = run.state.get_transfer(transfer.name)
    previous = run.state.latest_steps(transfer.name)
    previous_status = record.status if record else None
    if not run.check_mode and previous_status != "succeeded":  # a completed one stays so
        _set_status(run, transfer, "running")
        run.state.append_event(
            run.run_id, transfer.name, "transfer_started", {"path": transfer.path}
        )
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
    refused = _precheck(TaskContext(run, transfer, PRECHECK, previous, earlier))
    if refused is not None:
        steps.append(refused)
        reporter.step_finished(transfer, refused)
        message = f"{PRECHECK}: {refused.message}"
    for task in playbook.tasks if refused is None else ():
        if not _selected(task, options.tags):
            continue
        if stop is not None and stop.is_set():
            message = f"interrupted before {task.name!r}; apply again to resume"
            interrupted = True
            break
        if lost is not None and lost.is_set():
            message = f"lost the lock before {task.name!r}; another runner may have taken over"
            break
        ctx = TaskContext(run, transfer, task.name, previous, earlier)
        step = _run_task(ctx, task, modules, variables)
        if not run.check_mode:
            _record(run, transfer, task, step)
        steps.append(step)
        reporter.step_finished(transfer, step)
        if task.register:
            variables[task.register] = step.outputs
        earlier[task.name] = (task.module, step.outputs)
        if step.status == "failed":
            message = f"{task.name}: {step.message}"
            break
    status: TransferStatusT = (
        "interrupted" if interrupted else _status(run.check_mode, steps, message)
    )
    if not run.check_mode:
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


def _selected(task: Task, tags: frozenset[str]) -> bool:
    """Tag filter; authorization (`ticket.verify`) and `always` tasks run whatever the tags."""
    if not tags or tags.intersection(task.tags):
        return True
    return task.module == "ticket.verify" or "always" in task.tags


def _status(check_mode: bool, steps: list[StepResult], message: str) -> TransferStatusT:
    if message or any(s.status == "failed" for s in steps):
        return "failed"
    if any(s.status == "changed" for s in steps):
        return "pending" if check_mode else "succeeded"
    return "unchanged"


def _run_task(
    ctx: TaskContext, task: Task, modules: ModuleRegistry, variables: dict[str, Any]
) -> StepResult:
    started = datetime.now(UTC)

    def done(
        status: StepStatusT,
        message: str = "",
        actions: tuple[str, ...] = (),
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
        if task.when is not None and not _truthy(task.when, variables, task.name):
            return done("skipped", f"skipped: when {task.when!r} is false")
        args = render(task.args, variables, task.name)
        module = modules[task.module]
        check: Check = module.check(ctx, args)
        if not check.changes:
            return done("ok", check.reason, outputs=dict(check.facts))
        if ctx.check_mode:
            return done("changed", "; ".join(check.actions), check.actions, dict(check.facts))
        _before_write(ctx, task)
        testpoint(f"before-step-{task.index + 1}")
        outputs = {**check.facts, **module.apply(ctx, args, check)}
        testpoint(f"after-step-{task.index + 1}")
        return done("changed", "; ".join(check.actions), check.actions, outputs)
    except StepError as exc:
        return done("failed", exc.cause)
    except TransferRunnerError as exc:
        return done("failed", str(exc))
    except Exception as exc:  # a bug: keep the run going for other transfers, keep the trace
        log.exception("internal error in task %r of %s", task.name, ctx.transfer.name)
        return done("failed", f"internal error: {type(exc).__name__}: {exc} (please report)")


def _before_write(ctx: TaskContext, task: Task) -> None:
    """Last checks before a step writes: we still hold the lease (I6), and both of the
    manifest's tickets are verified and claimed by this transfer (I1), whatever the playbook
    or the tag selection ran before."""
    run, transfer = ctx.run, ctx.transfer
    if not _lease_held(run, transfer.name):
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


def _lease_held(run: RunContext, name: str) -> bool:
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


def _truthy(when: str | bool, variables: dict[str, Any], task: str) -> bool:
    if isinstance(when, bool):
        return when
    return bool(evaluate(when, variables, task))


def _record(run: RunContext, transfer: Transfer, task: Task, step: StepResult) -> None:
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
    complete = all(_done(done.get(t.name), t) for t in playbook.tasks)
    status = "succeeded" if complete or before == "succeeded" else "pending"
    _set_status(run, transfer, status, playbook.sha256 if complete else "")
    return status


def _set_status(
    run: RunContext, transfer: Transfer, status: Any, playbook_sha256: str = ""
) -> None:
    """Record the transfer's status; `playbook_sha256` names the playbook that completed it."""
    run.state.set_transfer(
        TransferRecord(
            transfer.name, transfer.sha256, status, datetime.now(UTC), run.run_id, playbook_sha256
        )
    )


class _Heartbeat:
    """Renews a transfer's lease every third of its lifetime while the transfer runs."""

    def __init__(self, run: RunContext, name: str, ttl_s: float) -> None:
        self._run, self._name, self._ttl = run, name, ttl_s
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                held = self._run.state.renew_lock(self._name, self._run.run_id, self._ttl)
            except Exception:  # a failed renewal must stop the transfer, never pass silently
                log.exception("could not renew the lock on %s", self._name)
                held = False
            if not held:
                log.error("lost the lock on %s", self._name)
                self.lost.set()
                return
