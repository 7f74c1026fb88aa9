"""A test hook that kills the process at a named point, to prove that resuming is exact.

Set `TRANSFER_RUNNER_CRASH_AT` to one point name and the process SIGKILLs itself (no cleanup,
no `finally`, as a power cut or an OOM kill would) when it gets there. Points:

- `export-mid-part-N`: part N has its first message packed, not yet finished;
- `export-upload-part-N`: part N is compressed and about to be uploaded;
- `export-after-part-N`: part N is uploaded and journalled;
- `export-before-index`: every part is journalled, `index.jsonl` is not written yet;
- `verify-after-part-N`: verify has read part N back;
- `import-after-part-N`: every message of part N is imported.

Unset (always, outside tests) it costs one dictionary look-up per point.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_ENV", "crash_point"]

CRASH_ENV = "TRANSFER_RUNNER_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process if `TRANSFER_RUNNER_CRASH_AT` names `name`."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
