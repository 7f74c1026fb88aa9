"""The module contract: `check` reads facts and returns the writes it would make as `Action`s;
`apply` executes exactly those.

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
from transfer_runner.modules.keys import with_attempt

__all__ = [
    "Action",
    "Arg",
    "ArgSpec",
    "Check",
    "Module",
    "ModuleRegistry",
    "arg_problems",
    "only_action",
    "optional",
    "require",
    "required",
    "write_key",
]


@dataclass(frozen=True)
class Action:
    """One write a step will make, as data.

    `kind` names the write (`account.create`, `domain.move`, `billing.credit`, ...), `target`
    what it acts on (an account id, a domain, a ticket, a store; None where a plan cannot know
    it yet), `key` the idempotency key the platform write carries, `params` the values it
    writes (amounts as decimal strings; None where a plan cannot know them yet, such as the id
    of an account still to be created, or a credit that depends on the cancellation day), and
    `text` says it for a person. A write that `abort` undoes is `per_attempt`: the transfer's
    n-th attempt sends `key#n` (the attempt is decided when the ticket claims are written,
    right before the transfer's first write; see `write_key`).

    `apply` executes a check's actions and nothing else; `plan --out` saves them, and
    `apply plan.json` refuses a step whose actions are not `within` the saved ones.
    """

    kind: str
    target: str | None
    text: str
    key: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    per_attempt: bool = False

    def __str__(self) -> str:
        return self.text

    def param(self, name: str) -> Any:
        """A parameter's value (KeyError names the action when the module never set it)."""
        try:
            return self.params[name]
        except KeyError:
            raise KeyError(f"{self.kind} action has no parameter {name!r}") from None

    def within(self, planned: Action) -> bool:
        """Whether this is the action `planned` showed: the same kind, and the same target, key
        and parameters wherever the plan knew them (what it could not know, None, may now be
        anything)."""
        if self.kind != planned.kind:
            return False
        if planned.target is not None and self.target != planned.target:
            return False
        if planned.key is not None and self.key != planned.key:
            return False
        if self.per_attempt != planned.per_attempt:
            return False
        return all(
            value is None or self.params.get(name) == value
            for name, value in planned.params.items()
        )

    def to_dict(self) -> dict[str, Any]:
        """The action as JSON-ready data (a saved plan's entries)."""
        return {
            "kind": self.kind,
            "target": self.target,
            "key": self.key,
            "params": dict(self.params),
            "per_attempt": self.per_attempt,
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Action:
        """The action `to_dict` wrote; ValueError when `doc` is not one."""
        kind, target, key, params, text = (
            doc.get("kind"), doc.get("target"), doc.get("key"), doc.get("params"), doc.get("text"),
        )  # fmt: skip
        if not isinstance(kind, str) or not isinstance(text, str):
            raise ValueError("an action needs a kind and a text")
        if target is not None and not isinstance(target, str):
            raise ValueError(f"{kind}: target must be a string or null")
        if key is not None and not isinstance(key, str):
            raise ValueError(f"{kind}: key must be a string or null")
        if not isinstance(params, dict):
            raise ValueError(f"{kind}: params must be an object")
        return cls(kind, target, text, key, params, doc.get("per_attempt") is True)


@dataclass(frozen=True)
class Check:
    """What `check` found: actions to take (empty: already so), a reason, and facts read.

    `facts` become the step's outputs (and the `register`ed variable) whether or not anything
    changes, so later tasks can use e.g. the new account's id.
    """

    actions: tuple[Action, ...] = ()
    reason: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.actions)


def write_key(ctx: TaskContext, action: Action) -> str:
    """The idempotency key `action`'s write sends: its key, with the transfer's attempt
    appended for a write an abort undoes (`account:acme-com#2`, `keys.with_attempt`)."""
    if action.key is None:
        raise ValueError(f"{action.kind} action has no idempotency key")
    if not action.per_attempt:
        return action.key
    attempt = ctx.run.attempt(ctx.transfer.customer_ticket)
    return with_attempt(action.key, attempt)


def only_action(check: Check, kind: str) -> Action:
    """The one action of `kind` a check returned (ValueError otherwise: a module's own bug)."""
    found = [a for a in check.actions if a.kind == kind]
    if len(found) != 1:
        raise ValueError(f"expected one {kind} action, got {len(found)}")
    return found[0]


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
        """Execute `check.actions`, nothing else; return the outputs (merged over
        `check.facts`)."""
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
