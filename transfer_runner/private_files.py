"""Files that hold customer data: readable by their owner only, whatever the umask.

Reports, saved plans, retry files, logs and the SQLite state name accounts, domains, tickets,
amounts and approvers. `write_private` writes such a file 0600 through a temporary file beside
it and a rename, so a reader never sees half of it and a crash leaves the old one;
`create_private` makes a database file 0600 (and its directory 0700) before SQLite opens it,
and SQLite gives its WAL and shared-memory files the database's mode.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from transfer_runner.errors import ConfigError

__all__ = ["create_private", "write_private"]


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


def create_private(path: str | os.PathLike[str]) -> None:
    """Create `path` empty with mode 0600, and its missing directories 0700, unless it exists
    (an existing file keeps the mode its owner gave it). OSError when it cannot."""
    target = Path(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
