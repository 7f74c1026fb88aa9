"""A markdown summary (`report --format markdown`), fit for `$GITHUB_STEP_SUMMARY`.

Text from the report (messages, names) is escaped so that it cannot break the table or inject
markup into the page.
"""

from __future__ import annotations

import unicodedata

from transfer_runner.engine.results import (
    STEP_STATUSES,
    TRANSFER_STATUSES,
    RunReport,
    TransferResult,
)
from transfer_runner.reporting.json_report import iso_utc
from transfer_runner.shown import lines_safe

__all__ = ["md_escape", "render_markdown"]

_ORDER = TRANSFER_STATUSES
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
}


def md_escape(text: str) -> str:
    """Escape markdown and HTML; flatten newlines and control characters (one row stays one)."""
    flat = " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).split())
    return "".join(_ESCAPES.get(ch, ch) for ch in flat)


def _heading(report: RunReport) -> list[str]:
    tot = report.totals
    by_status = ", ".join(f"{tot['transfers_' + s]} {s}" for s in _ORDER if tot["transfers_" + s])
    steps = " ".join(f"{s}={tot[s]}" for s in STEP_STATUSES)
    lines = [
        f"## transfer-runner {report.command} {md_escape(report.run_id)}",
        "",
        f"**{tot['transfers']} transfers**" + (f": {by_status}" if by_status else "") + ".",
        f"Steps: {steps}.",
        "",
    ]
    when = f"Started {iso_utc(report.started_at)}, finished {iso_utc(report.finished_at)}"
    who = f" by {md_escape(report.user)}" if report.user else ""
    commit = f" at commit {md_escape(report.git_commit)}" if report.git_commit else ""
    return [*lines, f"{when}{who}{commit}.", ""]


def _table(transfers: tuple[TransferResult, ...]) -> list[str]:
    lines = [
        "| Transfer | Status | ok | changed | failed | skipped |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in transfers:
        c = t.counts
        lines.append(
            f"| {md_escape(t.name)} | {t.status} | {c['ok']} | {c['changed']} | {c['failed']} "
            f"| {c['skipped']} |"
        )
    return [*lines, ""]


def _problems(transfers: tuple[TransferResult, ...]) -> list[str]:
    failed = [t for t in transfers if t.status == "failed"]
    locked = [t for t in transfers if t.status == "locked"]
    lines: list[str] = []
    if failed:
        lines += ["### Failed", ""]
        for t in failed:
            step = next((s for s in t.steps if s.status == "failed"), None)
            if step is not None:
                lines.append(
                    f"- **{md_escape(t.name)}**: step {md_escape(step.name)} "
                    f"({md_escape(step.module)}) failed: {md_escape(step.message)}"
                )
            else:
                lines.append(f"- **{md_escape(t.name)}**: {md_escape(t.message or 'failed')}")
        lines.append("")
    stopped = [t for t in transfers if t.status in ("interrupted", "not_started")]
    if stopped:
        lines += ["### Interrupted or not started (apply again to resume)", ""]
        lines += [f"- **{md_escape(t.name)}**: {md_escape(t.message or t.status)}" for t in stopped]
        lines.append("")
    if locked:
        lines += ["### Locked by another runner", ""]
        lines += [f"- **{md_escape(t.name)}**: {md_escape(t.message or 'locked')}" for t in locked]
        lines.append("")
    return lines


def render_markdown(report: RunReport) -> str:
    """Heading with run id and totals, a table of transfers, then failures and locks."""
    lines = _heading(report)
    if report.transfers:
        lines += _table(report.transfers) + _problems(report.transfers)
    else:
        lines += ["No transfers were selected.", ""]
    return lines_safe("\n".join(lines))
