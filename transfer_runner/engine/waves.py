"""Waves (`apply --serial N|N%`): the selected transfers in batches that run one after
another, so that a failure budget (`--max-fail-percentage`) can stop the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from transfer_runner.errors import ConfigError

__all__ = ["WaveSize"]

T = TypeVar("T")


@dataclass(frozen=True)
class WaveSize:
    """How many transfers a wave holds: `count` of them, or `percent` of all (at least 1)."""

    count: int | None = None
    percent: int | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.percent is None):
            raise ConfigError("a wave size is a number of transfers or a percentage, not both")
        value = self.count if self.count is not None else self.percent
        if value is None or value < 1 or (self.percent is not None and self.percent > 100):
            raise ConfigError("a wave size is at least 1 transfer, or 1% to 100% of them")

    @classmethod
    def parse(cls, text: str) -> WaveSize:
        """`"10"` (transfers) or `"10%"` (of the selected transfers); ConfigError otherwise."""
        cleaned = text.strip()
        digits = cleaned[:-1] if cleaned.endswith("%") else cleaned
        if not digits.isdigit():
            raise ConfigError(f"{text!r}: a number of transfers (10) or a percentage (10%)")
        number = int(digits)
        return cls(percent=number) if cleaned.endswith("%") else cls(count=number)

    def split(self, items: Sequence[T]) -> list[list[T]]:
        """`items` in consecutive waves of this size (one empty wave for no items)."""
        if not items:
            return [[]]
        if self.percent is not None:
            size = max(1, len(items) * self.percent // 100)
        else:
            size = self.count or 1
        return [list(items[i : i + size]) for i in range(0, len(items), size)]

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)
