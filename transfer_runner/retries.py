"""The one retry policy of the runner's own retries (botocore retries its requests itself).

Used by the S3 exports (409 conflicts), the S3 state store (conditional-write conflicts) and the
HTTP platform transport: at most `attempts` tries in all, and before retry n a full-jitter
exponential backoff, a random wait in [0, min(max_delay_s, base_delay_s * 2**(n-1))].
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from transfer_runner.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "retry"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again. `base_delay_s=0` turns backoff off (tests)."""

    attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"retries: at least 1 attempt is needed, not {self.attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ConfigError("retries: backoff times must not be negative")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based: after the first failure)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** min(retry - 1, 62))
        return (rng or _RANDOM).uniform(0.0, ceiling)


_RANDOM = random.Random()  # jitter, not cryptography


def retry(
    action: Callable[[], T],
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`action()`, tried again after an exception that `retryable` accepts, at most
    `policy.attempts` times in all; the last exception (or any other) propagates."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == policy.attempts or not retryable(exc):
                raise
            pause = policy.delay(attempt)
            log.debug(
                "attempt %d of %d failed (%s: %s); again in %.2f s",
                attempt, policy.attempts, type(exc).__name__, exc, pause,
            )  # fmt: skip
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
