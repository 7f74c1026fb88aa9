"""`validate --online`: the manifests checked against the platform and the state store."""

from __future__ import annotations

from collections.abc import Sequence

from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.loader import NodePath, format_path
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform
from transfer_runner.state.base import StateStore

__all__ = ["online_diagnostics"]

Problem = tuple[NodePath, str]


def online_diagnostics(
    transfers: Sequence[Transfer], platform: Platform, state: StateStore
) -> list[Diagnostic]:
    """Accounts exist with the right type, domains belong to the direct account, the
    temporary domain is free, tickets exist and are unused, no completed transfer drifted.
    Read-only; each problem is located at its node in the manifest."""
    out: list[Diagnostic] = []
    for t in transfers:
        for where, message in _problems(t, platform, state):
            line, col = t.locate(*where)
            out.append(Diagnostic(t.path, line, col, message, format_path(where)))
    return out


def _problems(t: Transfer, platform: Platform, state: StateStore) -> list[Problem]:
    record = state.get_transfer(t.name)
    if record and record.status == "succeeded" and record.manifest_sha256 != t.sha256:
        return [(("metadata", "name"), "drift: the manifest changed after the transfer completed")]
    done = record is not None and record.status == "succeeded"
    problems = _account_problems(t, platform, done)
    problems += _ticket_problems(t, platform, state)
    return problems


def _account_problems(t: Transfer, platform: Platform, done: bool) -> list[Problem]:
    problems: list[Problem] = []
    customer = platform.get_account(t.customer_account)
    where = ("spec", "customer", "account")
    if customer is None:
        problems.append((where, f"account {t.customer_account} does not exist"))
    elif customer.type != "direct":
        problems.append((where, f"{t.customer_account} is {customer.type}, not direct"))
    reseller = platform.get_account(t.reseller_account)
    where = ("spec", "reseller", "account")
    if reseller is None:
        problems.append((where, f"account {t.reseller_account} does not exist"))
    elif reseller.type != "reseller":
        problems.append((where, f"{t.reseller_account} is {reseller.type}, not a reseller"))
    if customer is None or done:  # after the cut-over the domains are elsewhere, rightly
        return problems
    for i, domain in enumerate(t.customer_domains):
        if domain not in customer.domains:
            problems.append(
                (("spec", "customer", "domains", i), f"{domain} is not on {t.customer_account}")
            )
    holder = platform.find_account_by_domain(t.temporary_domain)
    if holder is not None and (holder.type != "resold" or holder.parent != t.reseller_account):
        problems.append(
            (("spec", "temporary_domain"), f"{t.temporary_domain} is held by {holder.id}")
        )
    return problems


def _ticket_problems(t: Transfer, platform: Platform, state: StateStore) -> list[Problem]:
    problems: list[Problem] = []
    for role, ticket in (("customer_ticket", t.customer_ticket),
                         ("reseller_ticket", t.reseller_ticket)):  # fmt: skip
        where = ("spec", "authorization", role)
        if platform.get_ticket(ticket) is None:
            problems.append((where, f"ticket {ticket} does not exist"))
        holder = state.ticket_claim(ticket)
        if holder is not None and holder != t.name:
            problems.append((where, f"ticket {ticket} is used by {holder}"))
    return problems
