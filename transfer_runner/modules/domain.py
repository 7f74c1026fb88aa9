"""Domain steps: move the customer's domains (I4, gated by I2) and remove the temporary one."""

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
from transfer_runner.modules.gates import authorizations_hold, exports_verified
from transfer_runner.modules.keys import idempotency_key

__all__ = ["MoveDomains", "RemoveDomain", "MODULES"]


class MoveDomains:
    """Move each domain from the direct account to the new one, detach and attach back to back.

    ```yaml
    domain.move:
      domains: [acme.com, acme.net]
      from_account: C-1001
      to_account: A-1
    ```
    The platform's `move_domain` puts a domain back where it was if the attach fails, so a
    domain is on exactly one account at every instant and unrouted as briefly as possible.
    """

    name: ClassVar[str] = "domain.move"
    args: ClassVar[ArgSpec] = {
        "domains": required(list),
        "from_account": required(),
        "to_account": optional(),
    }

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        domains = require(args, "domains", ctx.task_name, list)
        source = require(args, "from_account", ctx.task_name)
        target = args.get("to_account")
        if not target and not ctx.check_mode:
            raise StepError(ctx.task_name, "missing argument 'to_account'")
        pending = []
        for domain in domains:
            holder = ctx.platform.find_account_by_domain(domain)
            holder_id = holder.id if holder else None
            if target and holder_id == target:
                continue
            if holder_id != source:
                where = f"account {holder_id}" if holder_id else "no account"
                raise StepError(ctx.task_name, f"{domain} is on {where}, expected {source}")
            pending.append(domain)
        facts = {"domains": list(domains), "account": target}
        if not pending:
            return Check(reason=f"every domain is on {target}", facts=facts)
        verified, why = exports_verified(ctx)
        if not verified and not ctx.check_mode:
            raise StepError(ctx.task_name, f"refusing to detach domains from {source}: {why}")
        later = "" if verified else " (after the exports are verified)"
        actions = tuple(
            Action(
                "domain.move",
                domain,
                f"move {domain} from {source} to {target or 'the new account'}{later}",
                key=idempotency_key("domain-move", ctx.transfer.name, domain),
                params={"from": source, "to": target or None},
            )
            for domain in pending
        )
        return Check(actions=actions, facts={**facts, "pending": pending})

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        verified, why = exports_verified(ctx)
        if not verified:
            raise StepError(ctx.task_name, f"refusing to detach domains: {why}")
        authorized, why = authorizations_hold(ctx)  # a withdrawal stops the cut-over
        if not authorized:
            raise StepError(ctx.task_name, f"refusing to move the domains: {why}")
        moved = []
        for action in check.actions:
            domain = str(action.target)
            to = action.param("to")
            ctx.platform.move_domain(domain, action.param("from"), to, write_key(ctx, action))
            moved.append(domain)
        return {"moved": moved}


class RemoveDomain:
    """Detach the temporary domain from the new account.

    ```yaml
    domain.remove:
      account: A-1
      domain: gdi.acme.com
    ```
    """

    name: ClassVar[str] = "domain.remove"
    args: ClassVar[ArgSpec] = {"account": optional(), "domain": required()}

    def check(self, ctx: TaskContext, args: Mapping[str, Any]) -> Check:
        domain = require(args, "domain", ctx.task_name)
        if domain != ctx.transfer.temporary_domain:
            raise StepError(
                ctx.task_name,
                f"only the temporary domain {ctx.transfer.temporary_domain} may be removed, "
                f"not {domain}",
            )
        account = args.get("account")
        holder = ctx.platform.find_account_by_domain(domain)
        facts = {"domain": domain}
        key = idempotency_key("domain-detach", ctx.transfer.name, domain)
        if not account and ctx.check_mode:
            action = Action(
                "domain.detach",
                domain,
                f"detach {domain} from the new account",
                key=key,
                params={"from": None},
            )
            return Check(actions=(action,), facts=facts)
        if holder is None:
            return Check(reason=f"{domain} is on no account", facts=facts)
        if (
            (account and holder.id != account)
            or holder.type != "resold"
            or (holder.parent != ctx.transfer.reseller_account)
        ):
            raise StepError(
                ctx.task_name, f"{domain} is on account {holder.id}, not the new resold account"
            )
        action = Action(
            "domain.detach",
            domain,
            f"detach {domain} from {holder.id}",
            key=key,
            params={"from": holder.id},
        )
        return Check(actions=(action,), facts={**facts, "from": holder.id})

    def apply(self, ctx: TaskContext, args: Mapping[str, Any], check: Check) -> dict[str, Any]:
        action = only_action(check, "domain.detach")
        domain = str(action.target)
        ctx.platform.detach_domain(action.param("from"), domain, write_key(ctx, action))
        return {"removed": domain}


MODULES = (MoveDomains(), RemoveDomain())
