"""Abort an unfinished transfer: undo what it made, before its point of no return.

A reseller or a customer may withdraw after the new account was made but before the cut-over.
Until the first customer domain moves (and the direct account is cancelled after that), the
customer's mail and account are untouched, so the transfer can be undone: cancel the new
account (its imported data with it) and detach its temporary domain, release both ticket
claims with a comment that gives the reason, and record the transfer as aborted so that it is
never applied again unless its manifest changes. Past that point `abort` refuses and says what
a person must do instead.

Every action is idempotent and checked against the platform first, and the transfer's lock is
held throughout (I6), so an interrupted abort is resumed by running it again. Exports stay in
S3. The steps the aborted attempt recorded are recorded again as failed, without outputs, so a
new attempt (a changed manifest) starts from scratch. When the export has a receipt, the
receipt notes the abort (who, why, when) before the state records it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from transfer_runner.engine.leases import acquire_lease
from transfer_runner.errors import ConfigError
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.claims import read_claim, release_claim
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Account, Platform
from transfer_runner.state.base import StateStore, StepRecord, TransferRecord
from transfer_runner.utc import iso_z

__all__ = [
    "AbortResult",
    "ReceiptNote",
    "abort_transfer",
    "point_of_no_return",
    "require_reason",
]

LOCK_TTL_S = 900.0

ReceiptNote = Callable[[Mapping[str, str], bool], "str | None"]
"""Notes an abort entry in the export's receipt (written when the flag is true); returns the
receipt's key, or None when there is nothing to note (no receipt, or noted already)."""


@dataclass(frozen=True)
class AbortResult:
    """What `abort` did (or, with `dry_run`, would do), or why it refused."""

    name: str
    status: Literal["aborted", "would abort", "refused"]
    actions: tuple[str, ...] = ()
    message: str = ""


def point_of_no_return(platform: Platform, transfer: Transfer) -> str:
    """Why the transfer can no longer be undone by `abort` ("" while it can): a customer
    domain is off the direct account, or the direct account is cancelled or gone."""
    direct = platform.get_account(transfer.customer_account)
    if direct is None:
        return f"the direct account {transfer.customer_account} is gone"
    if direct.status == "cancelled":
        return f"the direct account {transfer.customer_account} is cancelled"
    for domain in transfer.customer_domains:
        holder = platform.find_account_by_domain(domain)
        if holder is None or holder.id != transfer.customer_account:
            where = holder.id if holder is not None else "no account"
            return f"{domain} is on {where}, not on the direct account"
    return ""


def abort_transfer(
    platform: Platform,
    state: StateStore,
    transfer: Transfer,
    *,
    reason: str,
    by: str,
    run_id: str,
    dry_run: bool = False,
    receipt: ReceiptNote | None = None,
) -> AbortResult:
    """Abort `transfer` (see the module's docstring); with `dry_run`, only say what it would do."""
    refused = _refusal(platform, state, transfer)
    if refused:
        return AbortResult(transfer.name, "refused", message=refused)
    if dry_run:
        actions = _undo(platform, state, transfer, reason, by, receipt, write=False)
        return AbortResult(transfer.name, "would abort", tuple(actions))
    owner = f"{by}@{socket.gethostname()} (abort)"
    if not acquire_lease(state, transfer.name, owner, run_id, LOCK_TTL_S):
        lock = state.get_lock(transfer.name)
        holder = f"{lock.owner} (run {lock.run_id})" if lock else "another runner"
        return AbortResult(transfer.name, "refused", message=f"locked by {holder}; try later")
    try:
        refused = _refusal(platform, state, transfer)  # again, under the lock
        if refused:
            return AbortResult(transfer.name, "refused", message=refused)
        actions = _undo(platform, state, transfer, reason, by, receipt, write=True)
        _record(state, transfer, reason, by, run_id, actions)
    finally:
        state.release_lock(transfer.name, run_id)
    return AbortResult(transfer.name, "aborted", tuple(actions))


def _refusal(platform: Platform, state: StateStore, transfer: Transfer) -> str:
    record = state.get_transfer(transfer.name)
    if record is not None and record.status == "succeeded":
        return (
            f"{transfer.name} is completed (run {record.last_run_id}): past the point of no "
            "return; moving the customer back is a new transfer, made by a person"
        )
    past = point_of_no_return(platform, transfer)
    if past:
        return (
            f"{transfer.name} is past the point of no return: {past}. abort undoes only what "
            "precedes the cut-over; a person must finish the transfer (apply) or move the "
            "domains back and reactivate the direct account in the control panel"
        )
    return ""


