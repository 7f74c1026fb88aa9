"""Run a playbook over transfers: waves, forks, a graceful stop, and the failure budget.

Each transfer runs in a worker thread (`engine.transfer`); the engine never prints: it tells
a `Reporter`. `engine.options`, `engine.reporter` and `engine.waves` hold what a caller
passes in; they are re-exported here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from transfer_runner.engine.options import RunOptions
from transfer_runner.engine.reporter import NullReporter, Reporter
from transfer_runner.engine.results import TransferResult
from transfer_runner.engine.stop import StopNow
from transfer_runner.engine.transfer import run_transfer
from transfer_runner.engine.waves import WaveSize
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.base import ModuleRegistry
from transfer_runner.modules.context import RunContext
from transfer_runner.playbook.loader import Playbook

__all__ = [
    "NullReporter",
    "Reporter",
    "RunOptions",
    "StopNow",
    "WaveSize",
    "not_started",
    "over_budget",
    "run_transfer",
    "run_transfers",
]

log = logging.getLogger(__name__)


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
    results: list[TransferResult] = []
    waves = options.serial.split(transfers) if options.serial else [list(transfers)]
    for number, wave in enumerate(waves):
        reporter.wave_started(number + 1, len(waves), len(wave), len(transfers))
        results.extend(_run_wave(run, playbook, modules, wave, options, reporter, stop))
        if number + 1 < len(waves) and over_budget(results, options.max_fail_percentage):
            rest = [t for later in waves[number + 1 :] for t in later]
            why = f"not started: more than {options.max_fail_percentage:g}% of transfers failed"
            results.extend(not_started(run, t, why) for t in rest)
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
            return not_started(run, transfer, "not started: the run was stopped")
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


def not_started(run: RunContext, transfer: Transfer, why: str) -> TransferResult:
    """The result of a transfer the run never began, recorded as such for `report`."""
    if not run.check_mode:
        run.state.append_event(
            run.run_id,
            transfer.name,
            "transfer_finished",
            {"status": "not_started", "message": why, "path": transfer.path},
        )
    return TransferResult(transfer.name, "not_started", message=why, path=transfer.path)


def over_budget(results: list[TransferResult], max_fail_percentage: float | None) -> bool:
    if max_fail_percentage is None or not results:
        return False
    failed = sum(1 for r in results if r.status == "failed")
    return failed * 100 / len(results) > max_fail_percentage
