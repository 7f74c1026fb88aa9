"""The module contract: `check` reads facts and says what it would do; `apply` does exactly that.

A module never prints and never writes in `check`. `apply` is only called when `check` returned
actions, and must be idempotent: each platform write carries a key from
`transfer_runner.modules.keys`, so a repeat after a crash replays instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from transfer_runner.errors import StepError
from transfer_runner.modules.context import TaskContext

__all__ = ["Check", "Module", "ModuleRegistry", "require"]


@dataclass(frozen=True)
class Check:
    """What `check` found: actions to take (empty: already so), a reason, and facts read.

    `facts` become the step's outputs (and the `register`ed variable) whether or not anything
    changes, so later tasks can use e.g. the new account's id.
    """

    actions: tuple[str, ...] = ()
    reason: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.actions)


class Module(Protocol):
    """A step's implementation. `name` is the playbook key, e.g. `billing.charge`."""

    name: ClassVar[str]

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        """Read-only: what would change? Raise StepError when the step cannot succeed."""
        ...

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        """Make it so; return the outputs (merged over `check.facts`)."""
        ...


ModuleRegistry = dict[str, Module]


def require(
    args: Mapping[str, Any], key: str, task: str, kind: type | tuple[type, ...] = str
) -> Any:
    """An argument that must be present and of a type; StepError otherwise."""
    if key not in args or args[key] is None:
        raise StepError(task, f"missing argument {key!r}")
    value = args[key]
    if not isinstance(value, kind):
        raise StepError(task, f"argument {key!r} has the wrong type ({type(value).__name__})")
    return value
