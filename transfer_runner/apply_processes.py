"""`apply --procs N`: the selected transfers run in N worker processes, each with its forks.

One process can use about one core (the GIL), and a wave at many forks is CPU-bound long
before it is latency-bound. The parent keeps what is one per run: the preflight, the run's
record, the waves and their failure budget, the stop, the recap and the reports. Each worker
opens its own platform and state store, builds the run's context (the same run id, business
day, export destination and lease lifetime) and runs its share of each wave with `forks`
threads, through `engine.runner.run_transfers` as one process does; every transfer still takes
its own lease. What a worker's reporter and progress sink are told comes back to the parent
over a queue, in order, and its results come back as the answer to its batch.

Signals: a worker ignores SIGINT and SIGTERM, and the parent's stop reaches it as an event, so
a Ctrl-C on a terminal (which signals the whole process group) counts once: running steps
finish, nothing new starts. When the parent stops at once (a second signal, or the grace period
over) it kills the workers, as a crash would; their leases name processes that are gone, and
the next run on this machine takes them over at once. A worker that dies fails the transfers
that had not finished (the pool stops every worker with it, as a crash of one process would);
a worker whose parent is gone stops gracefully.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from multiprocessing.util import Finalize
from typing import Any

from transfer_runner.command_types import BulkOptions
from transfer_runner.config import Settings
from transfer_runner.engine.options import RunOptions
from transfer_runner.engine.reporter import Reporter
from transfer_runner.engine.results import StepResult, TransferResult
from transfer_runner.engine.stop import StopNow
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.context import ProgressSink, RunContext
from transfer_runner.s3_client import S3Settings

__all__ = ["WorkerSetup", "auto_procs", "run_in_processes", "worker_bulk"]

_DONE = "done"


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to build the run's context (picklable; no secret: those come from
    the environment, which workers inherit)."""

    settings: Settings
    bulk: BulkOptions  # the platform throttle already divided between the workers
    run_id: str
    today: date
    export: S3Settings | None
    git_commit: str | None
    hook: Callable[[], object] | None = None  # installs the tests' points (the parent has them)


