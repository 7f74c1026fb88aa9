"""How the state stores write values as JSON: Decimal as its exact digits, aware datetimes
as fixed-width UTC text (`utc.fixed_utc`), dates, sets, enums and paths as text, anything
else refused before anything is written; and the S3 store's records as JSON objects."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from transfer_runner.state.base import RunInfo, StepRecord, TransferRecord
from transfer_runner.utc import fixed_utc, parse_utc

__all__ = ["run_body", "run_from", "step_from", "to_json", "transfer_body", "transfer_from"]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return fixed_utc(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the state: {value!r}")


def to_json(value: Any) -> str:
    """JSON text for the state: Decimal and datetime become strings, keys keep their order."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def run_body(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": fixed_utc(run.started_at),
        "user": run.user,
        "ci_job": run.ci_job,
        "git_commit": run.git_commit,
        "command": run.command,
        "finished_at": fixed_utc(run.finished_at) if run.finished_at else None,
        "totals": dict(run.totals),
    }


def run_from(body: dict[str, Any]) -> RunInfo:
    finished = body.get("finished_at")
    return RunInfo(
        id=body["id"],
        started_at=parse_utc(body["started_at"]),
        user=body["user"],
        ci_job=body.get("ci_job"),
        git_commit=body.get("git_commit"),
        command=body.get("command", "apply"),
        finished_at=parse_utc(finished) if finished else None,
        totals=dict(body.get("totals") or {}),
    )


def transfer_from(body: dict[str, Any]) -> TransferRecord:
    return TransferRecord(
        name=body["name"],
        manifest_sha256=body["manifest_sha256"],
        status=body["status"],
        updated_at=parse_utc(body["updated_at"]),
        last_run_id=body.get("last_run_id"),
        playbook_sha256=str(body.get("playbook_sha256") or ""),
    )


def step_from(body: dict[str, Any]) -> StepRecord:
    return StepRecord(
        run_id=body["run_id"],
        transfer=body["transfer"],
        index=int(body["index"]),
        name=body["name"],
        module=body["module"],
        status=body["status"],
        started_at=parse_utc(body["started_at"]),
        ended_at=parse_utc(body["ended_at"]),
        outputs=dict(body.get("outputs") or {}),
        message=body.get("message", ""),
    )


def transfer_body(record: TransferRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "manifest_sha256": record.manifest_sha256,
        "status": record.status,
        "updated_at": fixed_utc(record.updated_at),
        "last_run_id": record.last_run_id,
        "playbook_sha256": record.playbook_sha256,
    }
