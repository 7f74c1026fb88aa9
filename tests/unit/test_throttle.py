"""The shared platform throttle bounds concurrency and rate."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from transfer_runner.platforms.throttle import RateLimiter, ThrottledPlatform


class Slow:
    def __init__(self) -> None:
        self.active = self.peak = self.calls = 0
        self.lock = threading.Lock()

    def get_account(self, account_id: str) -> str:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1
        return account_id


def test_concurrency_is_bounded() -> None:
    inner = Slow()
    platform = ThrottledPlatform(inner, concurrency=3)
    with ThreadPoolExecutor(16) as pool:
        ids = [str(i) for i in range(60)]
        assert list(pool.map(platform.get_account, ids)) == ids
    assert inner.peak <= 3 and inner.calls == 60


def test_rate_is_bounded_with_a_fake_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0])
    started = 0
    for _ in range(10):  # one second's burst
        limiter.acquire()
        started += 1
    assert started == 10
    now[0] += 0.5  # half a second later: five more tokens
    for _ in range(5):
        limiter.acquire()


def test_attributes_pass_through() -> None:
    inner = Slow()
    assert ThrottledPlatform(inner).get_account("A-1") == "A-1"
