"""Ticket claims on the platform: a ticket authorizes one transfer, whatever the state store.

The state store records which transfer claimed a ticket, but a second state store (another CI
system, a lost state bucket) knows nothing of it, and a renamed manifest is another transfer to
it. So the claim is also written where every runner looks: a comment on the ticket, with the
idempotency key `ticket-claim:<ticket id>`. Its body names the transfer and the run that made
it. The key is the compare-and-set: a second transfer writing it with another body gets a 409
(`Conflict`), so of two runners racing for one ticket exactly one wins.

A claim is written right before the transfer's first platform write other than the claims
themselves (see `engine.runner`), after every check that could still refuse the transfer.

`abort` releases a claim with a second comment, keyed `ticket-release:<ticket id>#<n>`, that
gives the reason. Claims come in generations: the n-th claim of a ticket is keyed
`ticket-claim:<ticket id>#<n>` (the first keeps the plain key), and is written only once the
claim before it is released, so the compare-and-set holds for every generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transfer_runner.errors import Conflict
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.keys import idempotency_key
from transfer_runner.platforms.base import Platform, Ticket

__all__ = [
    "CLAIM_KIND",
    "RELEASE_KIND",
    "PlatformClaim",
    "claim_key",
    "release_key",
    "read_claim",
    "write_claim",
    "release_claim",
]

CLAIM_KIND = "ticket-claim"
RELEASE_KIND = "ticket-release"
_FIRST_LINE = re.compile(r"Claimed by transfer-runner for transfer (\S+)\.")
_RUN = re.compile(r"^run: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class PlatformClaim:
    """Who claimed a ticket on the platform: the transfer (manifest name) and its run."""

    ticket: str
    transfer: str
    run_id: str
    comment: str  # the comment's id
    generation: int = 1  # the n-th claim of this ticket (earlier ones were released)

    def describe(self) -> str:
        """`transfer acme-com (run r-1, comment CM-7 on T-5001)`."""
        return (
            f"transfer {self.transfer} (run {self.run_id}, comment {self.comment} on {self.ticket})"
        )


def claim_key(ticket_id: str, generation: int = 1) -> str:
    """`ticket-claim:T-5001` (then `ticket-claim:T-5001#2` after a release): one key per
    ticket and generation, so a second claimant conflicts."""
    key = idempotency_key(CLAIM_KIND, ticket_id)
    return key if generation == 1 else f"{key}#{generation}"


def release_key(ticket_id: str, generation: int = 1) -> str:
    """`ticket-release:T-5001#1`: the release of that generation's claim."""
    return f"{idempotency_key(RELEASE_KIND, ticket_id)}#{generation}"


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
    """The ticket's claim that holds, or None if no runner holds it (never claimed, or every
    claim released)."""
    return _current(ticket)[0]


def _current(ticket: Ticket) -> tuple[PlatformClaim | None, int]:
    """The claim that holds (or None) and the generation a new claim would take."""
    by_key = {c.idempotency_key: c for c in ticket.comments if c.idempotency_key}
    generation = 1
    while True:
        comment = by_key.get(claim_key(ticket.id, generation))
        if comment is None:
            return None, generation
        if release_key(ticket.id, generation) not in by_key:
            name = _FIRST_LINE.search(comment.body)
            run = _RUN.search(comment.body)
            claim = PlatformClaim(
                ticket.id,
                name.group(1) if name else "(unknown)",
                run.group(1) if run else "(unknown)",
                comment.id,
                generation,
            )
            return claim, generation
        generation += 1


def write_claim(
    platform: Platform, transfer: Transfer, ticket_id: str, role: str, run_id: str
) -> PlatformClaim:
    """Claim `ticket_id` for `transfer` unless it is claimed; the claim that holds afterwards
    (another transfer's if it won the race: the caller compares the names)."""
    ticket = platform.get_ticket(ticket_id)
    found, generation = _current(ticket) if ticket is not None else (None, 1)
    if found is not None:
        return found
    try:
        comment = platform.add_ticket_comment(
            ticket_id, claim_body(transfer, role, run_id), claim_key(ticket_id, generation)
        )
    except Conflict:  # another runner wrote the key first, with its own body
        ticket = platform.get_ticket(ticket_id)
        found = read_claim(ticket) if ticket is not None else None
        if found is None:
            raise
        return found
    return PlatformClaim(ticket_id, transfer.name, run_id, comment.id, generation)


def release_claim(platform: Platform, ticket_id: str, transfer: str, text: str) -> bool:
    """Release `transfer`'s claim on `ticket_id` with a comment saying `text` (why); False if
    the transfer holds no claim there (never claimed, or released already)."""
    ticket = platform.get_ticket(ticket_id)
    found = read_claim(ticket) if ticket is not None else None
    if found is None or found.transfer != transfer:
        return False
    try:
        platform.add_ticket_comment(ticket_id, text, release_key(ticket_id, found.generation))
    except Conflict:  # released already, with another text (an abort retried with a new reason)
        ticket = platform.get_ticket(ticket_id)
        if ticket is not None and read_claim(ticket) == found:
            raise
    return True
