"""The transfer's precheck: what a later step would fail on, found before the first write.

Run by the engine before the first task, in `plan` and in `apply` alike, from platform reads
only. A transfer that fails it is reported failed with every reason and nothing written:

- the manifest's domains are exactly the direct account's (none stranded, none misspelt);
- the customer is not transferred already by another transfer (its direct account cancelled,
  not by this one), and neither ticket is claimed on the platform by another transfer;
- the temporary domain is free, or held by an account the transfer adopts (resold, under the
  reseller, active) whose domain limit takes every customer domain.

Ticket wording, age and the reseller's identity are judged by the `ticket.verify` steps, which
run first and write nothing to the platform either (see `claims`).
"""

from __future__ import annotations

from transfer_runner.engine.context import TaskContext
from transfer_runner.modules.claims import PlatformClaim, read_claim
from transfer_runner.modules.gates import domains_accounted_for
from transfer_runner.platforms.base import Account

__all__ = ["transfer_problems", "earlier_claims"]


def transfer_problems(ctx: TaskContext) -> list[str]:
    """Every reason found now why the transfer would fail after writing (empty: none)."""
    problems: list[str] = []
    accounted, why = domains_accounted_for(ctx)
    if not accounted:
        problems.append(why)
    claims = earlier_claims(ctx)
    for claim in claims:
        problems.append(
            f"ticket {claim.ticket} is claimed on the platform by {claim.describe()}: a ticket "
            f"authorizes one transfer; {ctx.transfer.name} needs tickets of its own"
        )
    problems += _already_transferred(ctx, claims)
    problems += _temporary_domain(ctx)
    return problems


def earlier_claims(ctx: TaskContext) -> list[PlatformClaim]:
    """The platform claims on this transfer's tickets made by another transfer."""
    t = ctx.transfer
    found = []
    for ticket_id in (t.customer_ticket, t.reseller_ticket):
        ticket = ctx.platform.get_ticket(ticket_id)
        claim = read_claim(ticket) if ticket is not None else None
        if claim is not None and claim.transfer != t.name:
            found.append(claim)
    return found


def _already_transferred(ctx: TaskContext, claims: list[PlatformClaim]) -> list[str]:
    """A cancelled direct account that this transfer did not cancel: the customer was moved
    (or closed) already. The refusal names the earlier transfer where the platform shows it."""
    t = ctx.transfer
    direct = ctx.platform.get_account(t.customer_account)
    if direct is None or direct.status != "cancelled":
        return []
    if _ours(ctx):
        return []  # this transfer cancelled it: a resume
    earlier = _earlier_credit(ctx)
    by = (
        f" by {claims[0].describe()}"
        if claims
        else f" ({earlier})"
        if earlier
        else ", not by this transfer"
    )
    return [
        f"the direct account {t.customer_account} is already cancelled{by}: the customer is "
        "not transferred twice"
    ]


def _ours(ctx: TaskContext) -> bool:
    """Whether this transfer (its state, or its claim on the customer ticket) got this far."""
    if ctx.facts("account.cancel") or ctx.facts("domain.move"):
        return True
    ticket = ctx.platform.get_ticket(ctx.transfer.customer_ticket)
    claim = read_claim(ticket) if ticket is not None else None
    return claim is not None and claim.transfer == ctx.transfer.name


def _earlier_credit(ctx: TaskContext) -> str:
    from transfer_runner.modules.billing import prorate_key

    credit = ctx.platform.find_credit(prorate_key(ctx.transfer))
    if credit is None:
        return ""
    return f"credited {credit.amount} on {credit.created_at:%Y-%m-%d}: {credit.reason}"


def _temporary_domain(ctx: TaskContext) -> list[str]:
    t = ctx.transfer
    holder = ctx.platform.find_account_by_domain(t.temporary_domain)
    if holder is None or holder.id == t.customer_account:
        return []
    problems = _not_adoptable(holder, t.reseller_account)
    if problems:
        return [
            f"the temporary domain {t.temporary_domain} is held by account {holder.id}, which "
            f"cannot become the new account: {'; '.join(problems)}"
        ]
    wanted = len(set(t.customer_domains))
    if holder.max_domains < wanted:
        return [
            f"account {holder.id} (to be adopted on {t.temporary_domain}) allows "
            f"{holder.max_domains} domain(s), fewer than the customer's {wanted}"
        ]
    return []


def _not_adoptable(account: Account, reseller: str) -> list[str]:
    problems = []
    if account.type != "resold":
        problems.append(f"it is a {account.type} account")
    if account.parent != reseller:
        problems.append(f"its reseller is {account.parent}, not {reseller}")
    if account.status != "active":
        problems.append(f"it is {account.status}")
    return problems
