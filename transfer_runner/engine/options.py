"""`RunOptions`: how a run goes (forks, tags, waves and their failure budget, stop). The lease's
lifetime is the run's (`RunContext.lock_ttl_s`)."""

from __future__ import annotations

from dataclasses import dataclass

from transfer_runner.engine.planned import Planned
from transfer_runner.engine.waves import WaveSize

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """How to run: forks, tag filter, lock lease, waves and their failure budget."""

    forks: int = 1
    tags: frozenset[str] = frozenset()
    owner: str = ""
    serial: WaveSize | None = None  # wave size: 10 transfers, or 10% of them
    max_fail_percentage: float | None = None  # stop starting waves above this
    recheck: bool = False  # check completed transfers against the platform again
    grace_s: float | None = None  # after a stop, how long running steps may take to finish
    refresh: bool = False  # plan: read the platform for completed transfers (drift)
    planned: Planned | None = None  # apply plan.json: each step stays within the saved actions