def _undo(
    platform: Platform,
    state: StateStore,
    transfer: Transfer,
    reason: str,
    by: str,
    receipt: ReceiptNote | None,
    *,
    write: bool,
) -> list[str]:
    """Each action still to do, done when `write`; returns them, in order."""
    actions: list[str] = []
    new = _new_account(platform, state, transfer)
    if new is not None and new.status == "active":
        actions.append(f"cancel the new account {new.id} (its imported data with it)")
        if write:
            key = idempotency_key("abort-cancel", transfer.name, new.id)
            platform.cancel_account(new.id, key)
    if new is not None and transfer.temporary_domain in new.domains:
        actions.append(f"detach the temporary domain {transfer.temporary_domain} from {new.id}")
        if write:
            key = idempotency_key("abort-detach", transfer.name, transfer.temporary_domain)
            platform.detach_domain(new.id, transfer.temporary_domain, key)
    text = _release_text(transfer, reason, by, new)
    for role, ticket_id in (("customer", transfer.customer_ticket),
                            ("reseller", transfer.reseller_ticket)):  # fmt: skip
        ticket = platform.get_ticket(ticket_id)
        claim = read_claim(ticket) if ticket is not None else None
        if claim is not None and claim.transfer == transfer.name:
            actions.append(f"release the {role} ticket {ticket_id}, with a comment giving why")
            if write:
                release_claim(platform, ticket_id, transfer.name, text)
        if state.ticket_claim(ticket_id) == transfer.name:
            if not any(ticket_id in a for a in actions):
                actions.append(f"release the {role} ticket {ticket_id} in the state store")
            if write:
                state.release_ticket(ticket_id, transfer.name)
    if receipt is not None:
        entry = {
            "aborted_at": iso_z(datetime.now(UTC)),
            "by": by,
            "reason": reason,
            "manifest_sha256": transfer.sha256,
        }
        noted = receipt(entry, write)
        if noted is not None:
            actions.append(f"note the abort in the export's receipt {noted} (the export stays)")
    actions.append(f"record {transfer.name} as aborted by {by}: {reason}")
    return actions


def _new_account(platform: Platform, state: StateStore, transfer: Transfer) -> Account | None:
    """The account this transfer made: from its records, else on its temporary domain (made,
    then the run died before recording it) when it is the reseller's, named as it names it."""
    for step in state.latest_steps(transfer.name).values():
        if step.module == "account.ensure" and step.outputs.get("account_id"):
            return platform.get_account(str(step.outputs["account_id"]))
    holder = platform.find_account_by_domain(transfer.temporary_domain)
    if (
        holder is not None
        and holder.type == "resold"
        and holder.parent == transfer.reseller_account
        and holder.name == transfer.customer_domains[0]
    ):
        return holder
    return None


def _release_text(transfer: Transfer, reason: str, by: str, new: Account | None) -> str:
    undone = (
        f"The new account {new.id} is cancelled and its temporary domain "
        f"{transfer.temporary_domain} removed; "
        if new is not None
        else ""
    )
    return (
        f"Aborted by transfer-runner: transfer {transfer.name} (moving "
        f"{', '.join(transfer.customer_domains)} from direct account "
        f"{transfer.customer_account} to {transfer.reseller_name} "
        f"({transfer.reseller_account})) was withdrawn by {by}: {reason}\n"
        f"{undone}the customer's account, domains and mail are as they were.\n"
        "This ticket's claim is released: it no longer authorizes that transfer."
    )


def _record(
    state: StateStore,
    transfer: Transfer,
    reason: str,
    by: str,
    run_id: str,
    actions: list[str],
) -> None:
    """The aborted attempt's steps again as failed, without outputs; then the status."""
    now = datetime.now(UTC)
    for step in state.latest_steps(transfer.name).values():
        if step.status == "failed" and not step.outputs:
            continue
        state.record_step(
            StepRecord(
                run_id=run_id, transfer=transfer.name, index=step.index, name=step.name,
                module=step.module, status="failed", started_at=now, ended_at=now,
                outputs={}, message=f"undone by abort: {reason}",
            )
        )  # fmt: skip
    state.append_event(run_id, transfer.name, "aborted",
                       {"by": by, "reason": reason, "actions": actions})  # fmt: skip
    state.set_transfer(TransferRecord(transfer.name, transfer.sha256, "aborted", now, run_id))


def require_reason(reason: str) -> str:
    """The reason, stripped; a StateError if there is none (an abort is always explained)."""
    text = " ".join(reason.split())
    if not text:
        raise ConfigError("abort needs --reason TEXT: it goes on both tickets and in the state")
    return text
