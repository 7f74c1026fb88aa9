"""Reading manifest files: the bytes (a regular file of at most 1 MiB), their SHA-256, and
the strict YAML document with positions (`transfer_runner.yaml_positions`)."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_runner.yaml_positions import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    NodePath,
    PositionMap,
    fail,
    format_path,
    parse_yaml_bytes,
    resolve_plain_scalar,
)

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "NodePath",
    "PositionMap",
    "LoadedManifest",
    "format_path",
    "load_yaml_document",
    "load_manifest",
    "read_manifest_bytes",
    "parse_yaml_bytes",
    "resolve_plain_scalar",
]

MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadedManifest:
    """One file, parsed: its displayed path, bytes hash, document and node positions."""

    display: str
    sha256: str
    document: dict[str, Any]
    positions: PositionMap = field(compare=False)


def load_yaml_document(path: Path, display: str) -> tuple[dict[str, Any], PositionMap]:
    """Read and parse one manifest file strictly; every problem in one `ManifestError`."""
    loaded = load_manifest(path, display)
    return loaded.document, loaded.positions


def load_manifest(path: Path, display: str) -> LoadedManifest:
    """Like `load_yaml_document`, also hashing the exact bytes parsed (for drift detection)."""
    data = read_manifest_bytes(path, display)
    document, positions = parse_yaml_bytes(data, display, lazy_positions=True)
    return LoadedManifest(display, hashlib.sha256(data).hexdigest(), document, positions)


def read_manifest_bytes(path: Path, display: str) -> bytes:
    """The file's bytes, refusing non-regular files and files over `MAX_BYTES` before reading."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise fail(display, 0, 0, "not a regular file")
        if info.st_size > MAX_BYTES:
            raise fail(display, 0, 0, _too_big(info.st_size))
        with path.open("rb") as handle:  # what stat said and a byte more (read(MAX_BYTES + 1)
            data = handle.read(info.st_size + 1)  # would allocate 1 MiB for every file)
            if len(data) > info.st_size:  # it grew since: the rest, up to the limit
                data += handle.read(MAX_BYTES + 1 - len(data))
    except OSError as exc:
        raise fail(display, 0, 0, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise fail(display, 0, 0, _too_big(len(data)))
    return data


def _too_big(size: int) -> str:
    return f"file is {size} bytes; a manifest may be at most 1 MiB ({MAX_BYTES} bytes)"
