"""Console output of `plan` and `apply`: a line per step, progress, and the recap.

Thread-safe (forks print from several threads). On a terminal progress rewrites one line;
otherwise it prints a plain progress line every few seconds, which is what CI logs want.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from transfer_runner.engine.results import (
    TRANSFER_STATUSES,
    RunReport,
    StepResult,
    TransferResult,
)
from transfer_runner.manifest.model import Transfer
from transfer_runner.shown import lines_safe

__all__ = ["ConsoleReporter", "ConsoleProgress", "render_recap", "render_plan", "render_saved_plan"]

_WORD = {"ok": "ok", "changed": "changed", "skipped": "skipping", "failed": "failed"}


class ConsoleReporter:
    """Prints each step as it ends, a header per wave when there are several, and a line of
    the whole run's progress every `overall_every_s` (`-q` prints nothing until the recap)."""

    def __init__(
        self,
        out: TextIO | None = None,
        verbosity: int = 0,
        check_mode: bool = False,
        overall_every_s: float = 10.0,
    ):
        self.out = out or sys.stdout
        self.verbosity = verbosity
        self.check_mode = check_mode
        self.overall_every_s = overall_every_s
        self._lock = threading.Lock()
        self._total, self._wave = 0, (1, 1)
        self._finished: dict[str, int] = {}
        self._began = time.monotonic()
        self._next_overall = self._began + overall_every_s

    def _print(self, text: str) -> None:
        if self.verbosity < 0:
            return
        with self._lock:  # messages quote the platform: no line of them a CI command
            print(lines_safe(text), file=self.out, flush=True)

    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        with self._lock:
            self._total, self._wave = total, (number, waves)
        if waves > 1:
            self._print(f"\nWAVE {number}/{waves}: {size} of {total} transfers")

    def transfer_started(self, transfer: Transfer) -> None:
        self._print(f"\nTRANSFER [{transfer.name}] ({transfer.path})")

    def step_started(self, transfer: str, step: str) -> None:
        return None

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        word = _WORD[step.status]
        if self.check_mode and step.status == "changed":
            word = "would change"
        detail = f" - {step.message}" if step.message else ""
        self._print(f"{word}: [{transfer.name}] {step.name}{detail}")
        if self.verbosity > 0 and step.outputs:
            for key, value in sorted(step.outputs.items()):
                self._print(f"    {key}: {value}")

    def transfer_finished(self, result: TransferResult) -> None:
        self._count(result.status)
        if result.status == "not_started":
            return  # the recap lists them; a stopped wave of thousands prints no line each
        if result.status in ("locked", "interrupted") or (result.message and not result.steps):
            self._print(f"{result.status}: [{result.name}] {result.message}")

    def _count(self, status: str) -> None:
        """Every `overall_every_s`, one line of the whole run's progress (for CI logs)."""
        now = time.monotonic()
        with self._lock:
            self._finished[status] = self._finished.get(status, 0) + 1
            if now < self._next_overall or not self._total:
                return
            self._next_overall = now + self.overall_every_s
            done = sum(self._finished.values())
            failed = sum(self._finished.get(s, 0) for s in ("failed", "interrupted", "locked"))
            elapsed = now - self._began
            eta = (self._total - done) * elapsed / done if done else 0.0
        wave = f" (wave {self._wave[0]}/{self._wave[1]})" if self._wave[1] > 1 else ""
        self._print(
            f"progress: {done}/{self._total} transfers finished, {failed} failed{wave}, "
            f"{elapsed:.0f}s elapsed, eta {eta:.0f}s"
        )


class ConsoleProgress:
    """A ProgressSink that draws progress of long steps."""

    def __init__(self, out: TextIO | None = None, interval_s: float = 5.0, quiet: bool = False):
        self.out = out or sys.stderr
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.interval_s = 0.2 if self.tty else interval_s
        self.quiet = quiet
        self._last: dict[tuple[str, str], float] = {}
        self._started: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, transfer: str, what: str, done: int, total: int, nbytes: int) -> None:
        if self.quiet:
            return
        key, now = (transfer, what), time.monotonic()
        with self._lock:
            start = self._started.setdefault(key, now)
            finished = total and done >= total
            if not finished and now - self._last.setdefault(key, now) < self.interval_s:
                return
            self._last[key] = now
            line = _progress_line(transfer, what, done, total, nbytes, now - start)
            end = "\r" if self.tty and not finished else "\n"
            print(line, end=end, file=self.out, flush=True)


def _progress_line(
    transfer: str, what: str, done: int, total: int, nbytes: int, secs: float
) -> str:
    rate = done / secs if secs > 0 else 0.0
    mb = nbytes / 1e6
    of = f"/{total}" if total else ""
    pct = f" {100 * done / total:5.1f}%" if total else ""
    eta = f" eta {int((total - done) / rate)}s" if total and rate and done < total else ""
    return f"[{transfer}] {what}: {done}{of} messages{pct}, {mb:.1f} MB, {rate:.0f} msg/s{eta}"


def render_recap(report: RunReport) -> str:
    """`NAME : ok=N changed=N failed=N skipped=N` per transfer, then the totals."""
    if not report.transfers:
        return "RECAP: no transfers selected"
    width = max(len(t.name) for t in report.transfers)
    lines = ["", "RECAP " + "*" * 60]
    for t in report.transfers:
        c = t.counts
        lines.append(
            f"{t.name:<{width}} : ok={c['ok']} changed={c['changed']} failed={c['failed']} "
            f"skipped={c['skipped']}  [{t.status}]"
        )
        if t.status in ("failed", "locked", "interrupted") and t.message:
            lines.append(f"{'':<{width}}   {t.message}")
    tot = report.totals
    lines.append(
        f"run {report.run_id}: {tot['transfers']} transfers, "
        + ", ".join(
            f"{tot['transfers_' + s]} {s}" for s in TRANSFER_STATUSES if tot["transfers_" + s]
        )
    )
    return lines_safe("\n".join(lines))


def render_saved_plan(doc: dict[str, Any], path: str) -> str:
    """A plan saved by `plan --out` as it was saved: per transfer, its status and actions."""
    lines = [f"saved plan {path} (run {doc.get('run_id')}, made {doc.get('created_at')})"]
    for entry in doc["transfers"]:
        lines.append(f"\n{entry['name']} ({entry['path']}): {entry['status']}")
        lines += [f"  ~ {action}" for action in entry.get("actions", ())]
    return lines_safe("\n".join(lines))


def render_plan(report: RunReport) -> str:
    """Per transfer, what would change and how (the plan's body)."""
    lines: list[str] = []
    for t in report.transfers:
        lines.append(f"\n{t.name} ({t.path}): {t.status}")
        if t.message and t.status == "failed":
            lines.append(f"  ! {t.message}")
        for s in t.steps:
            if s.status == "changed":
                for action in s.actions:
                    lines.append(f"  ~ {action}")
            elif s.status == "failed":
                lines.append(f"  ! {s.name}: {s.message}")
    return lines_safe("\n".join(lines))
