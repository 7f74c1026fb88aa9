"""`validate --online`: the manifests checked against the platform and the state store."""

from __future__ import annotations

from collections.abc import Sequence

from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform
from transfer_runner.state.base import StateStore

__all__ = ["online_diagnostics"]


def online_diagnostics(
    transfers: Sequence[Transfer], platform: Platform, state: StateStore
) -> list[Diagnostic]:
    """Accounts exist with the right type, domains belong to the direct account, the
    temporary domain is free, tickets exist, and no completed transfer has drifted."""
    out: list[Diagnostic] = []
    for t in transfers:
        out.extend(
            Diagnostic(t.path, 0, 0, msg, where) for where, msg in _problems(t, platform, state)
        )
    return out


def _problems(t: Transfer, platform: Platform, state: StateStore) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    record = state.get_transfer(t.name)
    if record and record.status == "succeeded" and record.manifest_sha256 != t.sha256:
        problems.append(
            ("metadata.name", "drift: the manifest changed after the transfer completed")
        )
        return problems
    done = record is not None and record.status == "succeeded"
    customer = platform.get_account(t.customer_account)
    if customer is None:
        problems.append(("spec.customer.account", f"account {t.customer_account} does not exist"))
    elif customer.type != "direct":
        problems.append(
            ("spec.customer.account", f"{t.customer_account} is {customer.type}, not direct")
        )
    reseller = platform.get_account(t.reseller_account)
    if reseller is None:
        problems.append(("spec.reseller.account", f"account {t.reseller_account} does not exist"))
    elif reseller.type != "reseller":
        problems.append(
            ("spec.reseller.account", f"{t.reseller_account} is {reseller.type}, not a reseller")
        )
    if customer is not None and not done:
        for domain in t.customer_domains:
            if domain not in customer.domains:
                problems.append(
                    ("spec.customer.domains", f"{domain} is not on {t.customer_account}")
                )
        holder = platform.find_account_by_domain(t.temporary_domain)
        if holder is not None and (holder.type != "resold" or holder.parent != t.reseller_account):
            problems.append(
                ("spec.temporary_domain", f"{t.temporary_domain} is held by {holder.id}")
            )
    for where, ticket in (
        ("customer_ticket", t.customer_ticket),
        ("reseller_ticket", t.reseller_ticket),
    ):
        if platform.get_ticket(ticket) is None:
            problems.append((f"spec.authorization.{where}", f"ticket {ticket} does not exist"))
        holder_name = state.ticket_claim(ticket)
        if holder_name is not None and holder_name != t.name:
            problems.append(
                (f"spec.authorization.{where}", f"ticket {ticket} is used by {holder_name}")
            )
    return problems
