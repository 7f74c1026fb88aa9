"""Billing steps: the pro-ration credit, the resold subscription and the transfer fee, each
exactly once (I3), each only after the cut-over."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

from transfer_runner.errors import StepError
from transfer_runner.manifest.model import Transfer
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
from transfer_runner.modules.gates import cut_over_done
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Credit, NewSubscription, Subscription

__all__ = [
    "ProrateSubscription",
    "SubscribeAccount",
    "ChargeFee",
    "MODULES",
    "prorate_amount",
    "prorate_key",
    "CENT",
]

CENT = Decimal("0.01")


def prorate_amount(price: Decimal, period_start: date, period_end: date, as_of: date) -> Decimal:
    """The unused part of a period: price x unused whole days / period days, half-up to cents.

    Service ends on `as_of`: that day and the ones after it up to `period_end` (exclusive) are
    unused. A period that has not started is wholly unused; one that has ended, wholly used.
    """
    total = (period_end - period_start).days
    if total <= 0:
        raise ValueError(f"empty billing period {period_start}..{period_end}")
    unused = min(max((period_end - as_of).days, 0), total)
    if as_of < period_start:
        unused = total
    return (price * unused / total).quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value: Any, task: str) -> Decimal:
    try:
        amount = Decimal(str(value))
        if not amount.is_finite() or amount <= 0 or amount > Decimal("1000000"):
            raise StepError(task, f"{value!r} is not a valid amount")
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ArithmeticError, ValueError) as exc:
        raise StepError(task, f"{value!r} is not an amount") from exc


def prorate_key(transfer: Transfer) -> str:
    """`prorate:<direct account id>`: a direct account is cancelled, and credited, once, so the
    key is the platform's identity of the customer, not the manifest's name. A renamed
    manifest applied with another state store finds the first credit (invariant I3)."""
    return idempotency_key("prorate", transfer.customer_account)


def _done_credit(ctx: TaskContext) -> Credit | None:
    """The credit already made for this customer, under the key of this version or, for a
    transfer begun by an earlier version (it has records), under `prorate:<name>`."""
    done = ctx.platform.find_credit(prorate_key(ctx.transfer))
    if done is None and ctx.previous:
        done = ctx.platform.find_credit(idempotency_key("prorate", ctx.transfer.name))
    return done


class ProrateSubscription:
    """Credit the unused part of the direct subscription's current period, once.

    ```yaml
    billing.prorate:
      account: C-1001
    ```
    The platform's cancellation time of the account decides the unused days (see `_as_of`).
    The key is `prorate:<account id>`, the customer's identity on the platform.
    """

    name: ClassVar[str] = "billing.prorate"
    args: ClassVar[ArgSpec] = {"account": required()}

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        done = _done_credit(ctx)
        if done is not None:
            facts = {"credit_id": done.id, "amount": str(done.amount), "account": account}
            return Check(reason=f"credited {done.amount} to {account} ({done.id})", facts=facts)
        _require_cut_over(ctx)
        sub = ctx.platform.get_subscription(account)
        if sub is None:
            return Check(
                reason=f"{account} has no subscription to pro-rate", facts={"amount": None}
            )
        as_of, known = self._as_of(ctx, account)
        amount = prorate_amount(sub.price, sub.period_start, sub.period_end, as_of)
        facts = {
            "account": account,
            "amount": str(amount),
            "as_of": as_of.isoformat(),
            "period": f"{sub.period_start}..{sub.period_end}",
            "price": str(sub.price),
        }
        if amount == 0:
            return Check(reason=f"nothing unused in {account}'s period", facts=facts)
        action = Action(
            "billing.credit",
            account,
            f"credit {amount} to {account} (unused part of {facts['period']} as of {as_of})",
            key=prorate_key(ctx.transfer),
            # before the cut-over the day, hence the amount, is a plan's estimate
            params={"amount": str(amount) if known else None, "period": facts["period"]},
        )
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "billing.credit")
        reason = (
            f"pro-ration of {action.param('period')} for transfer {ctx.transfer.name} "
            f"(run {ctx.run.run_id})"
        )
        amount = Decimal(action.param("amount"))
        credit = ctx.platform.credit(str(action.target), amount, reason, write_key(ctx, action))
        return {"credit_id": credit.id, "amount": str(credit.amount)}

    def _as_of(self, ctx: TaskContext, account: str) -> tuple[date, bool]:
        """The day service ended, and whether it is known: the platform's cancellation time
        (whenever this runs: a resume days later, or a run past midnight, credits the same);
        without it, the day `account.cancel` recorded; before the cancellation, the run's day
        (a plan's estimate; `apply` bills only after the cut-over)."""
        direct = ctx.platform.get_account(account)
        if direct is not None and direct.cancelled_at is not None:
            return direct.cancelled_at.astimezone(UTC).date(), True
        cancelled_on = ctx.facts("account.cancel").get("cancelled_on")
        if cancelled_on:
            return date.fromisoformat(cancelled_on), True
        return ctx.run.today, not ctx.check_mode


class SubscribeAccount:
    """Give the new resold account its subscription, once, from the cut-over day.

    ```yaml
    billing.subscribe:
      account: A-1          # the new account (None in a plan before it exists)
      parent: R-301         # the reseller, billed for it
      users: 40
      domains: 2
      services: [spamstopshere, restoremail]
    ```
    The platform prices it: the reseller's first period runs from the cut-over day (the day
    the platform cancelled the direct account) to the reseller's billing day, pro-rated.
    `plan` shows the platform's quote. The key is `subscription:<direct account id>`.
    """

    name: ClassVar[str] = "billing.subscribe"
    args: ClassVar[ArgSpec] = {
        "account": optional(),
        "parent": required(),
        "users": required(int),
        "domains": required(int),
        "services": required(list),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        task = ctx.task_name
        account = args.get("account")
        if account is None and not ctx.check_mode:
            raise StepError(task, "missing argument 'account'")
        if account is not None:
            current = ctx.platform.get_subscription(require(args, "account", task))
            if current is not None:
                return Check(
                    reason=f"{account} is subscribed: {_period_text(current)}",
                    facts=_subscription_facts(current),
                )
        _require_cut_over(ctx)
        parent = require(args, "parent", task)
        start, known = self._start(ctx)
        spec = NewSubscription(
            users=require(args, "users", task, int),
            domains=require(args, "domains", task, int),
            services=tuple(require(args, "services", task, list)),
            start=start,
        )
        quote = ctx.platform.quote_subscription(parent, spec)
        facts = {
            **_subscription_facts(quote),
            "account": account,
            "parent": parent,
            "users": spec.users,
            "domains": spec.domains,
            "services": list(spec.services),
            "start": spec.start.isoformat(),
        }
        action = Action(
            "billing.subscribe",
            account,
            f"subscribe {account or 'the new account'} to {spec.users} users, {spec.domains} "
            f"domains, {', '.join(spec.services)}: first period {_period_text(quote)}, billed "
            f"to {parent}",
            key=idempotency_key("subscription", ctx.transfer.customer_account),
            params={
                "parent": parent,
                "users": spec.users,
                "domains": spec.domains,
                "services": list(spec.services),
                # before the cut-over its day, hence the price, is a plan's estimate
                "start": spec.start.isoformat() if known else None,
                "price": str(quote.price) if known else None,
            },
        )
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "billing.subscribe")
        p = action.params
        spec = NewSubscription(
            p["users"], p["domains"], tuple(p["services"]), date.fromisoformat(p["start"])
        )
        created = ctx.platform.create_subscription(str(action.target), spec, write_key(ctx, action))
        return _subscription_facts(created)

    def _start(self, ctx: TaskContext) -> tuple[date, bool]:
        """The cut-over day, and whether it is known: when the platform cancelled the direct
        account (else today, the estimate a plan shows before the cut-over)."""
        direct = ctx.platform.get_account(ctx.transfer.customer_account)
        if direct is not None and direct.cancelled_at is not None:
            return direct.cancelled_at.astimezone(UTC).date(), True
        return ctx.run.today, not ctx.check_mode


def _period_text(sub: Subscription) -> str:
    return f"{sub.period_start}..{sub.period_end} for {sub.price}"


def _subscription_facts(sub: Subscription) -> dict[str, Any]:
    return {
        "price": str(sub.price),
        "period": f"{sub.period_start}..{sub.period_end}",
    }


class ChargeFee:
    """Charge the reseller the transfer fee, once (key `transfer-fee:<name>`).

    ```yaml
    billing.charge:
      account: R-301
      amount: "25.00"
    ```
    The idempotency key is always `transfer-fee:<name>`, never taken from the playbook, so
    no playbook edit can charge a transfer twice.
    """

    name: ClassVar[str] = "billing.charge"
    args: ClassVar[ArgSpec] = {
        "account": required(),
        "amount": required(str, int, Decimal),
        "key": optional(),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account = require(args, "account", ctx.task_name)
        amount = _money(require(args, "amount", ctx.task_name, (str, int, Decimal)), ctx.task_name)
        key = idempotency_key("transfer-fee", ctx.transfer.name)
        if args.get("key") not in (None, key):
            raise StepError(ctx.task_name, f"the fee's idempotency key is always {key!r}")
        done = ctx.platform.find_charge(key)
        if done is not None:
            facts = {"charge_id": done.id, "amount": str(done.amount), "account": done.account}
            return Check(reason=f"charged {done.amount} to {done.account} ({done.id})", facts=facts)
        _require_cut_over(ctx)
        facts = {"account": account, "amount": str(amount), "key": key}
        action = Action(
            "billing.charge",
            account,
            f"charge {amount} transfer fee to {account}",
            key=key,
            params={"amount": str(amount)},
        )
        return Check(actions=(action,), facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "billing.charge")
        reason = f"transfer fee for {ctx.transfer.name}"
        amount = Decimal(action.param("amount"))
        charge = ctx.platform.charge(str(action.target), amount, reason, write_key(ctx, action))
        return {"charge_id": charge.id, "amount": str(charge.amount)}


def _require_cut_over(ctx: TaskContext) -> None:
    """Money follows the move: outside `plan`, StepError until the cut-over is done."""
    done, why = cut_over_done(ctx)
    if not done and not ctx.check_mode:
        raise StepError(ctx.task_name, f"refusing to bill before the cut-over: {why}")


MODULES = (ProrateSubscription(), SubscribeAccount(), ChargeFee())
