"""`plan --format markdown`: what a reviewer needs on a pull request, per transfer.

The accounts and domains, each store's messages and bytes still to export, the credit, the
first period billed to the reseller and the transfer fee, the writes the plan would make, and
what stops a transfer (failed checks, drift). Read from the plan's step facts by module, like
`rows.py`. All text is escaped (`markdown.md_escape`): a manifest or a ticket cannot inject
markup into the comment.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from transfer_runner.engine.results import TRANSFER_STATUSES, RunReport, TransferResult
from transfer_runner.platforms.base import STORES
from transfer_runner.reporting.markdown import md_escape
from transfer_runner.reporting.rows import accounts_of, amount_of
from transfer_runner.shown import lines_safe

__all__ = ["render_plan_markdown"]


def render_plan_markdown(report: RunReport) -> str:
    """The plan as a markdown comment."""
    counts = {s: sum(t.status == s for t in report.transfers) for s in TRANSFER_STATUSES}
    shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n)
    facts = [_facts(t) for t in report.transfers]
    messages = sum(f["messages"] for f in facts)
    size = sum(f["bytes"] for f in facts)
    credits = sum((f["credit"] for f in facts if f["credit"] is not None), Decimal("0.00"))
    fees = sum((f["fee"] for f in facts if f["fee"] is not None), Decimal("0.00"))
    lines = [
        f"## transfer-runner plan: {len(report.transfers)} transfer(s), {shown or 'none'}",
        "",
        "| to export | credits to customers | transfer fees |",
        "|---:|---:|---:|",
        f"| {messages:,} messages, {_size(size)} | {credits} | {fees} |",
    ]
    for transfer, found in zip(report.transfers, facts, strict=True):
        lines += ["", *_transfer(transfer, found)]
    return lines_safe("\n".join(lines)) + "\n"


def _transfer(t: TransferResult, f: Mapping[str, Any]) -> list[str]:
    where = f" (`{md_escape(t.path)}`)" if t.path else ""
    lines = [f"### {md_escape(t.name)}: {t.status}{where}", ""]
    rows = [
        ("customer → reseller", f"{f['customer'] or '?'} → {f['reseller'] or '?'}"),
        ("domains", ", ".join(f["domains"])),
        *((store, text) for store, text in f["stores"].items()),
        ("credit", f"{f['credit']} to {f['customer']}" if f["credit"] is not None else ""),
        ("first period", f["period"]),
        ("transfer fee", f"{f['fee']} to {f['reseller']}" if f["fee"] is not None else ""),
    ]
    rows = [(k, v) for k, v in rows if v]
    if rows:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {md_escape(k)} | {md_escape(v)} |" for k, v in rows]
    problems = [f"{s.name}: {s.message}" for s in t.steps if s.status == "failed"]
    if t.status == "failed" and t.message and not problems:
        problems.append(t.message)
    if problems:
        lines += ["", *[f"- :warning: {md_escape(p)}" for p in problems]]
    changes = [str(a) for s in t.steps if s.status == "changed" for a in s.actions]
    if changes:
        summary = f"{len(changes)} change(s)"
        lines += ["", f"<details><summary>{summary}</summary>", ""]
        lines += [f"- {md_escape(c)}" for c in changes]
        lines += ["", "</details>"]
    return lines


def _facts(t: TransferResult) -> dict[str, Any]:
    out: dict[str, Mapping[str, Any]] = {}
    customer, reseller = accounts_of(t.steps)
    stores: dict[str, str] = {}
    messages = size = 0
    for step in t.steps:
        outputs = step.outputs
        out[step.module] = outputs
        if step.module == "data.export" and outputs.get("store") in STORES:
            n, b = int(outputs.get("new_messages") or 0), int(outputs.get("new_bytes") or 0)
            stores[str(outputs["store"])] = f"{n:,} messages, {_size(b)} to export"
            messages, size = messages + n, size + b
    subscribe = out.get("billing.subscribe", {})
    period = ""
    if subscribe.get("price"):
        period = f"{subscribe['price']} for {subscribe.get('period', '')}"
    domains = out.get("domain.move", {}).get("domains") or []
    return {
        "customer": customer or str(out.get("account.cancel", {}).get("account") or ""),
        "reseller": reseller or str(out.get("billing.charge", {}).get("account") or ""),
        "domains": [str(d) for d in domains],
        "stores": {s: stores[s] for s in STORES if s in stores},
        "messages": messages,
        "bytes": size,
        "credit": amount_of(out.get("billing.prorate", {}).get("amount")),
        "fee": amount_of(out.get("billing.charge", {}).get("amount")),
        "period": period,
    }


def _size(n: int) -> str:
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
