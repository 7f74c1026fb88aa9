"""Which files are manifests: paths as given, directories searched recursively."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from transfer_runner.errors import Diagnostic

__all__ = ["MANIFEST_SUFFIXES", "discover"]

MANIFEST_SUFFIXES = (".yml", ".yaml")


def discover(paths: Sequence[str]) -> tuple[list[Path], list[Diagnostic]]:
    """Files named on the command line are taken as they are (whatever their suffix);
    directories are searched recursively for `*.yml`/`*.yaml`, sorted, skipping hidden files
    and directories (symlinked directories are not followed). A file reached twice (by two
    paths, a symlink or a hard link) is listed once. A missing path, or a directory
    without manifests, is a whole-file diagnostic (line 0, column 0)."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    seen: set[tuple[int, int]] = set()
    if not paths:
        problems.append(Diagnostic("(arguments)", 0, 0, "no manifest files or directories given"))
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = _search(path)
            if not found:
                problems.append(
                    Diagnostic(given, 0, 0, "no manifests (*.yml, *.yaml) in this directory")
                )
        elif path.exists():
            found = [path]
        else:
            problems.append(Diagnostic(given, 0, 0, "no such file or directory"))
            continue
        for file in found:
            try:  # the file itself (device, inode), however it is reached: one system call
                info = os.stat(file)
            except OSError:  # gone since the search: reading it will say so
                files.append(file)
                continue
            key = (info.st_dev, info.st_ino)
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, problems


def _search(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            Path(root) / name
            for name in sorted(filenames)
            if not name.startswith(".") and name.endswith(MANIFEST_SUFFIXES)
        )
    return sorted(found)
