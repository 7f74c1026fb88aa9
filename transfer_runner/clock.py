"""Time as an input: the clock that business dates are read from.

Billing days, ticket ages, the sandbox's fixture dates and its record times depend on "now".
They read it from a `Clock`, never from `datetime.now`, so tests and rehearsals can set it:
`TRANSFER_RUNNER_NOW=2031-07-15T12:00:00Z` makes the runner's (and the sandbox's) clock start
at that instant and run on from there. Leases, S3 request signing and run ids keep the real
clock: they must agree with other machines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from transfer_runner.errors import ConfigError

__all__ = [
    "ENV_VAR",
    "Clock",
    "SystemClock",
    "ShiftedClock",
    "FixedClock",
    "SYSTEM_CLOCK",
    "clock_from_env",
    "parse_instant",
    "resolve_relative_date",
    "resolve_relative_time",
    "today",
]

ENV_VAR = "TRANSFER_RUNNER_NOW"

_RELATIVE = re.compile(
    r"^(?P<base>today|now)\s*(?:(?P<sign>[+-])\s*(?P<n>[0-9]{1,6})(?P<unit>[dhm]))?$"
)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class Clock(Protocol):
    """Tells the current time, timezone-aware UTC."""

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class ShiftedClock:
    """The machine's clock moved by a fixed offset: it runs, starting wherever it was set."""

    offset: timedelta

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(frozen=True)
class FixedClock:
    """A clock that always tells the same instant (unit tests)."""

    at: datetime

    def now(self) -> datetime:
        return self.at


SYSTEM_CLOCK = SystemClock()


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time as UTC (a date is its midnight; naive times are UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """`ShiftedClock` starting at `TRANSFER_RUNNER_NOW` if it is set, else the system clock.

    ConfigError names the variable when its value is not an ISO 8601 instant.
    """
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not value:
        return SYSTEM_CLOCK
    try:
        start = parse_instant(value)
    except ValueError as exc:
        raise ConfigError(
            f"{ENV_VAR}={value!r} is not an ISO 8601 time such as 2031-07-15T12:00:00Z"
        ) from exc
    return ShiftedClock(start - datetime.now(UTC))


def _relative(text: str, base: str) -> timedelta | None:
    match = _RELATIVE.match(text.strip())
    if match is None or match["base"] != base:
        return None
    if match["n"] is None:
        return timedelta(0)
    amount = int(match["n"]) * (-1 if match["sign"] == "-" else 1)
    return timedelta(**{_UNITS[match["unit"]]: amount})


def resolve_relative_date(text: str, clock: Clock) -> str | None:
    """`today`, `today+30d` or `today-10d` as `YYYY-MM-DD` on `clock`; None for anything else."""
    shift = _relative(text, "today")
    if shift is None or shift % timedelta(days=1):
        return None
    return (clock.now().date() + shift).isoformat()


def resolve_relative_time(text: str, clock: Clock) -> str | None:
    """`now`, `now-2d`, `now+3h` or `now-15m` as an ISO instant on `clock`; None otherwise."""
    shift = _relative(text, "now")
    if shift is None:
        return None
    return (clock.now() + shift).isoformat()


def today(clock: Clock) -> date:
    """The clock's current UTC date."""
    return clock.now().date()
