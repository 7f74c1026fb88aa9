"""The tests' hook for `testpoints`: kill the process at a named point (to prove that resuming
is exact), or pause it there (to signal it at a known moment). The CLI's entry point installs
it (`install_from_env`) only when one of the variables below is set.

Set `TRANSFER_RUNNER_CRASH_AT=point[,point...]` and the process SIGKILLs itself (no cleanup,
no `finally`, as a power cut or an OOM kill would) at the first of those points it reaches.
Points:

- `before-step-N`: task N (1-based, in playbook order) checked that it must write, nothing
  written yet;
- `after-step-N`: task N's writes are done, its result is not recorded in the state store yet;
- `platform-after-OP`: the sandbox committed a write `OP` (e.g. `create_account`, `charge`) and
  has not answered yet (a lost acknowledgement);
- `export-mid-part-N`: part N has its first message packed, not yet finished;
- `export-upload-part-N`: part N is compressed and about to be uploaded;
- `export-after-part-N`: part N is uploaded and journalled;
- `export-before-index`: every part is journalled, `index.jsonl` is not written yet;
- `export-before-checkpoint`: `index.jsonl` is written, the journal's checkpoint is not;
- `verify-after-part-N`: verify has read part N back;
- `import-after-part-N`: every message of part N is imported.

`POINT#N` fires the N-th time the process reaches POINT (e.g. the third
`platform-after-add_ticket_comment`: the two claims come first).

`TRANSFER_RUNNER_PAUSE_AT=point` with `TRANSFER_RUNNER_PAUSE_DIR=DIR` (where the test made the
named pipe `DIR/reached`) pauses the thread that reaches the point instead: it makes the named
pipe `DIR/resume-PID`, writes "POINT PID" to `reached`, then waits until the test writes to
`resume-PID` (one pipe per process, so that the workers of `apply --procs` pause apart).

Unset (always, outside tests) no hook is installed and a point costs one call.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

from transfer_runner import testpoints

__all__ = ["CRASH_ENV", "PAUSE_DIR_ENV", "PAUSE_ENV", "KillOrPause", "install_from_env"]

CRASH_ENV = "TRANSFER_RUNNER_CRASH_AT"
PAUSE_ENV = "TRANSFER_RUNNER_PAUSE_AT"
PAUSE_DIR_ENV = "TRANSFER_RUNNER_PAUSE_DIR"


class KillOrPause:
    """A `testpoints` hook: SIGKILL the process at the points `crash` names, pause at those
    `pause` names (talking through the pipes in `pause_dir`). `POINT#N` names the N-th time."""

    def __init__(self, crash: str = "", pause: str = "", pause_dir: str = "") -> None:
        self.crash, self.pause = _points(crash), _points(pause)
        self.pause_dir = Path(pause_dir) if pause_dir else None
        self.reached: dict[str, int] = {}  # how often each point was reached

    def __call__(self, name: str) -> None:
        count = self.reached[name] = self.reached.get(name, 0) + 1
        if _names(self.crash, name, count):
            os.kill(os.getpid(), signal.SIGKILL)
        if _names(self.pause, name, count):
            self._pause(name)

    def _pause(self, name: str) -> None:
        if self.pause_dir is None:
            raise RuntimeError(f"{PAUSE_ENV} is set without {PAUSE_DIR_ENV}")
        resume = self.pause_dir / f"resume-{os.getpid()}"
        if not resume.exists():
            os.mkfifo(resume)
        with open(self.pause_dir / "reached", "w", encoding="utf-8") as reached:
            reached.write(f"{name} {os.getpid()}\n")
        with open(resume, encoding="utf-8") as answer:
            answer.read()


def install_from_env(env: Mapping[str, str] | None = None) -> KillOrPause | None:
    """Install a `KillOrPause` hook when the environment asks for one; returns it."""
    env = os.environ if env is None else env
    crash, pause = env.get(CRASH_ENV, ""), env.get(PAUSE_ENV, "")
    if not crash.strip() and not pause.strip():
        return None
    hook = KillOrPause(crash, pause, env.get(PAUSE_DIR_ENV, ""))
    testpoints.install(hook)
    return hook


def _points(wanted: str) -> frozenset[str]:
    return frozenset(p.strip() for p in wanted.split(",") if p.strip())


def _names(points: frozenset[str], name: str, count: int) -> bool:
    return name in points or f"{name}#{count}" in points
