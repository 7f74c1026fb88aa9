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

__all__ = [
    "Arg",
    "ArgSpec",
    "Check",
    "Module",
    "ModuleRegistry",
    "arg_problems",
    "optional",
    "require",
    "required",
]


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


@dataclass(frozen=True)
class Arg:
    """One argument of a module: whether a task must give it, and the types its value may have
    (a template's value is known only when the task runs, and `require` checks it then)."""

    required: bool
    kinds: tuple[type, ...]


def required(*kinds: type) -> Arg:
    """An argument every task of the module must give (of one of `kinds`; str by default)."""
    return Arg(True, kinds or (str,))


def optional(*kinds: type) -> Arg:
    """An argument a task may leave out."""
    return Arg(False, kinds or (str,))


ArgSpec = Mapping[str, Arg]


def arg_problems(spec: ArgSpec, args: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """What is wrong with a task's arguments before any template is rendered, as (the
    argument it is about, or None for a missing one; message): unknown keys, missing
    required ones, and literal values of the wrong type."""
    problems: list[tuple[str | None, str]] = [
        (key, f"unknown argument {key!r} (it takes: {', '.join(sorted(spec))})")
        for key in sorted(set(args) - set(spec))
    ]
    problems += [
        (None, f"missing argument {key!r}")
        for key, arg in sorted(spec.items())
        if arg.required and args.get(key) is None
    ]
    for key, value in sorted(args.items()):
        arg = spec.get(key)
        if arg is None or value is None or _templated(value) or _is_kind(value, arg.kinds):
            continue
        kinds = " or ".join(kind.__name__ for kind in arg.kinds)
        problems.append((key, f"argument {key!r} must be {kinds}, not {type(value).__name__}"))
    return problems


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a bool is an int to isinstance, never to a playbook
        return bool in kinds
    return isinstance(value, kinds)


class Module(Protocol):
    """A step's implementation. `name` is the playbook key, e.g. `billing.charge`; `args`
    declares the arguments it takes, checked when the playbook loads."""

    name: ClassVar[str]
    args: ClassVar[ArgSpec]

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
