"""The sandbox's commands as plain functions returning results (`cli/sandbox.py` is their skin):
create a sandbox from a fixture, read its whole state. Serving it and the mail flow run until
a signal; their loops live with the CLI, around `SandboxServer` and `FlowThread`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transfer_runner.errors import ConfigError

__all__ = ["sandbox_dump", "sandbox_init"]


def sandbox_init(path: str, fixture: str, *, force: bool = False) -> dict[str, int]:
    """Create the sandbox at `path` from `fixture`; counts of what it holds (accounts,
    tickets, messages...). ConfigError for a bad fixture, or an existing file without
    `force`."""
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    return init_sandbox(path, fixture, force=force)


def sandbox_dump(path: str) -> dict[str, Any]:
    """The sandbox's whole state (accounts, tickets, charges, credits, writes, mail)."""
    from transfer_runner.platforms.sandbox.dump import dump_sandbox

    if not Path(path).is_file():
        raise ConfigError(f"no sandbox at {path}")
    return dump_sandbox(path)
