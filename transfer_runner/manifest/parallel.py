"""Checking a large tree of manifests on several cores: each worker reads, parses and checks
its share of the files (the per-file work); the caller then runs the rules across manifests.

Used by `manifest.api.load_transfers` from `PARALLEL_FROM` files on, with a `forkserver` pool
(safe in a process that runs threads, unlike `fork`). What comes back is what the sequential
path builds: the loaded manifest (positions still found when first asked for) or its
problems, in discovery order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from transfer_runner.errors import Diagnostic, ManifestError
from transfer_runner.manifest.loader import LoadedManifest, load_manifest
from transfer_runner.manifest.schema import schema_diagnostics
from transfer_runner.manifest.semantic import manifest_diagnostics

__all__ = ["PARALLEL_FROM", "Checked", "check_file", "check_files", "workers_for"]

PARALLEL_FROM = 2000  # below this, starting the workers costs more than it saves
_CHUNK = 250  # files per task: enough to make the pickling of a task negligible
_MAX_WORKERS = 8

Checked = tuple[LoadedManifest | None, list[Diagnostic]]


def check_file(path: Path, display: str) -> Checked:
    """One file: loaded (None if it cannot be) and the problems of its own (not across files)."""
    try:
        manifest = load_manifest(path, display)
    except ManifestError as exc:
        return None, list(exc.diagnostics)
    doc, positions = manifest.document, manifest.positions
    problems = [
        *schema_diagnostics(doc, positions, display),
        *manifest_diagnostics(doc, positions, display),
    ]
    return manifest, problems


def workers_for(count: int) -> int:
    """How many worker processes `count` files deserve (1: check them here)."""
    if count < PARALLEL_FROM:
        return 1
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS, count // _CHUNK))


def check_files(files: Sequence[tuple[Path, str]], workers: int) -> list[Checked]:
    """`check_file` of every (path, display), in order, on `workers` processes."""
    chunks = [list(files[i : i + _CHUNK]) for i in range(0, len(files), _CHUNK)]
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [checked for done in pool.map(_check_chunk, chunks) for checked in done]


def _check_chunk(files: list[tuple[Path, str]]) -> list[Checked]:
    return [check_file(path, display) for path, display in files]
