"""Test hooks at named points: kill the process there (to prove that resuming is exact), or
pause it there (to signal it at a known moment).

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

`TRANSFER_RUNNER_PAUSE_AT=point` with `TRANSFER_RUNNER_PAUSE_DIR=DIR` (two named pipes that
the test made, `DIR/reached` and `DIR/resume`) pauses the thread that reaches the point instead:
it writes the point's name to `reached`, then waits until the test writes to `resume`.

Unset (always, outside tests) each costs one dictionary look-up per point.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["CRASH_ENV", "PAUSE_ENV", "PAUSE_DIR_ENV", "crash_point"]

CRASH_ENV = "TRANSFER_RUNNER_CRASH_AT"
PAUSE_ENV = "TRANSFER_RUNNER_PAUSE_AT"
PAUSE_DIR_ENV = "TRANSFER_RUNNER_PAUSE_DIR"


_reached: dict[str, int] = {}  # how often each point was reached in this process


def crash_point(name: str) -> None:
    """SIGKILL this process if `TRANSFER_RUNNER_CRASH_AT` names `name`, or `name#N` and this
    is the N-th time the process reaches `name`."""
    crash, pause = os.environ.get(CRASH_ENV), os.environ.get(PAUSE_ENV)
    if not crash and not pause:
        return
    reached = _reached[name] = _reached.get(name, 0) + 1
    if crash and _names(crash, name, reached):
        os.kill(os.getpid(), signal.SIGKILL)
    if pause and _names(pause, name, reached):
        _pause(name)


def _names(wanted: str, name: str, reached: int) -> bool:
    points = {p.strip() for p in wanted.split(",")}
    return name in points or f"{name}#{reached}" in points


def _pause(name: str) -> None:
    pipes = Path(os.environ[PAUSE_DIR_ENV])
    with open(pipes / "reached", "w", encoding="utf-8") as reached:
        reached.write(name + "\n")
    with open(pipes / "resume", encoding="utf-8") as resume:
        resume.read()
