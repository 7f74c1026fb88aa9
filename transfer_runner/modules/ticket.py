"""Ticket steps: verify an authorization (invariant I1) and tell both parties the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from transfer_runner.authorization import mentions_domain, read_ticket, same_name
from transfer_runner.errors import StepError
from transfer_runner.modules.base import (
    Action,
    ArgSpec,
    Check,
    only_action,
    optional,
    require,
    required,
    write_key,
)
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Ticket

__all__ = ["VerifyTicket", "CommentTickets", "MODULES", "mentions_domain", "ticket_problems"]


def ticket_problems(
    ticket: Ticket,
    *,
    role: str,
    from_account: str,
    domains: Sequence[str],
    reseller_name: str,
    max_age_days: int | None = None,
    now: datetime | None = None,
    reviewed_by: str | None = None,
) -> list[str]:
    """Every reason why `ticket` does not authorize the transfer (empty: it does).

    A ticket that needs review authorizes once a person approved it (`reviewed_by`, from the
    manifest, never from the playbook); nothing overrides a refusal or any other problem."""
    problems: list[str] = []
    if ticket.account != from_account:
        problems.append(
            f"was opened from account {ticket.account}, not from {role} account {from_account}"
        )
    reading = read_ticket(ticket, role=role, domains=domains, reseller_name=reseller_name)
    if reading.outcome == "refused":
        problems.append(f"is refused: it {reading.reason}")
    elif reading.outcome == "needs_review" and not reviewed_by:
        problems.append(
            f"needs review: it {reading.reason} (a person who read it may approve it with "
            "spec.authorization.reviewed_by)"
        )
    if max_age_days is not None:
        age = (now or datetime.now(UTC)) - ticket.created_at
        if age > timedelta(days=max_age_days):
            problems.append(f"is older than {max_age_days} days")
    return problems


def _reseller_identity(ctx: TaskContext, account_id: str, args: Mapping[str, Any]) -> list[str]:
    """The platform's name of the reseller account must be the manifest's reseller name:
    a manifest naming "Northwind IT" with Contoso's account would move the customer under
    Contoso and bill Contoso."""
    name = require(args, "reseller_name", ctx.task_name)
    account = ctx.platform.get_account(require(args, "from_account", ctx.task_name))
    if account is None:
        return [f"comes for reseller account {account_id}, which does not exist"]
    if account.type != "reseller":
        return [f"comes for account {account.id}, a {account.type} account, not a reseller"]
    if not same_name(account.name, name):
        return [
            f"comes for reseller account {account.id}, named {account.name!r} on the "
            f"platform, not {name!r} as the manifest says"
        ]
    return []


def _max_age(args: Mapping[str, Any], task: str) -> int | None:
    value = args.get("max_age_days")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise StepError(task, f"max_age_days must be a whole number of days, not {value!r}")
    return value


class VerifyTicket:
    """Verify one authorization ticket and claim it for this transfer.

    ```yaml
    ticket.verify:
      ticket: T-5001
      role: customer            # customer | reseller
      from_account: C-1001      # the account the ticket must come from
      domains: [acme.com]       # the ticket must name one of them
      reseller_name: Northwind IT   # the customer's ticket must name it
      max_age_days: 90          # optional: refused when older, judged when claimed
    ```
    The claim is recorded in the state store here, and on the platform (a comment, see
    `modules.claims`) before the transfer's first other write: a ticket authorizes one
    transfer only. A ticket that needs review passes when the manifest names who approved it
    (`spec.authorization.reviewed_by`); the approval is in the step's outputs and the plan.
    """

    name: ClassVar[str] = "ticket.verify"
    args: ClassVar[ArgSpec] = {
        "ticket": required(),
        "role": required(),
        "from_account": required(),
        "domains": required(list),
        "reseller_name": required(),
        "max_age_days": optional(int),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        ticket_id = require(args, "ticket", ctx.task_name)
        role = require(args, "role", ctx.task_name)
        if role not in ("customer", "reseller"):
            raise StepError(ctx.task_name, f"role must be customer or reseller, not {role!r}")
        ticket = ctx.platform.get_ticket(ticket_id)
        if ticket is None:
            raise StepError(ctx.task_name, f"{role} ticket {ticket_id} does not exist")
        holder = ctx.run.state.ticket_claim(ticket_id)
        problems = ticket_problems(
            ticket,
            role=role,
            from_account=require(args, "from_account", ctx.task_name),
            domains=require(args, "domains", ctx.task_name, list),
            reseller_name=require(args, "reseller_name", ctx.task_name),
            # Age counts when the ticket is claimed: a transfer resumed days later keeps it.
            max_age_days=None if holder == ctx.transfer.name else _max_age(args, ctx.task_name),
            now=ctx.run.clock.now(),
            reviewed_by=ctx.transfer.reviewed_by,
        )
        if role == "reseller":
            problems += _reseller_identity(ctx, ticket.account, args)
        if problems:
            raise StepError(ctx.task_name, f"{role} ticket {ticket_id} " + "; ".join(problems))
        facts: dict[str, Any] = {"ticket": ticket_id, "role": role, "account": ticket.account}
        review = _review(ctx, ticket, role, args)
        if review:
            facts["review"] = review
            facts["reviewed_by"] = ctx.transfer.reviewed_by
        shown = f" ({review})" if review else ""
        if holder == ctx.transfer.name:
            return Check(reason=f"{role} ticket {ticket_id} verified{shown}", facts=facts)
        if holder is not None:
            raise StepError(ctx.task_name, f"{role} ticket {ticket_id} is already used by {holder}")
        action = Action(
            "ticket.claim",
            ticket_id,
            f"claim {role} ticket {ticket_id} for this transfer{shown}",
            params={"role": role, "transfer": ctx.transfer.name},
        )  # a claim in the state store; the platform's claim comes before the first write
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        ticket_id = str(only_action(check, "ticket.claim").target)
        holder = ctx.run.claim_ticket(ticket_id, ctx.transfer.name)
        if holder != ctx.transfer.name:
            raise StepError(ctx.task_name, f"ticket {ticket_id} is already used by {holder}")
        return {"claimed": True}


def _review(ctx: TaskContext, ticket: Ticket, role: str, args: Mapping[str, Any]) -> str:
    """`needs review: it …; approved by NAME` when the manifest's reviewer approved this
    ticket, else ""."""
    reading = read_ticket(
        ticket,
        role=role,
        domains=require(args, "domains", ctx.task_name, list),
        reseller_name=require(args, "reseller_name", ctx.task_name),
    )
    if reading.outcome != "needs_review":
        return ""
    return f"needs review: it {reading.reason}; approved by {ctx.transfer.reviewed_by}"


class CommentTickets:
    """Comment the outcome on both tickets, once each.

    ```yaml
    ticket.comment:
      tickets: {customer: T-5001, reseller: T-5002}
      new_account: A-1
      domains: [acme.com]
      reseller_name: Northwind IT
      body: "optional text; a summary of the transfer is used when absent"
    ```
    """

    name: ClassVar[str] = "ticket.comment"
    args: ClassVar[ArgSpec] = {
        "tickets": required(dict),
        "new_account": optional(),
        "domains": optional(list),
        "reseller_name": optional(),
        "body": optional(),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        tickets = require(args, "tickets", ctx.task_name, dict)
        pending: dict[str, str] = {}
        actions: list[Action] = []
        # What earlier steps found (credit, fee) is known when the step runs; a plan shows
        # the comment without its text.
        body = None if ctx.check_mode else (args.get("body") or _summary(ctx, args))
        for role, ticket_id in tickets.items():
            key = idempotency_key("ticket-comment", ctx.transfer.name, role)
            ticket = ctx.platform.get_ticket(ticket_id)
            if ticket is None:
                raise StepError(ctx.task_name, f"ticket {ticket_id} does not exist")
            if not any(c.idempotency_key == key for c in ticket.comments):
                pending[role] = ticket_id
                actions.append(
                    Action(
                        "ticket.comment",
                        ticket_id,
                        f"comment on {role} ticket {ticket_id}",
                        key=key,
                        params={"role": role, "body": body},
                    )
                )
        facts = {"tickets": dict(tickets)}
        if not pending:
            return Check(reason="both tickets already carry the outcome", facts=facts)
        return Check(actions=tuple(actions), facts={**facts, "pending": pending})

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        comments = {}
        for action in check.actions:
            comment = ctx.platform.add_ticket_comment(
                str(action.target), action.param("body"), write_key(ctx, action)
            )
            comments[action.param("role")] = comment.id
        return {"comments": comments}


def _summary(ctx: TaskContext, args: Mapping[str, Any]) -> str:
    t = ctx.transfer
    lines = [
        f"Transfer {t.name} completed by transfer-runner.",
        f"Domains {', '.join(args.get('domains') or t.customer_domains)} moved from direct "
        f"account {t.customer_account} to account {args.get('new_account')} under "
        f"{args.get('reseller_name') or t.reseller_name} ({t.reseller_account}).",
    ]
    verify = ctx.facts("data.verify")
    for store, info in sorted((verify.get("stores") or {}).items()):
        lines.append(
            f"{store.capitalize()}: {info.get('messages', 0)} messages exported to S3 and verified."
        )
    credit = ctx.facts("billing.prorate")
    if credit.get("amount"):
        lines.append(f"Pro-ration credit to {t.customer_account}: ${credit['amount']}.")
    subscription = ctx.facts("billing.subscribe")
    if subscription.get("price"):
        lines.append(
            f"Subscription of {args.get('new_account')}: first period {subscription['period']} "
            f"for ${subscription['price']}, billed to {t.reseller_account}."
        )
    charge = ctx.facts("billing.charge")
    if charge.get("amount"):
        lines.append(f"Transfer fee charged to {t.reseller_account}: ${charge['amount']}.")
    return "\n".join(lines)


MODULES = (VerifyTicket(), CommentTickets())
