"""How the engine tells what happens (it never prints): a `Reporter` gets each wave's start,
each transfer's start, each step's start and result, and each transfer's result."""

from __future__ import annotations

from typing import Protocol

from transfer_runner.engine.results import StepResult, TransferResult
from transfer_runner.manifest.model import Transfer

__all__ = ["NullReporter", "Reporter"]


class Reporter(Protocol):
    """Receives the engine's events (console output, progress)."""

    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        """Wave `number` (1-based) of `waves` starts with `size` of the `total` transfers."""
        ...

    def transfer_started(self, transfer: Transfer) -> None: ...

    def step_started(self, transfer: str, step: str) -> None:
        """Transfer `transfer` starts its step named `step` (names only: cheap to relay)."""
        ...

    def step_finished(self, transfer: Transfer, step: StepResult) -> None: ...

    def transfer_finished(self, result: TransferResult) -> None: ...


class NullReporter:
    """A reporter that ignores everything."""

    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        return None

    def transfer_started(self, transfer: Transfer) -> None:
        return None

    def step_started(self, transfer: str, step: str) -> None:
        return None

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        return None

    def transfer_finished(self, result: TransferResult) -> None:
        return None
