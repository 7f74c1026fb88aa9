"""Files that hold customer data (reports): written readable by their owner only.

A report names accounts, domains, tickets, amounts and approvers; `write_private` creates it
0600 whatever the umask, through a temporary file beside it and a rename, so a reader never
sees half a report and a crash leaves the old one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from transfer_runner.errors import ConfigError

__all__ = ["write_private"]


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path`, mode 0600; ConfigError when it cannot be written."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)  # O_CREAT's mode only applies to a new file
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc
