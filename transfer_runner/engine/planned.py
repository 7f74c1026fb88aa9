"""Apply within a saved plan: each step's fresh actions must be ones the plan showed.

`plan --out` saves every step's actions (`modules.base.Action`); `apply plan.json` runs each
step's check again and refuses, before the step writes, an action that is not `within` one the
plan saved for that step (another account, domain, amount or key). Copies of the customer's
mail are the exception (`LIVE_KINDS`): a live mailbox receives mail between the plan and the
apply, and invariant I2 needs all of it exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from transfer_runner.modules.base import Action

__all__ = ["LIVE_KINDS", "Planned", "unplanned"]

LIVE_KINDS = frozenset(
    {"export.pass", "export.verify", "export.receipt", "export.final_pass", "import.store"}
)  # copies of a mailbox that keeps changing between the plan and the apply

Planned = Mapping[str, Mapping[str, tuple[Action, ...]]]
"""Per transfer, per task: the actions a saved plan showed."""


def unplanned(actions: Sequence[Action], planned: Sequence[Action]) -> list[Action]:
    """The actions the plan did not show (each must be `within` one of `planned`)."""
    return [
        a for a in actions if a.kind not in LIVE_KINDS and not any(a.within(p) for p in planned)
    ]
