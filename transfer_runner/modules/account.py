"""Account steps: ensure the new resold account, cancel the direct one (gated, I2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
from transfer_runner.modules.gates import (
    authorizations_hold,
    domains_accounted_for,
    source_covered,
)
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Account, NewAccount

__all__ = ["EnsureAccount", "CancelAccount", "MODULES"]


class EnsureAccount:
    """Ensure exactly one resold account for the customer under the reseller.

    ```yaml
    account.ensure:
      parent: R-301
      name: acme.com
      domain: gdi.acme.com          # the temporary domain it is created on
      customer_domains: [acme.com]  # to find it again after the domains moved
      users: 40
      max_domains: 2
      services: [spamstopshere]
    ```
    An account the reseller already created on the temporary domain is adopted when it matches
    (resold, same parent, active, same users and services); any other holder is a conflict.
    """

    name: ClassVar[str] = "account.ensure"
    args: ClassVar[ArgSpec] = {
        "parent": required(),
        "name": required(),
        "domain": required(),
        "customer_domains": optional(list),
        "users": required(int),
        "max_domains": required(int),
        "services": required(list),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        wanted = _wanted(ctx, args)
        accounted, why = domains_accounted_for(ctx)  # before the first platform write
        if not accounted:
            raise StepError(ctx.task_name, why)
        existing = self._find(ctx, args, wanted)
        if existing is None:
            action = Action(
                "account.create",
                wanted.domain,
                f"create a resold account under {wanted.parent} on {wanted.domain} "
                f"({wanted.users} users, {wanted.max_domains} domains, "
                f"{', '.join(wanted.services)})",
                key=idempotency_key("account", ctx.transfer.name),
                params={
                    "parent": wanted.parent,
                    "name": wanted.name,
                    "users": wanted.users,
                    "max_domains": wanted.max_domains,
                    "services": list(wanted.services),
                },
                per_attempt=True,
            )
            return Check(actions=(action,), facts={"account_id": None, "adopted": False})
        problems = _mismatches(existing, wanted)
        if problems:
            raise StepError(
                ctx.task_name,
                f"account {existing.id} holds {wanted.domain} but conflicts: {'; '.join(problems)}",
            )
        created = ctx.facts(self.name).get("created", False)
        facts = {"account_id": existing.id, "adopted": not created, "created": created}
        return Check(reason=f"account {existing.id} exists under {wanted.parent}", facts=facts)

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "account.create")
        p = action.params
        wanted = NewAccount(
            parent=p["parent"],
            name=p["name"],
            domain=str(action.target),
            users=p["users"],
            max_domains=p["max_domains"],
            services=tuple(p["services"]),
        )
        account = ctx.platform.create_account(wanted, write_key(ctx, action))
        return {"account_id": account.id, "adopted": False, "created": True}

    def _find(
        self, ctx: TaskContext, args: Mapping[str, Any], wanted: NewAccount
    ) -> Account | None:
        known = ctx.facts(self.name).get("account_id")
        if known:
            account = ctx.platform.get_account(known)
            if account is not None:
                return account
        holder = ctx.platform.find_account_by_domain(wanted.domain)
        if holder is not None:
            return holder
        # After the cut-over the temporary domain is gone: find it by a moved customer domain.
        for domain in args.get("customer_domains") or ():
            holder = ctx.platform.find_account_by_domain(domain)
            if holder is not None and holder.type == "resold" and holder.parent == wanted.parent:
                return holder
        return None


def _wanted(ctx: TaskContext, args: Mapping[str, Any]) -> NewAccount:
    task = ctx.task_name
    return NewAccount(
        parent=require(args, "parent", task),
        name=require(args, "name", task),
        domain=require(args, "domain", task),
        users=require(args, "users", task, int),
        max_domains=require(args, "max_domains", task, int),
        services=tuple(require(args, "services", task, list)),
    )


def _mismatches(account: Account, wanted: NewAccount) -> list[str]:
    problems = []
    if account.type != "resold":
        problems.append(f"it is a {account.type} account, not resold")
    if account.parent != wanted.parent:
        problems.append(f"its reseller is {account.parent}, not {wanted.parent}")
    if account.status != "active":
        problems.append(f"it is {account.status}")
    if account.users != wanted.users:
        problems.append(f"it has {account.users} users, the manifest says {wanted.users}")
    if sorted(account.services) != sorted(wanted.services):
        problems.append(
            f"its services are {', '.join(sorted(account.services))}, "
            f"the manifest says {', '.join(sorted(wanted.services))}"
        )
    return problems


class CancelAccount:
    """Cancel the direct account, only when it is quiescent and all it holds is exported.

    The gate (invariant I2) lists the account's messages at that moment: it refuses while the
    account still holds a domain (mail could still arrive) or while any message it holds is
    not in the verified export by id and SHA-256 (or, for stores set to migrate, not in the
    new account).

    ```yaml
    account.cancel:
      account: C-1001
    ```
    """

    name: ClassVar[str] = "account.cancel"
    args: ClassVar[ArgSpec] = {"account": required()}

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        account_id = require(args, "account", ctx.task_name)
        account = ctx.platform.get_account(account_id)
        if account is None:
            raise StepError(ctx.task_name, f"direct account {account_id} does not exist")
        if account.status == "cancelled":
            cancelled_on = ctx.facts(self.name).get("cancelled_on")
            facts = {"account": account_id, "cancelled_on": cancelled_on}
            return Check(reason=f"account {account_id} is cancelled", facts=facts)
        # The gate lists whole mailboxes: `apply` runs it once, right before the write.
        action = Action(
            "account.cancel",
            account_id,
            f"cancel direct account {account_id} (once all it holds is in the export)",
            key=idempotency_key("cancel", ctx.transfer.name),
        )
        return Check(actions=(action,), facts={"account": account_id})

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "account.cancel")
        account_id = str(action.target)
        authorized, why = authorizations_hold(ctx)  # a withdrawal stops the cut-over
        if not authorized:
            raise StepError(ctx.task_name, f"refusing to cancel {account_id}: {why}")
        covered, why = source_covered(ctx, account_id)  # right before the write
        if not covered:
            raise StepError(ctx.task_name, f"refusing to cancel {account_id}: {why}")
        account = ctx.platform.cancel_account(account_id, write_key(ctx, action))
        when = account.cancelled_at.date() if account.cancelled_at else ctx.run.today
        return {"status": account.status, "cancelled_on": when.isoformat()}


MODULES = (EnsureAccount(), CancelAccount())
