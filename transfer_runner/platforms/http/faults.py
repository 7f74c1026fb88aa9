"""Fault injection for `sandbox serve`: latency, and a seeded share of failed requests.

A `FaultPlan` decides, per request, whether it fails and how: `429` (with `Retry-After`) and
`503` reply without doing anything, `reset` drops the connection without doing anything, and
`lost-ack` performs a write and then drops the connection, so the client never learns that it
succeeded (on reads it falls back to `reset`). The draws come from one `random.Random(seed)`
behind a lock, so a run with the same seed and the same request order fails the same requests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable

from transfer_runner.errors import ConfigError

__all__ = ["FAULT_KINDS", "FaultPlan", "parse_fault_kinds"]

FAULT_KINDS: tuple[str, ...] = ("429", "503", "reset", "lost-ack")


def parse_fault_kinds(text: str) -> tuple[str, ...]:
    """`"429,reset"` -> `("429", "reset")`; ConfigError for an unknown or empty list."""
    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"--faults must be a comma-separated list of {', '.join(FAULT_KINDS)}, not {text!r}"
        )
    return kinds


class FaultPlan:
    """What to inject: `FaultPlan(latency_ms=20, fail_rate=0.1, kinds=("429",), seed=1)`.

    Thread-safe; `injected` counts the faults drawn so far by kind.
    """

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        fail_rate: float = 0.0,
        kinds: Iterable[str] = FAULT_KINDS,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        self.latency_ms = _check_range("--latency", latency_ms, 0.0, 3_600_000.0)
        self.fail_rate = _check_range("--fail-rate", fail_rate, 0.0, 1.0)
        self.kinds = parse_fault_kinds(",".join(kinds))
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            detail = f"a whole number of seconds >= 0, not {retry_after!r}"
            raise ConfigError(f"--retry-after must be {detail}")
        self.retry_after = retry_after
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"FaultPlan(latency_ms={self.latency_ms}, fail_rate={self.fail_rate}, "
            f"kinds={self.kinds}, retry_after={self.retry_after}, seed={self.seed})"
        )

    def delay(self) -> None:
        """Sleep the configured latency (before every request but the health check)."""
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)

    def draw(self, *, write: bool) -> str | None:
        """The fault for this request, or None; `lost-ack` becomes `reset` for a read."""
        if self.fail_rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.fail_rate:
                return None
            kind = self._rng.choice(self.kinds)
            if kind == "lost-ack" and not write:
                kind = "reset"
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


def _check_range(option: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{option} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)
