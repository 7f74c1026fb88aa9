"""The git guards of a run: `apply --changed-since REF` (only manifests changed since a ref)
and `--require-clean` (refuse manifests with uncommitted changes)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from transfer_runner.errors import ConfigError

__all__ = ["changed_since", "uncommitted"]


def _git(args: list[str]) -> str:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"git {' '.join(args)}: {exc}") from exc
    if out.returncode != 0:
        raise ConfigError(f"git {' '.join(args)}: {out.stderr.strip() or 'failed'}")
    return out.stdout


def changed_since(ref: str, paths: Sequence[str]) -> set[str]:
    """Resolved paths of files changed (added, modified, renamed) since the git ref `ref`."""
    top = Path(_git(["rev-parse", "--show-toplevel"]).strip())
    out = _git(["diff", "--name-only", "--diff-filter=AMR", ref, "--", *paths])
    return {str((top / line).resolve()) for line in out.splitlines() if line.strip()}


def uncommitted(paths: Sequence[str]) -> list[str]:
    """Files under `paths` with uncommitted changes (or untracked), as git reports them."""
    out = _git(["status", "--porcelain", "--untracked-files=all", "--", *paths])
    return [line[3:] for line in out.splitlines() if line.strip()]
