"""The live view of `apply` on a terminal (rich): what a wave is doing, redrawn in place.

One overall bar (transfers done, running, failed, not started; transfers per second, ETA;
messages and bytes exported per second), a header per serial wave, and one line per running
transfer with its current step and that step's progress. Those lines are cut to the terminal's
width, never wrapped, and the view is redrawn as a whole, so the text of two transfers never
shares a line however many forks write at once. Failures are printed in full above the bars
and stay there. Colour follows rich, which
honours `NO_COLOR`; the CLI uses this view only on a terminal that is not `TERM=dumb`, and not
with `-q` or `-v` (plain lines then, as in CI).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from transfer_runner.engine.results import StepResult, TransferResult
from transfer_runner.manifest.model import Transfer
from transfer_runner.shown import log_safe

__all__ = ["LiveView"]

_PROBLEMS = ("failed", "interrupted", "locked")
_STYLE = {"failed": "bold red", "interrupted": "yellow", "locked": "yellow"}


@dataclass
class _Running:
    step: str = "starting"
    progress: str = ""
    since: float = 0.0


class LiveView:
    """A `Reporter` and a progress sink that draw the live view; use it as a context manager
    around the apply (the view is erased at the end, the failures printed stay)."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4.0) -> None:
        self.console = console or Console()
        self._lock = threading.Lock()
        self._total = 0
        self._wave = (1, 1)
        self._running: dict[str, _Running] = {}
        self._finished: Counter[str] = Counter()
        self._began = time.monotonic()
        self._exported: dict[tuple[str, str], tuple[int, int]] = {}
        self._messages = self._bytes = 0
        self._live = Live(
            self, console=self.console, refresh_per_second=refresh_per_second, transient=True
        )

    def __enter__(self) -> LiveView:
        self._began = time.monotonic()
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    # -- the engine's events ------------------------------------------------------------------
    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        with self._lock:
            self._total, self._wave = total, (number, waves)
        if waves > 1:
            self._say(Text(f"WAVE {number}/{waves}: {size} of {total} transfers", style="bold"))

    def transfer_started(self, transfer: Transfer) -> None:
        with self._lock:
            self._running[transfer.name] = _Running(since=time.monotonic())

    def step_started(self, transfer: str, step: str) -> None:
        with self._lock:
            running = self._running.setdefault(transfer, _Running(since=time.monotonic()))
            running.step, running.progress = step, ""

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        if step.status == "failed":
            self._say(
                Text(log_safe(f"failed: [{transfer.name}] {step.name}: {step.message}"), "red")
            )

    def transfer_finished(self, result: TransferResult) -> None:
        with self._lock:
            self._running.pop(result.name, None)
            self._finished[result.status] += 1
        if result.status in ("locked", "interrupted"):
            self._say(
                Text(log_safe(f"{result.status}: [{result.name}] {result.message}"), "yellow")
            )

    def __call__(self, transfer: str, what: str, done: int, total: int, nbytes: int) -> None:
        """Progress of a long step (messages and bytes so far, of `total` messages)."""
        with self._lock:
            before = self._exported.get((transfer, what), (0, 0))
            self._exported[(transfer, what)] = (done, nbytes)
            self._messages += max(0, done - before[0])
            self._bytes += max(0, nbytes - before[1])
            running = self._running.get(transfer)
            if running is not None:
                of = f"/{total:,}" if total else ""
                pct = f" {100 * done / total:.0f}%" if total else ""
                running.progress = f"{done:,}{of} messages{pct}, {nbytes / 1e6:.1f} MB"

    # -- drawing ------------------------------------------------------------------------------
    def _say(self, text: Text) -> None:
        """A line kept above the bars (a failure in full: it may wrap, as one transfer's)."""
        self._live.console.print(text)

    def __rich__(self) -> RenderableType:
        with self._lock:
            return Group(self._overall(), *self._lines())

    def _overall(self) -> RenderableType:
        done = sum(self._finished.values())
        failed = sum(self._finished[s] for s in _PROBLEMS)
        running = len(self._running)
        waiting = max(0, self._total - done - running)
        elapsed = max(time.monotonic() - self._began, 1e-6)
        rate = done / elapsed
        eta = f"eta {int((self._total - done) / rate)}s" if rate and done < self._total else ""
        wave = f"wave {self._wave[0]}/{self._wave[1]}  " if self._wave[1] > 1 else ""
        figures = Text(no_wrap=True, overflow="ellipsis")
        figures.append(f" {done}/{self._total} done  ", style="bold")
        figures.append(f"{running} running  ")
        figures.append(f"{failed} failed  ", style="bold red" if failed else "")
        figures.append(f"{waiting} not started  {wave}{rate * 60:.0f}/min {eta}")
        figures.append(
            f"  {self._messages / elapsed:,.0f} msg/s {self._bytes / elapsed / 1e6:.1f} MB/s"
        )
        grid = Table.grid(expand=False)
        grid.add_column(width=30, no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        grid.add_row(ProgressBar(total=max(self._total, 1), completed=done, width=30), figures)
        return grid

    def _lines(self) -> list[Text]:
        room = max(1, self.console.size.height - 4)
        names = sorted(self._running, key=lambda n: self._running[n].since)
        lines = []
        for name in names[:room]:
            state = self._running[name]
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {name}", style="cyan")
            line.append(f"  {state.step}")
            if state.progress:
                line.append(f"  {state.progress}", style="dim")
            lines.append(line)
        if len(names) > room:
            lines.append(Text(f"  ... and {len(names) - room} more running", style="dim"))
        return lines
