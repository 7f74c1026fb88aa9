"""One error hierarchy. Leaves carry data; their messages are built here, once.

A `TransferRunnerError` is an expected failure that the CLI turns into a clean message and an
exit code; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "TransferRunnerError",
    "ConfigError",
    "Diagnostic",
    "ManifestError",
    "PlaybookError",
    "TemplateError",
    "PlatformError",
    "NotFound",
    "Conflict",
    "AccountCancelled",
    "StepError",
    "ExportError",
    "StateError",
    "LockHeld",
]


class TransferRunnerError(Exception):
    """Base of every expected, user-facing error."""


class ConfigError(TransferRunnerError):
    """A setting (flag, environment variable, config file) is missing or wrong."""


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in an input file: `path:line:col: where: message`.

    `line` and `col` are 1-based; 0 means "the whole file".
    """

    path: str
    line: int
    col: int
    message: str
    where: str = ""  # dotted path of the offending node, e.g. "spec.subscription.users"

    def __str__(self) -> str:
        loc = f"{self.path}:{self.line}:{self.col}"
        return f"{loc}: {self.where}: {self.message}" if self.where else f"{loc}: {self.message}"


class ManifestError(TransferRunnerError):
    """One or more manifests are invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class PlaybookError(TransferRunnerError):
    """The playbook file is invalid (unknown module, bad keyword, schema error)."""


class TemplateError(TransferRunnerError):
    """A task argument could not be rendered (undefined variable, unsafe access)."""

    def __init__(self, task: str, detail: str) -> None:
        self.task, self.detail = task, detail
        super().__init__(f"task {task!r}: template error: {detail}")


class PlatformError(TransferRunnerError):
    """The platform refused or failed a call."""

    def __init__(self, operation: str, detail: str, status: int | None = None) -> None:
        self.operation, self.detail, self.status = operation, detail, status
        code = f" [{status}]" if status is not None else ""
        super().__init__(f"platform {operation}{code}: {detail}")


class NotFound(PlatformError):
    """The object asked for does not exist on the platform."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(operation, detail, 404)


class Conflict(PlatformError):
    """The write breaks a platform rule (domain held elsewhere, key reused with other data)."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(operation, detail, 409)


class AccountCancelled(PlatformError):
    """The account is cancelled and takes no writes."""

    def __init__(self, operation: str, account: str) -> None:
        self.account = account
        super().__init__(operation, f"account {account} is cancelled and takes no writes", 409)


class StepError(TransferRunnerError):
    """A step failed; `step` names the task, `cause` the reason."""

    def __init__(self, step: str, cause: str) -> None:
        self.step, self.cause = step, cause
        super().__init__(f"{step}: {cause}")


class ExportError(TransferRunnerError):
    """Export, verify or import of mail data failed."""


class StateError(TransferRunnerError):
    """The state store cannot be opened or is inconsistent."""


class LockHeld(StateError):
    """Another runner holds the transfer's lock (invariant I6)."""

    def __init__(self, name: str, owner: str, run_id: str, expires_at: str) -> None:
        self.name, self.owner, self.run_id, self.expires_at = name, owner, run_id, expires_at
        super().__init__(f"transfer {name} is locked by {owner} (run {run_id}) until {expires_at}")
