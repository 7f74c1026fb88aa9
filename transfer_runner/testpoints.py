"""Named points in the code where a test may act on the process: `reached(name)`.

Production modules call `reached("after-step-3")` and nothing else: unless the process's entry
point installed a hook (`install`), a call does nothing. The CLI installs one only when a test
asks for it through the environment (`kill_or_pause_from_env`, in
`transfer_runner/kill_points.py`), so the engine, export and platform code never read the
environment for it. The points are listed in `kill_points.py`.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Hook", "install", "installed", "reached"]

Hook = Callable[[str], None]
"""Called with a point's name each time the process reaches it."""

_hook: Hook | None = None


def install(hook: Hook | None) -> Hook | None:
    """Make `hook` the process's hook (None removes it); returns the one it replaces."""
    global _hook
    before, _hook = _hook, hook
    return before


def installed() -> bool:
    """Whether the process has a hook (`apply --procs` then installs one in its workers)."""
    return _hook is not None


def reached(name: str) -> None:
    """The process is at point `name`: the installed hook acts on it, if there is one."""
    hook = _hook
    if hook is not None:
        hook(name)
