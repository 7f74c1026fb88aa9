"""Graceful stop of `apply`: the first SIGINT or SIGTERM asks the run to stop, the second
stops it at once.

The first signal only sets an event: the engine starts no new step or transfer, lets the
running steps finish (within the grace period) and records them, and every lease is
released; the command then prints its recap and writes the retry file. A second signal
raises `StopNow` in the main thread, which ends the process without waiting (like a crash,
which the next run resumes from).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from transfer_runner.engine.stop import StopNow

__all__ = ["GracefulStop", "graceful_stop", "DEFAULT_GRACE_S"]

DEFAULT_GRACE_S = 25.0  # below the 30 s most schedulers (Kubernetes, ECS) wait before SIGKILL
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """The stop event the engine watches, and the signal that set it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (130, 143)."""
        return 128 + (self.signum or signal.SIGINT)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler: the first signal sets the event, the second raises StopNow."""
        if self.event.is_set():
            raise StopNow(f"{signal.Signals(signum).name} again")
        self.signum = signum
        self.event.set()
        print(
            f"\n{self.signal_name}: stopping - no new step starts, running steps finish and "
            "are recorded (send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )


@contextmanager
def graceful_stop() -> Iterator[GracefulStop]:
    """Handle SIGINT and SIGTERM as a graceful stop while the block runs (main thread only)."""
    stop = GracefulStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, stop.handle) for signum in _SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
