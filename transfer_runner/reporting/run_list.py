"""`report --list`: the recent apply runs, newest first, as a text table or JSON.

Each run shows when it started and how long it took, who ran it (user, CI job), the commit of
the manifests, and its transfers by status (from the totals recorded when it finished; a run
that never finished, crashed or still running, says so).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from transfer_runner.engine.results import TRANSFER_STATUSES
from transfer_runner.shown import lines_safe
from transfer_runner.state.base import RunInfo
from transfer_runner.utc import iso_z

__all__ = ["render_run_list"]


def render_run_list(runs: Sequence[RunInfo], *, as_json: bool = False) -> str:
    """The runs as a table (or a JSON list), newest first as given."""
    if as_json:
        return json.dumps([_as_dict(run) for run in runs], indent=2)
    if not runs:
        return "no apply run is recorded in the state store yet"
    header = ("run", "started (UTC)", "took", "user", "CI job", "commit", "transfers")
    lines = [_cells(run) for run in runs]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for row in [header, *lines]:
        fixed = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        out.append(f"{fixed}  {row[-1]}".rstrip())
    return lines_safe("\n".join(out))


def _cells(run: RunInfo) -> tuple[str, ...]:
    return (
        run.id,
        run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        _took(run),
        run.user or "-",
        run.ci_job or "-",
        (run.git_commit or "-")[:12],
        _counts(run),
    )


def _took(run: RunInfo) -> str:
    if run.finished_at is None:
        return "-"
    seconds = int((run.finished_at - run.started_at).total_seconds())
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _counts(run: RunInfo) -> str:
    if run.finished_at is None:
        return "did not finish (interrupted, crashed, or still running)"
    totals = run.totals
    parts = [f"{totals.get(f'transfers_{s}', 0)} {s.replace('_', ' ')}" for s in TRANSFER_STATUSES]
    shown = [p for p in parts if not p.startswith("0 ")]
    return f"{totals.get('transfers', 0)}: " + (", ".join(shown) or "none")


def _as_dict(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "started_at": iso_z(run.started_at),
        "finished_at": iso_z(run.finished_at) if run.finished_at else None,
        "user": run.user,
        "ci_job": run.ci_job,
        "git_commit": run.git_commit,
        "totals": dict(run.totals),
    }
