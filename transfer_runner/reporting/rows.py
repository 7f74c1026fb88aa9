"""One row per transfer of a run: what support, the reseller and a spreadsheet need.

Built from a `RunReport` and the manifest facts recorded when each transfer started
(`Transfer.facts()`), reading step outputs by module (`account.ensure`, `domain.move`,
`billing.prorate`, ...) so renamed steps in a custom playbook still fill the row. A transfer
of a run before facts were recorded takes its accounts from its ticket checks, and has no labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from transfer_runner.engine.results import RunReport, StepResult, TransferResult
from transfer_runner.platforms.base import STORES
from transfer_runner.utc import seconds_between

__all__ = ["TransferRow", "Wave", "accounts_of", "amount_of", "label_matches", "rows_of"]


@dataclass(frozen=True)
class TransferRow:
    """One transfer in one run, flattened."""

    run_id: str
    name: str
    status: str
    customer_account: str = ""
    reseller_account: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    new_account: str = ""
    domains_moved: tuple[str, ...] = ()
    messages: Mapping[str, int] = field(default_factory=dict)  # per store
    bytes: Mapping[str, int] = field(default_factory=dict)  # per store
    credit: Decimal | None = None
    credit_id: str = ""
    fee: Decimal | None = None
    charge_id: str = ""
    receipt: str = ""
    failed_step: str = ""
    message: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    path: str = ""
    steps: tuple[StepResult, ...] = ()  # the steps this run took (a timeline's segments)

    @property
    def duration_s(self) -> float:
        """Seconds from its first step's start to its last step's end (0 when it had none)."""
        return seconds_between(self.started_at, self.ended_at)


@dataclass(frozen=True)
class Wave:
    """Runs merged into one view: the runs (without their transfers), oldest first, and a row
    per transfer, each as its latest run left it."""

    runs: tuple[RunReport, ...]
    rows: list[TransferRow]


def rows_of(
    report: RunReport,
    facts: Mapping[str, Mapping[str, Any]],
    earlier: Mapping[str, Sequence[StepResult]] | None = None,
) -> list[TransferRow]:
    """A row per transfer of `report`, in its order. A transfer that ran no step in this run
    (one already complete) takes its figures from `earlier`: its latest recorded steps."""
    earlier = earlier or {}
    rows = []
    for t in report.transfers:
        own = t.steps
        if not t.steps and earlier.get(t.name):
            t = replace(t, steps=tuple(earlier[t.name]))
        rows.append(replace(_row(report.run_id, t, facts.get(t.name) or {}), steps=own))
    return rows


def label_matches(labels: Mapping[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    """True when `labels` has every wanted key with its value."""
    return all(labels.get(key) == value for key, value in wanted)


def _row(run_id: str, transfer: TransferResult, facts: Mapping[str, Any]) -> TransferRow:
    by_module = _last_by_module(transfer.steps)
    out = {module: step.outputs for module, step in by_module.items()}
    customer, reseller = accounts_of(transfer.steps)
    failed = next((s for s in transfer.steps if s.status == "failed"), None)
    stores = _store_figures(transfer.steps, out)
    credit = out.get("billing.prorate", {})
    charge = out.get("billing.charge", {})
    return TransferRow(
        run_id=run_id,
        name=transfer.name,
        status=transfer.status,
        customer_account=str(facts.get("customer_account") or customer),
        reseller_account=str(facts.get("reseller_account") or reseller),
        labels={str(k): str(v) for k, v in dict(facts.get("labels") or {}).items()},
        new_account=str(out.get("account.ensure", {}).get("account_id") or ""),
        domains_moved=_moved(by_module.get("domain.move")),
        messages={s: n for s, (n, _) in stores.items()},
        bytes={s: b for s, (_, b) in stores.items()},
        credit=amount_of(credit.get("amount")),
        credit_id=str(credit.get("credit_id") or ""),
        fee=amount_of(charge.get("amount")),
        charge_id=str(charge.get("charge_id") or ""),
        receipt=str(_receipt(out)),
        failed_step=failed.name if failed else "",
        message=transfer.message,
        started_at=min((s.started_at for s in transfer.steps if s.started_at), default=None),
        ended_at=max((s.ended_at for s in transfer.steps if s.ended_at), default=None),
        path=str(facts.get("path") or transfer.path),
    )


def _last_by_module(steps: Iterable[StepResult]) -> dict[str, StepResult]:
    """The last step of each module that ran (was not skipped) and left outputs."""
    found: dict[str, StepResult] = {}
    for step in steps:
        if step.status in ("ok", "changed") and step.outputs:
            found[step.module] = step
    return found


def accounts_of(steps: Iterable[StepResult]) -> tuple[str, str]:
    """(customer, reseller) accounts as the ticket checks recorded them."""
    accounts = {"customer": "", "reseller": ""}
    for step in steps:
        if step.module == "ticket.verify" and step.outputs.get("role") in accounts:
            accounts[str(step.outputs["role"])] = str(step.outputs.get("account") or "")
    return accounts["customer"], accounts["reseller"]


def _moved(step: StepResult | None) -> tuple[str, ...]:
    """Domains on the new account after the move step: those it moved, or, when it found
    them all moved already (ok), the domains it checked."""
    if step is None:
        return ()
    outputs = step.outputs
    names = outputs.get("moved") or (outputs.get("domains") if step.status == "ok" else None)
    return tuple(str(d) for d in names or ())


def _store_figures(
    steps: Iterable[StepResult], out: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[int, int]]:
    """(messages, bytes) per store from the latest verification (the final pass's when it
    ran), else from each store's export."""
    for module in ("data.final_sync", "data.verify"):
        stores = out.get(module, {}).get("stores")
        if isinstance(stores, Mapping) and stores:
            return {
                s: (int(v.get("messages") or 0), int(v.get("bytes") or 0))
                for s, v in stores.items()
                if s in STORES and isinstance(v, Mapping)
            }
    return {
        str(step.outputs["store"]): (
            int(step.outputs.get("messages") or 0),
            int(step.outputs.get("bytes") or 0),
        )
        for step in steps
        if step.module == "data.export" and step.outputs.get("store") in STORES
    }


def _receipt(out: Mapping[str, Mapping[str, Any]]) -> str:
    for module in ("data.final_sync", "data.verify"):
        receipt = out.get(module, {}).get("receipt")
        if receipt:
            return str(receipt)
    return ""


def amount_of(value: Any) -> Decimal | None:
    """A step output's amount as Decimal (None when absent or not a number)."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
