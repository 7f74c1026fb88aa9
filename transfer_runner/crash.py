"""A test hook that kills the process at named points, to prove that resuming is exact.

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

Unset (always, outside tests) it costs one dictionary look-up per point.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_ENV", "crash_point"]

CRASH_ENV = "TRANSFER_RUNNER_CRASH_AT"


_reached: dict[str, int] = {}  # how often each point was reached in this process


def crash_point(name: str) -> None:
    """SIGKILL this process if `TRANSFER_RUNNER_CRASH_AT` names `name`, or `name#N` and this
    is the N-th time the process reaches `name`."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    reached = _reached[name] = _reached.get(name, 0) + 1
    points = {p.strip() for p in wanted.split(",")}
    if name in points or f"{name}#{reached}" in points:
        os.kill(os.getpid(), signal.SIGKILL)
