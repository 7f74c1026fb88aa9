"""Pacing a mail flow: how much is due at a moment and how long to sleep (`Pace`), what a
flow did (`FlowTotals`), and a flow running in a daemon thread (`FlowThread`)."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Protocol

__all__ = ["BATCH", "Flow", "FlowThread", "FlowTotals", "Pace"]

_log = logging.getLogger("transfer_runner.platforms.sandbox.mailflow")
BATCH = 100  # most messages a flow hands to one deliver or expire call
_MAX_WAIT_S = 0.5  # longest `run` sleeps between two looks at the stop event and the clock

_MIN_WAIT_S = 0.001


class Flow(Protocol):
    """What `FlowThread` runs (`MailFlow`)."""

    def run(
        self,
        stop: threading.Event,
        deliver_per_second: float,
        expire_per_second: float,
        duration_s: float | None = None,
    ) -> FlowTotals: ...


@dataclass(frozen=True)
class FlowTotals:
    """What a flow did. `delivered + held_back` are the new messages; `released` are earlier
    held-back ones that reached an account."""

    delivered: int = 0
    held_back: int = 0
    released: int = 0
    expired: int = 0

    def __add__(self, other: FlowTotals) -> FlowTotals:
        return FlowTotals(
            self.delivered + other.delivered,
            self.held_back + other.held_back,
            self.released + other.released,
            self.expired + other.expired,
        )

    def summary(self) -> str:
        """One line: `delivered 10, held back 2, released 1, expired 4`."""
        return (
            f"delivered {self.delivered}, held back {self.held_back}, "
            f"released {self.released}, expired {self.expired}"
        )


@dataclass
class Pace:
    """The bookkeeping of `MailFlow.run`: how much is due at a moment, how long to sleep."""

    started: float
    deliver_rate: float
    expire_rate: float
    duration_s: float | None
    delivered: int = 0
    expired: int = 0

    def elapsed(self, now: float) -> float:
        elapsed = now - self.started
        return elapsed if self.duration_s is None else min(elapsed, self.duration_s)

    def due(self, elapsed: float) -> tuple[int, int]:
        deliver = int(self.deliver_rate * elapsed) - self.delivered
        expire = int(self.expire_rate * elapsed) - self.expired
        return min(deliver, BATCH), min(expire, BATCH)

    def done(self, delivered: int, expired: int) -> None:
        self.delivered += delivered
        self.expired += expired

    def caught_up(self, elapsed: float) -> bool:
        return self.due(elapsed) == (0, 0)

    def finished(self, elapsed: float) -> bool:
        return self.duration_s is not None and elapsed >= self.duration_s

    def wait(self, elapsed: float, now: float) -> float:
        """Seconds until the next message is due (0 while behind), at most `_MAX_WAIT_S`."""
        if not self.caught_up(elapsed):
            return 0.0
        moments = [self.duration_s] if self.duration_s is not None else []
        for rate, count in ((self.deliver_rate, self.delivered), (self.expire_rate, self.expired)):
            if rate > 0:
                moments.append((count + 1) / rate)
        ahead = min(moments, default=math.inf) - (now - self.started)
        # at least a millisecond: rate * elapsed may round just below the next whole message
        return min(max(ahead, _MIN_WAIT_S), _MAX_WAIT_S)


class FlowThread:
    """`MailFlow.run` in a daemon thread: `start()`, then `stop()` returns its totals."""

    def __init__(
        self,
        flow: Flow,
        deliver_per_second: float,
        expire_per_second: float,
        duration_s: float | None = None,
    ) -> None:
        self.flow = flow
        self._rates = (deliver_per_second, expire_per_second)
        self._duration_s = duration_s
        self._stop = threading.Event()
        # Waited on instead of Thread.join: a Ctrl-C or SIGTERM raised inside join() on Python
        # 3.11 can leave the thread marked as finished while it still runs (its totals lost).
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name="mail-flow", daemon=True)
        self._totals = FlowTotals()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start the flow (once)."""
        self._thread.start()

    def is_alive(self) -> bool:
        """True until the flow ends (its duration passed, it was stopped, or it failed)."""
        return self._thread.ident is not None and not self._done.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the flow to end, at most `timeout` seconds; whether it has ended."""
        return self._done.wait(timeout)

    def stop(self) -> FlowTotals:
        """Stop the flow, wait for it, and return its totals (or raise the error it met)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._done.wait()
        if self._error is not None:
            raise self._error
        return self._totals

    def _main(self) -> None:
        try:
            self._totals = self.flow.run(self._stop, *self._rates, self._duration_s)
        except Exception as exc:  # handed to whoever calls stop(); logged now for a server
            _log.error("the mail flow stopped: %s", exc)
            self._error = exc
        finally:
            self._done.set()
