"""Safety gates read from the state store and the platform, never from templated arguments.

Invariant I1, right before the point of no return:
- `authorizations_hold`: both tickets are read again and must still authorize the transfer, so
  a customer or reseller who withdraws (a later comment, a rejection) stops the cut-over.

Invariant I2, on live mailboxes:
- `exports_verified`: the direct account's domains do not move until every store the manifest
  does not `skip` has a recorded, successful verification of a full export pass.
- `source_covered`: the direct account is not cancelled unless it receives no mail any more
  (it holds no domain) and every message it holds at that moment is in the verified export, by
  id and SHA-256, and (for stores set to `migrate`) in the new account. An id-set check at the
  gate, never a count: one message expired and one arrived leave the counts equal.
A playbook edit cannot bypass these: the stores come from the manifest.
"""

from __future__ import annotations

from transfer_runner.errors import NotFound
from transfer_runner.export.index import read_index
from transfer_runner.export.layout import store_layout
from transfer_runner.export.source import iter_messages
from transfer_runner.export.verifier import source_digest
from transfer_runner.modules.context import TaskContext
from transfer_runner.modules.verification import prior_verification
from transfer_runner.platforms.base import STORES, Store

__all__ = [
    "exports_verified",
    "source_covered",
    "authorizations_hold",
    "domains_accounted_for",
    "cut_over_done",
]


def authorizations_hold(ctx: TaskContext) -> tuple[bool, str]:
    """(True, "") when both tickets, read now, still authorize this transfer."""
    from transfer_runner.modules.ticket import ticket_problems

    t = ctx.transfer
    for role, ticket_id, account in (
        ("customer", t.customer_ticket, t.customer_account),
        ("reseller", t.reseller_ticket, t.reseller_account),
    ):
        ticket = ctx.platform.get_ticket(ticket_id)
        if ticket is None:
            return False, f"the {role} ticket {ticket_id} is gone"
        problems = ticket_problems(
            ticket,
            role=role,
            from_account=account,
            domains=list(t.customer_domains),
            reseller_name=t.reseller_name,
            reviewed_by=t.reviewed_by,
        )
        if problems:
            return False, (
                f"the {role} ticket {ticket_id} no longer authorizes the transfer: "
                + "; ".join(problems)
            )
    return True, ""


def domains_accounted_for(ctx: TaskContext) -> tuple[bool, str]:
    """(True, "") when the manifest names exactly the direct account's domains: each is on the
    direct account or already on the new one, and the direct account holds no other (which
    would be stranded on a cancelled account). Checked before the first platform write."""
    t = ctx.transfer
    direct = ctx.platform.get_account(t.customer_account)
    if direct is None:
        return False, f"the direct account {t.customer_account} does not exist"
    problems = []
    extra = sorted(set(direct.domains) - set(t.customer_domains) - {t.temporary_domain})
    if extra and direct.status == "active":
        problems.append(
            f"{t.customer_account} also holds {', '.join(extra)}, which the manifest does not "
            "list: it would be left on a cancelled account (list every domain, or move it first)"
        )
    for domain in t.customer_domains:
        if domain in direct.domains:
            continue
        holder = ctx.platform.find_account_by_domain(domain)
        if holder is None or holder.type != "resold" or holder.parent != t.reseller_account:
            where = f"on account {holder.id}" if holder else "on no account"
            problems.append(f"{domain} is {where}, not on the direct account {t.customer_account}")
    return not problems, "; ".join(problems)


def cut_over_done(ctx: TaskContext) -> tuple[bool, str]:
    """(True, "") when the direct account is cancelled and every customer domain is on a
    resold account under the reseller: money follows the move, never precedes it."""
    t = ctx.transfer
    direct = ctx.platform.get_account(t.customer_account)
    if direct is None or direct.status != "cancelled":
        return False, f"the direct account {t.customer_account} is not cancelled yet"
    for domain in t.customer_domains:
        holder = ctx.platform.find_account_by_domain(domain)
        if holder is None or holder.type != "resold" or holder.parent != t.reseller_account:
            return False, f"{domain} is not on the new account under {t.reseller_account} yet"
    return True, ""


def _needed(ctx: TaskContext) -> list[Store]:
    return [s for s in STORES if ctx.transfer.data_mode(s) != "skip"]


def exports_verified(ctx: TaskContext) -> tuple[bool, str]:
    """(True, "") when every non-skipped store has a recorded successful verification."""
    needed = _needed(ctx)
    if needed and ctx.run.export is None:
        return False, "no export destination is set (--export-to)"
    missing = [
        s for s in needed if prior_verification(ctx, s, False, same_index=False, fresh=True) is None
    ]
    if missing:
        return False, f"exports of {', '.join(missing)} are not verified yet"
    return True, ""


def source_covered(ctx: TaskContext, account: str) -> tuple[bool, str]:
    """(True, "") when `account` is quiescent and all it holds is in the verified export."""
    direct = ctx.platform.get_account(account)
    if direct is not None and direct.domains:
        return False, (
            f"{account} still holds {', '.join(direct.domains)} and may receive mail: "
            "move the domains and take the final pass first"
        )
    for store in _needed(ctx):
        problem = _store_covered(ctx, account, store)
        if problem:
            return False, problem
    return True, ""


def _store_covered(ctx: TaskContext, account: str, store: Store) -> str:
    if ctx.run.export is None:
        return "no export destination is set (--export-to)"
    verified = prior_verification(ctx, store, True, fresh=True)
    if verified is None:
        return f"the {store} export has no complete verification of the index S3 holds now"
    index = read_index(ctx.run.s3(), store_layout(ctx.run.export, ctx.transfer.name, store))
    if index is None or index.sha256 != verified.get("index_sha256"):
        return f"the {store} export changed since it was verified"
    exported = {e.id: e.sha256 for e in index.entries}
    target = ctx.facts("account.ensure").get("account_id")
    migrate = ctx.transfer.data_mode(store) == "migrate"
    imported: set[str] = set()
    if migrate:
        if not target:
            return f"the {store} store migrates, but no new account is recorded"
        imported = {m.id for m in iter_messages(ctx.platform, target, store)}
    absent, unimported, first = 0, 0, ""
    for info in iter_messages(ctx.platform, account, store):
        try:
            digest = (info.sha256 or "").lower() or source_digest(
                ctx.platform, account, store, info.id
            )
        except NotFound:  # expired since the listing: it is held no more
            continue
        if exported.get(info.id) != digest:
            absent, first = absent + 1, first or info.id
        elif migrate and info.id not in imported:
            unimported, first = unimported + 1, first or info.id
    if absent:
        return (
            f"{absent} {store} message(s) of {account} are not in the verified export "
            f"(first {first}): run apply again to export them"
        )
    if unimported:
        return (
            f"{unimported} {store} message(s) of {account} are not in the new account "
            f"{target} (first {first}): run apply again to import them"
        )
    return ""
