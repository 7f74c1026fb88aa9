"""Unpack a part into a directory without ever writing outside it (for restores and audits).

A part read back from S3 is data from outside: its member names are not trusted. Two fences:
our own check of every member (no absolute path, no "..", only files and directories, the
resolved path inside the destination), then tarfile's "data" filter where Python has it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.limits import ExportLimits, export_limits
from transfer_runner.export.packing import DAMAGE, open_tar_stream, tar_headers

__all__ = ["extract_part"]

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_HAS_FILTERS = hasattr(tarfile, "data_filter")  # Python >= 3.11.4
_FILTER: dict[str, Any] = {"filter": "data"} if _HAS_FILTERS else {}
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if _HAS_FILTERS else ()


def extract_part(
    fileobj: Any, dest_dir: str | os.PathLike[str], limits: ExportLimits | None = None
) -> list[Path]:
    """Extract a tar stream (any compression) into `dest_dir`; returns the files written.

    Raises `ExportError` at the first unsafe member (absolute path, "..", link, device,
    FIFO, or a path that resolves outside `dest_dir`), at the first member past `limits`
    (default `export_limits()`: a member larger than a message may be, one member too many,
    or more bytes in all than `max_extract_bytes`), all refused on their header before
    anything of them is written, if the stream is damaged, or if writing fails (a member
    under a file written before, a full disk: the `OSError` named).
    """
    limits = limits or export_limits()
    dest = Path(dest_dir)
    written: list[Path] = []
    total = 0
    try:
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        with open_tar_stream(fileobj) as tar:
            for info in tar_headers(tar, limits):
                target = _safe_target(info, root)
                total += info.size
                if total > limits.max_extract_bytes:
                    raise ExportError(
                        f"member {info.name!r}: more bytes than a part may hold in all "
                        f"({limits.hint('max_extract_bytes')}); nothing of it was written"
                    )
                tar.extract(info, root, **_FILTER)
                if info.isreg():
                    written.append(target)
    except _FILTER_ERRORS as exc:
        raise ExportError(f"unsafe member refused by tarfile: {exc}") from exc
    except DAMAGE as exc:
        raise ExportError(f"damaged tar stream: {exc}") from exc
    except OSError as exc:
        raise ExportError(f"extracting into {dest} failed: {_described(exc, dest)}") from exc
    return written


def _described(exc: OSError, dest: Path) -> str:
    """`[Errno 20] Not a directory: 'a.eml/b.eml'`: the error with its path under `dest`."""
    name = exc.filename
    if isinstance(name, str | os.PathLike):
        with contextlib.suppress(ValueError):
            name = str(Path(name).relative_to(dest.resolve()))
    reason = exc.strerror or type(exc).__name__
    code = f"[Errno {exc.errno}] " if exc.errno is not None else ""
    return f"{code}{reason}: {name!r}" if name is not None else f"{code}{reason}"


def _safe_target(info: tarfile.TarInfo, root: Path) -> Path:
    """Where `info` would land under `root`; `ExportError` if anything about it is unsafe."""
    name = info.name
    if not (info.isreg() or info.isdir()):
        raise ExportError(f"member {name!r}: only files and directories are allowed")
    if not name or "\x00" in name or "\\" in name:
        raise ExportError(f"member {name!r}: empty, or holds a NUL or a backslash")
    if name.startswith("/") or _DRIVE_RE.match(name):
        raise ExportError(f"member {name!r}: absolute paths are not allowed")
    if ".." in PurePosixPath(name).parts:
        raise ExportError(f"member {name!r}: '..' is not allowed")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise ExportError(f"member {name!r}: would land outside {root}")
    return target
