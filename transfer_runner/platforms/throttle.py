"""A throttle shared by every worker of a run: at most N calls at once and R calls a second.

It wraps any Platform, so the steps and the adapters know nothing of it. The rate is a token
bucket (bursts up to one second's worth), the concurrency a semaphore.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ThrottledPlatform", "RateLimiter"]


class RateLimiter:
    """A thread-safe token bucket: `acquire()` waits until a call may start."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("the rate must be positive")
        self.rate, self._clock = per_second, clock
        self._tokens, self._last = per_second, clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


class ThrottledPlatform:
    """Delegates every platform call, at most `concurrency` at once and `per_second` a second."""

    def __init__(self, inner: Any, *, per_second: float | None = None,
                 concurrency: int | None = None) -> None:  # fmt: skip
        self._inner = inner
        self._limiter = RateLimiter(per_second) if per_second else None
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name == "close":
            return attr

        def throttled(*args: Any, **kwargs: Any) -> Any:
            if self._limiter is not None:
                self._limiter.acquire()
            if self._slots is None:
                return attr(*args, **kwargs)
            with self._slots:
                return attr(*args, **kwargs)

        return throttled
