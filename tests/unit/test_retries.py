"""The one retry policy: bounded attempts, full-jitter backoff, only what is retryable."""

from __future__ import annotations

import random

import pytest

from transfer_runner.errors import ConfigError
from transfer_runner.retries import RetryPolicy, retry


class Flaky(Exception):
    pass


def test_a_retryable_failure_is_tried_again_until_it_succeeds() -> None:
    calls, sleeps = [], []

    def action() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky
        return "done"

    policy = RetryPolicy(attempts=5, base_delay_s=0.1, max_delay_s=1.0)
    assert retry(action, policy, lambda e: isinstance(e, Flaky), sleep=sleeps.append) == "done"
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


def test_attempts_are_bounded_and_the_last_failure_propagates() -> None:
    calls: list[int] = []

    def action() -> None:
        calls.append(1)
        raise Flaky(len(calls))

    with pytest.raises(Flaky) as caught:
        retry(action, RetryPolicy(attempts=4), lambda e: True, sleep=lambda s: None)
    assert len(calls) == 4 and caught.value.args == (4,)


def test_what_is_not_retryable_propagates_at_once() -> None:
    calls: list[int] = []

    def action() -> None:
        calls.append(1)
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        retry(action, RetryPolicy(attempts=6), lambda e: isinstance(e, Flaky), sleep=print)
    assert len(calls) == 1


def test_delays_are_full_jitter_under_a_doubling_capped_ceiling() -> None:
    policy, rng = RetryPolicy(base_delay_s=0.2, max_delay_s=1.0), random.Random(3)
    for n in range(1, 8):
        ceiling = min(1.0, 0.2 * 2 ** (n - 1))
        assert all(0 <= policy.delay(n, rng) <= ceiling for _ in range(100))
    assert RetryPolicy(base_delay_s=0).delay(5) == 0


@pytest.mark.parametrize(
    "kw", [{"attempts": 0}, {"base_delay_s": -1.0}, {"max_delay_s": -0.5}], ids=str
)
def test_a_policy_that_cannot_work_is_a_config_error(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="retries"):
        RetryPolicy(**kw)  # type: ignore[arg-type]
