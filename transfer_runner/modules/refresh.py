"""Refresh: does the platform still show what a completed transfer did?

`plan` answers a completed transfer from the state store; with refresh (its default) it also
reads the platform, as `terraform plan` does, so that a hand-made change after the transfer
(drift) is seen: the new account cancelled, a customer domain moved away, the temporary domain
put back, the direct account active again, the fee or the credit gone. It checks only what the
transfer's recorded steps say they did (a custom playbook without a step is not held to it),
with at most four reads per transfer: the two accounts, the fee, the credit.
"""

from __future__ import annotations

from collections.abc import Mapping

from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Platform
from transfer_runner.state.base import StepRecord

__all__ = ["platform_drift"]


def platform_drift(
    platform: Platform, transfer: Transfer, recorded: Mapping[str, StepRecord]
) -> list[str]:
    """What differs on the platform from the completed transfer's records ([] if nothing)."""
    done = {r.module: r for r in recorded.values() if r.status in ("ok", "changed")}
    problems: list[str] = []
    ensured = done.get("account.ensure")
    if ensured is not None and ensured.outputs.get("account_id"):
        problems += _new_account(platform, transfer, str(ensured.outputs["account_id"]),
                                 moved="domain.move" in done,
                                 temporary_removed="domain.remove" in done)  # fmt: skip
    if "account.cancel" in done:
        direct = platform.get_account(transfer.customer_account)
        if direct is None:
            problems.append(f"the direct account {transfer.customer_account} is gone")
        elif direct.status != "cancelled":
            problems.append(f"the direct account {transfer.customer_account} is {direct.status} "
                            "again (it was cancelled)")  # fmt: skip
    charged = done.get("billing.charge")
    if charged is not None and charged.outputs.get("charge_id"):
        fee = platform.find_charge(idempotency_key("transfer-fee", transfer.name))
        if fee is None:
            problems.append(f"the transfer fee charge {charged.outputs['charge_id']} is gone")
    credited = done.get("billing.prorate")
    if credited is not None and credited.outputs.get("credit_id"):
        credit = platform.find_credit(idempotency_key("prorate", transfer.customer_account))
        if credit is None:  # a transfer begun by an earlier version keyed it by name
            credit = platform.find_credit(idempotency_key("prorate", transfer.name))
        if credit is None:
            problems.append(f"the pro-ration credit {credited.outputs['credit_id']} is gone")
    return problems


def _new_account(
    platform: Platform, transfer: Transfer, account_id: str, *, moved: bool,
    temporary_removed: bool,
) -> list[str]:  # fmt: skip
    new = platform.get_account(account_id)
    if new is None:
        return [f"the new account {account_id} is gone"]
    problems = []
    if new.status != "active":
        problems.append(f"the new account {account_id} is {new.status}")
    missing = [d for d in transfer.customer_domains if moved and d not in new.domains]
    for domain in missing:
        holder = platform.find_account_by_domain(domain)
        where = f"on {holder.id}" if holder is not None else "on no account"
        problems.append(f"{domain} is not on the new account {account_id} ({where})")
    if temporary_removed and transfer.temporary_domain in new.domains:
        problems.append(f"the temporary domain {transfer.temporary_domain} is back on "
                        f"{account_id}")  # fmt: skip
    return problems
