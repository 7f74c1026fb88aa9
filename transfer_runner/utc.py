"""Times as the runner writes and reads them: always timezone-aware UTC.

`iso_z` is ISO 8601 with a `Z` (reports, receipts, export indexes); `fixed_utc` is its
fixed-width form, microseconds always present, so that string order is time order (the state
stores sort by it) and a naive time is refused; `parse_utc` reads either back.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["as_utc", "fixed_utc", "iso_z", "parse_utc", "seconds_between"]


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`; a naive time is taken to be UTC."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def fixed_utc(moment: datetime) -> str:
    """`2026-11-18T09:30:00.000000Z`: fixed width, so string order is time order; a naive
    time is refused (ValueError), as the state stores never guess a zone."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: state times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """The aware UTC datetime that `iso_z` or `fixed_utc` wrote."""
    return datetime.fromisoformat(text).astimezone(UTC)


def seconds_between(start: datetime | None, end: datetime | None) -> float:
    """Seconds from `start` to `end`; 0.0 when either is unknown."""
    if start is None or end is None:
        return 0.0
    return (end - start).total_seconds()
