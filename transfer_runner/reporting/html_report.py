"""`report --format html`: one self-contained page for a run, or for several runs merged.

The page (`data/report/wave.html`) carries its CSS, its script and the wave's data as JSON, and
loads nothing (a Content-Security-Policy of `default-src 'none'` forbids it), so it opens from
a CI artifact or an e-mail attachment. It shows the totals, the transfers that need attention
first with what to do next, a table of every transfer (sortable, filterable by status,
reseller, label and text) and a timeline with one bar per transfer and its steps.

Every text reaches the page through `textContent`, never as markup, and the JSON is embedded
with `<`, `>` and `&` escaped, so a ticket's or an error's text cannot inject anything.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from transfer_runner.engine.results import ATTENTION_STATUSES, TRANSFER_STATUSES
from transfer_runner.platforms.base import STORES
from transfer_runner.reporting.rows import TransferRow, Wave
from transfer_runner.resources import resource_path
from transfer_runner.utc import iso_z

__all__ = ["render_html", "wave_data", "NEXT_STEPS"]

NEXT_STEPS = {
    "failed": "Fix what the message says, then apply again: the transfer resumes at the failed "
    "step. Before the point of no return it can be undone: transfer-runner abort {name} "
    "--reason TEXT.",
    "interrupted": "Apply again (transfer-runner apply --limit @transfer-runner.retry): it "
    "resumes from its last recorded step.",
    "not_started": "Apply again (transfer-runner apply --limit @transfer-runner.retry).",
    "locked": "Another runner holds its lease. If that runner is gone, transfer-runner unlock "
    "{name} (status shows a lock whose process is gone), then apply again.",
    "pending": "Not finished (a staged migration waits for its cut-over): apply again later.",
    "aborted": "Aborted on request: apply skips it until its manifest changes.",
}
STEP_STATUSES = ("ok", "changed", "skipped", "failed")


def render_html(wave: Wave, *, title: str = "", generated_at: datetime) -> str:
    """The page for `wave`."""
    data = wave_data(wave, title=title, generated_at=generated_at)
    page = resource_path("report", "wave.html").read_text(encoding="utf-8")
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fills = {"__TITLE__": html.escape(data["title"]), "__DATA__": blob}
    return re.sub("__TITLE__|__DATA__", lambda m: fills[m.group(0)], page)  # one pass


def wave_data(wave: Wave, *, title: str, generated_at: datetime) -> dict[str, Any]:
    """What the page shows, as JSON-ready data."""
    starts = [r.started_at for r in wave.rows if r.started_at] or [
        run.started_at for run in wave.runs
    ]
    ends = [r.ended_at for r in wave.rows if r.ended_at] or [run.finished_at for run in wave.runs]
    origin = min(starts) if starts else generated_at
    wall = (max(ends) - origin).total_seconds() if ends else 0.0
    names: dict[str, int] = {}
    transfers = [_transfer(row, origin, names) for row in wave.rows]
    count = len(wave.rows)
    return {
        "title": title or _default_title(wave),
        "generated_at": iso_z(generated_at),
        "runs": [
            {
                "id": run.run_id,
                "started_at": iso_z(run.started_at),
                "finished_at": iso_z(run.finished_at),
                "user": run.user,
                "git_commit": run.git_commit or "",
            }
            for run in wave.runs
        ],
        "totals": {
            "transfers": count,
            "by_status": {
                s: n for s in TRANSFER_STATUSES if (n := sum(r.status == s for r in wave.rows))
            },
            "messages": sum(sum(r.messages.values()) for r in wave.rows),
            "bytes": sum(sum(r.bytes.values()) for r in wave.rows),
            "credits": str(sum((r.credit for r in wave.rows if r.credit), Decimal("0.00"))),
            "fees": str(sum((r.fee for r in wave.rows if r.fee), Decimal("0.00"))),
            "wall_s": round(wall, 3),
            "per_minute": round(count * 60 / wall, 1) if wall > 0 else count,
        },
        "step_names": list(names),
        "step_statuses": list(STEP_STATUSES),
        "transfers": transfers,
    }


def _transfer(row: TransferRow, origin: datetime, names: dict[str, int]) -> dict[str, Any]:
    def offset(moment: datetime | None) -> float | None:
        return None if moment is None else round((moment - origin).total_seconds(), 3)

    steps = [
        [
            names.setdefault(s.name, len(names)),
            STEP_STATUSES.index(s.status),
            offset(s.started_at),
            offset(s.ended_at),
        ]
        for s in row.steps
        if s.started_at and s.ended_at and s.status in STEP_STATUSES
    ]
    figures = {
        f"{store}_{what}": figure.get(store, "")
        for store in STORES
        for what, figure in (("messages", row.messages), ("bytes", row.bytes))
    }
    return {
        "name": row.name,
        "status": row.status,
        "attention": row.status in ATTENTION_STATUSES,
        "next": NEXT_STEPS.get(row.status, "").format(name=row.name),
        "run_id": row.run_id,
        "customer": row.customer_account,
        "reseller": row.reseller_account,
        "labels": dict(row.labels),
        "new_account": row.new_account,
        "domains": list(row.domains_moved),
        **figures,
        "credit": "" if row.credit is None else str(row.credit),
        "fee": "" if row.fee is None else str(row.fee),
        "receipt": row.receipt,
        "failed_step": row.failed_step,
        "message": row.message,
        "start": offset(row.steps[0].started_at) if row.steps else None,
        "duration_s": round(row.duration_s, 3) if row.steps else "",
        "path": row.path,
        "steps": steps,
    }


def _default_title(wave: Wave) -> str:
    if len(wave.runs) == 1:
        return f"transfer-runner: run {wave.runs[0].run_id}"
    return f"transfer-runner: {len(wave.runs)} runs merged"
