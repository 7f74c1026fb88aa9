"""The injectable clock: `TRANSFER_RUNNER_NOW`, relative dates, and what reads it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from transfer_runner.clock import (
    ENV_VAR,
    SYSTEM_CLOCK,
    FixedClock,
    ShiftedClock,
    clock_from_env,
    parse_instant,
    resolve_relative_date,
    resolve_relative_time,
)
from transfer_runner.errors import ConfigError

NOON = FixedClock(datetime(2031, 7, 15, 12, 0, tzinfo=UTC))


def test_no_variable_means_the_system_clock() -> None:
    assert clock_from_env({}) is SYSTEM_CLOCK
    assert clock_from_env({ENV_VAR: "  "}) is SYSTEM_CLOCK


def test_the_variable_starts_a_running_clock_at_that_instant() -> None:
    clock = clock_from_env({ENV_VAR: "2049-02-28T12:00:00Z"})
    assert isinstance(clock, ShiftedClock)
    first = clock.now()
    assert abs(first - datetime(2049, 2, 28, 12, tzinfo=UTC)) < timedelta(minutes=1)
    assert clock.now() >= first and clock.now().tzinfo is not None


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=f"{ENV_VAR}='next tuesday' is not an ISO 8601"):
        clock_from_env({ENV_VAR: "next tuesday"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00+02:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
        ("2026-11-01 09:30", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_instants_are_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", "2031-07-15"),
        ("today+20d", "2031-08-04"),
        ("today - 200d", "2030-12-27"),
        ("today-0d", "2031-07-15"),
        ("2026-11-01", None),
        ("today+3h", None),  # a day is whole days
        ("tomorrow", None),
        ("now", None),
    ],
)
def test_relative_dates(text: str, expected: str | None) -> None:
    assert resolve_relative_date(text, NOON) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", "2031-07-15T12:00:00+00:00"),
        ("now-2d", "2031-07-13T12:00:00+00:00"),
        ("now+3h", "2031-07-15T15:00:00+00:00"),
        ("now-15m", "2031-07-15T11:45:00+00:00"),
        ("today", None),
        ("now-2w", None),
    ],
)
def test_relative_times(text: str, expected: str | None) -> None:
    assert resolve_relative_time(text, NOON) == expected


def test_relative_dates_cross_a_leap_day() -> None:
    leap = FixedClock(datetime(2028, 2, 28, 23, 59, tzinfo=UTC))
    assert resolve_relative_date("today+1d", leap) == date(2028, 2, 29).isoformat()
