"""How the engine tells what happens (it never prints): a `Reporter` gets each transfer's
start, each step's result and each transfer's result."""

from __future__ import annotations

from typing import Protocol

from transfer_runner.engine.results import StepResult, TransferResult
from transfer_runner.manifest.model import Transfer

__all__ = ["NullReporter", "Reporter"]


class Reporter(Protocol):
    """Receives the engine's events (console output, progress)."""

    def transfer_started(self, transfer: Transfer) -> None: ...

    def step_finished(self, transfer: Transfer, step: StepResult) -> None: ...

    def transfer_finished(self, result: TransferResult) -> None: ...


class NullReporter:
    """A reporter that ignores everything."""

    def transfer_started(self, transfer: Transfer) -> None:
        return None

    def step_finished(self, transfer: Transfer, step: StepResult) -> None:
        return None

    def transfer_finished(self, result: TransferResult) -> None:
        return None
