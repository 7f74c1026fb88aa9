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

from transfer_runner.modules.claims import PlatformClaim, read_claim
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.gates import domains_accounted_for
from transfer_runner.platforms.base import Account

__all__ = ["transfer_problems", "platform_claims"]


def transfer_problems(ctx: TaskContext) -> list[str]:
    """Every reason found now why the transfer would fail after writing (empty: none)."""
    problems: list[str] = []
    accounted, why = domains_accounted_for(ctx)
    if not accounted:
        problems.append(why)
    claims = platform_claims(ctx)
    others = [c for c in claims.values() if c is not None and c.transfer != ctx.transfer.name]
    for claim in others:
        problems.append(
            f"ticket {claim.ticket} is claimed on the platform by {claim.describe()}: a ticket "
            f"authorizes one transfer; {ctx.transfer.name} needs tickets of its own"
        )
    mine = claims[ctx.transfer.customer_ticket]
    problems += _already_transferred(ctx, others, ours=mine is not None and not others)
    problems += _temporary_domain(ctx)
    return problems


def platform_claims(ctx: TaskContext) -> dict[str, PlatformClaim | None]:
    """The platform claim on each of this transfer's tickets (None: unclaimed), read once."""
    t = ctx.transfer
    claims: dict[str, PlatformClaim | None] = {}
    for ticket_id in (t.customer_ticket, t.reseller_ticket):
        ticket = ctx.platform.get_ticket(ticket_id)
        claims[ticket_id] = read_claim(ticket) if ticket is not None else None
    return claims


def _already_transferred(ctx: TaskContext, others: list[PlatformClaim], *, ours: bool) -> list[str]:
    """A cancelled direct account that this transfer did not cancel: the customer was moved
    (or closed) already. The refusal names the earlier transfer where the platform shows it.
    `ours`: this transfer's claim is on the customer ticket (it got this far before)."""
    t = ctx.transfer
    direct = ctx.platform.get_account(t.customer_account)
    if direct is None or direct.status != "cancelled":
        return []
    if ours or ctx.facts("account.cancel") or ctx.facts("domain.move"):
        return []  # this transfer cancelled it: a resume
    if others:
        by = f" by {others[0].describe()}"
    else:
        earlier = _earlier_credit(ctx)
        by = f" ({earlier})" if earlier else ", not by this transfer"
    return [
        f"the direct account {t.customer_account} is already cancelled{by}: the customer is "
        "not transferred twice"
    ]


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