def auto_procs(transfers: int, forks: int) -> int:
    """`--procs auto`: one process per usable core, but no more than keeps `forks`
    transfers running in each."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, math.ceil(transfers / max(1, forks))))


def worker_bulk(bulk: BulkOptions, procs: int) -> BulkOptions:
    """Each worker's share of the platform throttle, so that all of them keep the limits."""
    rate = bulk.max_platform_calls_per_second
    concurrency = bulk.max_platform_concurrency
    return dataclasses.replace(
        bulk,
        max_platform_calls_per_second=rate / procs if rate else None,
        max_platform_concurrency=max(1, concurrency // procs) if concurrency else None,
    )


def run_in_processes(
    setup: WorkerSetup,
    transfers: Sequence[Transfer],
    options: RunOptions,
    procs: int,
    reporter: Reporter,
    progress: ProgressSink,
    stop: threading.Event,
    not_started: Callable[[Transfer, str], TransferResult],
) -> list[TransferResult]:
    """Run `transfers` wave by wave in `procs` processes; results in the order given.

    Waves and the failure budget are the parent's (as `engine.runner.run_transfers`);
    `not_started` records a transfer the run never began."""
    from transfer_runner.engine.runner import over_budget

    context = multiprocessing.get_context("forkserver")
    events = context.Queue()
    stopping = context.Event()
    results: list[TransferResult] = []
    waves = options.serial.split(transfers) if options.serial else [list(transfers)]
    in_worker = dataclasses.replace(options, serial=None, max_fail_percentage=None)
    pool = ProcessPoolExecutor(procs, context, initializer=_start_worker,
                               initargs=(setup, events, stopping))  # fmt: skip
    relay = _Relay(events, reporter, progress)
    relay.start()
    try:
        for number, wave in enumerate(waves):
            if stop.is_set():
                results += [not_started(t, "not started: the run was stopped") for t in wave]
                continue
            reporter.wave_started(number + 1, len(waves), len(wave), len(transfers))
            results += _run_wave(pool, wave, in_worker, procs, relay, stop, stopping)
            if number + 1 < len(waves) and over_budget(results, options.max_fail_percentage):
                rest = [t for later in waves[number + 1 :] for t in later]
                why = f"not started: more than {options.max_fail_percentage:g}% of transfers failed"
                results += [not_started(t, why) for t in rest]
                break
    except BaseException:
        _kill(pool)
        raise
    finally:
        relay.stop()
    if not getattr(pool, "_broken", False):
        pool.shutdown(wait=True)
    return results


def _run_wave(
    pool: ProcessPoolExecutor,
    wave: list[Transfer],
    options: RunOptions,
    procs: int,
    relay: _Relay,
    stop: threading.Event,
    stopping: Any,
) -> list[TransferResult]:
    """One wave: a batch per worker (every procs-th transfer, so slow and fast mix)."""
    batches = [wave[i::procs] for i in range(procs) if wave[i::procs]]
    futures: list[Future[list[TransferResult]]] = []
    for number, batch in enumerate(batches):
        relay.expect(number)
        lean = [dataclasses.replace(t, positions=None) for t in batch]
        futures.append(pool.submit(_run_batch, number, lean, options))
    workers = list(getattr(pool, "_processes", None) or {})
    died = _wait(futures, stop, stopping, options.grace_s, workers)
    by_name: dict[str, TransferResult] = {}
    for number, (batch, future) in enumerate(zip(batches, futures, strict=True)):
        try:
            if died:
                raise BrokenProcessPool(f"worker process {died} died")
            found = future.result()
            relay.wait_done(number)
        except BrokenProcessPool:  # a worker died: the others must go too (as after a crash)
            _kill(pool)  # they ignore SIGTERM, which is what the pool would send them
            found = [relay.finished.get(t.name) or _died(t) for t in batch]
        by_name.update((r.name, r) for r in found)
    return [by_name[t.name] for t in wave]


def _died(transfer: Transfer) -> TransferResult:
    message = (
        "a worker process died before the transfer finished (the pool stopped every worker "
        "with it); apply again to resume"
    )
    return TransferResult(transfer.name, "failed", message=message, path=transfer.path)


def _wait(
    futures: list[Future[list[TransferResult]]],
    stop: threading.Event,
    stopping: Any,
    grace_s: float | None,
    workers: list[int],
) -> int | None:
    """Wait for the batches; once `stop` is set, tell the workers and allow `grace_s`.
    Returns the pid of a worker found dead (the pool's own watch missed some), else None."""
    pending: set[Future[list[TransferResult]]] = set(futures)
    deadline: float | None = None
    while pending:
        gone = next((pid for pid in workers if not _alive(pid)), None)
        if gone is not None:
            return gone
        if stop.is_set() and deadline is None:
            stopping.set()
            deadline = time.monotonic() + (grace_s if grace_s is not None else float("inf"))
        if deadline is not None and time.monotonic() >= deadline:
            raise StopNow(f"the grace period of {grace_s:g} s is over")
        try:
            _, pending = wait(pending, timeout=0.2)
        except KeyboardInterrupt as exc:
            if stop.is_set():
                raise StopNow("interrupted again") from exc
            stop.set()
    return None


def _alive(pid: int) -> bool:
    """Whether process `pid` still exists (the forkserver reaps a worker as it ends)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - our own children
        return True
    return True


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop every worker at once (as a crash would) and forget the pool."""
    processes = dict(getattr(pool, "_processes", None) or {})
    for process in processes.values():
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


class _Relay(threading.Thread):
    """Hands what the workers' reporters and progress sinks say to the parent's, in order."""

    def __init__(self, events: Any, reporter: Reporter, progress: ProgressSink) -> None:
        super().__init__(name="procs-relay", daemon=True)
        self._events, self._reporter, self._progress = events, reporter, progress
        self._done: dict[int, threading.Event] = {}
        self.finished: dict[str, TransferResult] = {}

    def expect(self, batch: int) -> None:
        self._done[batch] = threading.Event()

    def wait_done(self, batch: int) -> None:
        """Until everything batch `batch` reported has been handed on."""
        self._done[batch].wait()

    def stop(self) -> None:
        self._events.put(None)
        self.join(timeout=10)

    def run(self) -> None:
        while (event := self._events.get()) is not None:
            kind, payload = event
            if kind == _DONE:
                self._done[payload].set()
            elif kind == "started":
                self._reporter.transfer_started(payload)
            elif kind == "step":
                self._reporter.step_finished(*payload)
            elif kind == "step-started":
                self._reporter.step_started(*payload)
            elif kind == "finished":
                self.finished[payload.name] = payload
                self._reporter.transfer_finished(payload)
            elif kind == "progress":
                self._progress(*payload)


# -- the worker's side ---------------------------------------------------------------------
_worker: dict[str, Any] = {}


class _QueueReporter:
    """A worker's reporter: everything goes to the parent's relay."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        return None  # the parent runs the waves and says so itself

    def transfer_started(self, transfer: Transfer) -> None:
        self._events.put(("started", dataclasses.replace(transfer, positions=None)))

    def step_started(self, transfer: str, step: str) -> None:
        self._events.put(("step-started", (transfer, step)))

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        self._events.put(("step", (dataclasses.replace(transfer, positions=None), step)))

    def transfer_finished(self, result: TransferResult) -> None:
        self._events.put(("finished", result))


def _start_worker(setup: WorkerSetup, events: Any, stopping: Any) -> None:
    """A worker's initializer: ignore signals (the parent decides), open the platform and the
    state, build the run's context, and bridge the parent's stop to a local event."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if setup.hook is not None:
        setup.hook()
    from transfer_runner.clock import clock_from_env
    from transfer_runner.modules.registry import load_modules
    from transfer_runner.playbook.loader import load_playbook
    from transfer_runner.sessions import session

    stack = ExitStack()
    platform, state = stack.enter_context(session(setup.settings, read_only=False,
                                                  bulk=setup.bulk))  # fmt: skip
    Finalize(None, stack.close, exitpriority=10)  # a pool's worker ends without atexit
    modules = load_modules()

    def progress(transfer: str, what: str, done: int, total: int, nbytes: int) -> None:
        events.put(("progress", (transfer, what, done, total, nbytes)))

    stop = threading.Event()

    parent = os.getppid()

    def bridge() -> None:
        """The parent's stop, or the parent gone (then nobody waits for new work): stop."""
        while not stopping.wait(1.0) and os.getppid() == parent:
            pass
        stop.set()

    threading.Thread(target=bridge, name="procs-stop", daemon=True).start()
    _worker.update(
        stack=stack,
        events=events,
        stop=stop,
        modules=modules,
        playbook=load_playbook(setup.settings.playbook, modules),
        run=RunContext(
            run_id=setup.run_id, platform=platform, state=state, check_mode=False,
            today=setup.today, clock=clock_from_env(), export=setup.export,
            progress=progress, lock_ttl_s=setup.bulk.lock_ttl_s, git_commit=setup.git_commit,
        ),
    )  # fmt: skip


def _run_batch(number: int, batch: list[Transfer], options: RunOptions) -> list[TransferResult]:
    """Run one batch in this worker; the relay hears `done` after everything it reported."""
    from transfer_runner.engine.runner import run_transfers

    work = _worker
    try:
        return run_transfers(work["run"], work["playbook"], work["modules"], batch, options,
                             _QueueReporter(work["events"]), work["stop"])  # fmt: skip
    finally:
        work["events"].put((_DONE, number))
