"""The JSON report (`--report-json`, `report --format json`), per `schemas/report.schema.json`.

Renders only what the RunReport holds; values that JSON lacks (Decimal, datetime, sets) become
strings or lists so that amounts keep their exact digits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from transfer_runner.engine.results import RunReport, StepResult, TransferResult
from transfer_runner.utc import iso_z

__all__ = ["report_to_dict", "render_json", "iso_utc", "json_safe"]


def iso_utc(moment: datetime | None) -> str | None:
    """`2026-11-18T09:30:00.123456Z` (UTC), or None; a naive time is taken as UTC."""
    return None if moment is None else iso_z(moment)


def json_safe(value: Any) -> Any:
    """`value` with only JSON types: Decimal/datetime/date as strings, tuples and sets as lists."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or Infinity
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [json_safe(v) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


def _step(step: StepResult) -> dict[str, Any]:
    return {
        "name": step.name,
        "module": step.module,
        "status": step.status,
        "message": step.message,
        "actions": [action.text for action in step.actions],
        "outputs": json_safe(step.outputs),
        "started_at": iso_utc(step.started_at),
        "ended_at": iso_utc(step.ended_at),
        "duration_s": round(max(step.duration_s, 0.0), 6),
    }


def _transfer(transfer: TransferResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": transfer.name,
        "status": transfer.status,
        "message": transfer.message,
        "counts": transfer.counts,
        "steps": [_step(s) for s in transfer.steps],
    }
    if transfer.path:
        out["path"] = transfer.path
    return out


def report_to_dict(report: RunReport) -> dict[str, Any]:
    """The report as plain JSON data, in the shape of `schemas/report.schema.json`."""
    return {
        "run_id": report.run_id,
        "command": report.command,
        "started_at": iso_utc(report.started_at),
        "finished_at": iso_utc(report.finished_at),
        "git_commit": report.git_commit,
        "user": report.user,
        "totals": report.totals,
        "transfers": [_transfer(t) for t in report.transfers],
    }


def render_json(report: RunReport) -> str:
    """The report as indented JSON text (no trailing newline)."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)
