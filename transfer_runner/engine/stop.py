"""`StopNow`: how a run is stopped at once (its own module, so the CLI and the signal handling
can name it without importing the engine)."""

from __future__ import annotations

__all__ = ["StopNow"]


class StopNow(KeyboardInterrupt):
    """A second interrupt, or the grace period over: stop at once, mid-step (like a crash)."""
