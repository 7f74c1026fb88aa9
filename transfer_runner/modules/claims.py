"""Ticket claims on the platform: a ticket authorizes one transfer, whatever the state store.

The state store records which transfer claimed a ticket, but a second state store (another CI
system, a lost state bucket) knows nothing of it, and a renamed manifest is another transfer to
it. So the claim is also written where every runner looks: a comment on the ticket, with the
idempotency key `ticket-claim:<ticket id>`. Its body names the transfer and the run that made
it. The key is the compare-and-set: a second transfer writing it with another body gets a 409
(`Conflict`), so of two runners racing for one ticket exactly one wins.

A claim is written right before the transfer's first platform write other than the claims
themselves (see `engine.runner`), after every check that could still refuse the transfer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transfer_runner.engine.keys import idempotency_key
from transfer_runner.errors import Conflict
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform, Ticket

__all__ = ["CLAIM_KIND", "PlatformClaim", "claim_key", "read_claim", "write_claim"]

CLAIM_KIND = "ticket-claim"
_FIRST_LINE = re.compile(r"Claimed by transfer-runner for transfer (\S+)\.")
_RUN = re.compile(r"^run: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class PlatformClaim:
    """Who claimed a ticket on the platform: the transfer (manifest name) and its run."""

    ticket: str
    transfer: str
    run_id: str
    comment: str  # the comment's id

    def describe(self) -> str:
        """`transfer acme-com (run r-1, comment CM-7 on T-5001)`."""
        return (
            f"transfer {self.transfer} (run {self.run_id}, comment {self.comment} "
            f"on {self.ticket})"
        )


def claim_key(ticket_id: str) -> str:
    """`ticket-claim:T-5001`: one key per ticket, so a second claimant conflicts."""
    return idempotency_key(CLAIM_KIND, ticket_id)


def claim_body(transfer: Transfer, role: str, run_id: str) -> str:
    """The claim comment: who moves under whom, and which transfer and run claim the ticket."""
    return (
        f"Claimed by transfer-runner for transfer {transfer.name}.\n"
        f"This {role} ticket authorizes moving {', '.join(transfer.customer_domains)} from "
        f"direct account {transfer.customer_account} to {transfer.reseller_name} "
        f"({transfer.reseller_account}); it authorizes no other transfer.\n"
        f"run: {run_id}"
    )


def read_claim(ticket: Ticket) -> PlatformClaim | None:
    """The ticket's claim comment, or None if no runner has claimed it."""
    key = claim_key(ticket.id)
    for comment in ticket.comments:
        if comment.idempotency_key != key:
            continue
        name = _FIRST_LINE.search(comment.body)
        run = _RUN.search(comment.body)
        return PlatformClaim(
            ticket.id,
            name.group(1) if name else "(unknown)",
            run.group(1) if run else "(unknown)",
            comment.id,
        )
    return None


def write_claim(
    platform: Platform, transfer: Transfer, ticket_id: str, role: str, run_id: str
) -> PlatformClaim:
    """Claim `ticket_id` for `transfer` unless it is claimed; the claim that holds afterwards
    (another transfer's if it won the race: the caller compares the names)."""
    ticket = platform.get_ticket(ticket_id)
    found = read_claim(ticket) if ticket is not None else None
    if found is not None:
        return found
    try:
        comment = platform.add_ticket_comment(
            ticket_id, claim_body(transfer, role, run_id), claim_key(ticket_id)
        )
    except Conflict:  # another runner wrote the key first, with its own body
        ticket = platform.get_ticket(ticket_id)
        found = read_claim(ticket) if ticket is not None else None
        if found is None:
            raise
        return found
    return PlatformClaim(ticket_id, transfer.name, run_id, comment.id)
