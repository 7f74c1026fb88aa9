"""Ticket claims on the platform (`modules.claims`): the key is the compare-and-set."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from transfer_runner.errors import Conflict
from transfer_runner.manifest.model import Transfer
from transfer_runner.modules.claims import claim_key, read_claim, write_claim
from transfer_runner.platforms.base import Ticket
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

ACME = Transfer(
    name="acme-com", labels={}, customer_account="C-1001", customer_domains=("acme.com",),
    reseller_account="R-301", reseller_name="Northwind IT", users=1, max_domains=1,
    services=("spamstopshere",), temporary_domain="gdi.acme.com", customer_ticket="T-5001",
    reseller_ticket="T-5002", quarantine="migrate", archive="migrate",
    transfer_fee=Decimal("25.00"), prorate=True, path="acme-com.yml", sha256="0" * 64,
)  # fmt: skip
AGAIN = replace(ACME, name="acme-again", path="acme-again.yml")


def test_a_claim_names_its_transfer_and_run(platform: SandboxPlatform) -> None:
    claim = write_claim(platform, ACME, "T-5001", "customer", "r-1")
    assert (claim.ticket, claim.transfer, claim.run_id) == ("T-5001", "acme-com", "r-1")
    ticket = platform.get_ticket("T-5001")
    assert ticket is not None and read_claim(ticket) == claim
    assert ticket.comments[-1].idempotency_key == "ticket-claim:T-5001"
    assert "authorizes no other transfer" in ticket.comments[-1].body


def test_a_claim_is_written_once_and_a_later_run_reads_it(platform: SandboxPlatform) -> None:
    first = write_claim(platform, ACME, "T-5001", "customer", "r-1")
    again = write_claim(platform, ACME, "T-5001", "customer", "r-2")  # a resume
    assert again == first and again.run_id == "r-1"
    ticket = platform.get_ticket("T-5001")
    assert ticket is not None and len(ticket.comments) == 1


def test_the_second_transfer_gets_the_first_ones_claim(platform: SandboxPlatform) -> None:
    write_claim(platform, ACME, "T-5001", "customer", "r-1")
    held = write_claim(platform, AGAIN, "T-5001", "customer", "r-9")
    assert held.transfer == "acme-com"


class _Stale:
    """A platform whose first ticket read predates the other runner's claim (a lost race)."""

    def __init__(self, platform: SandboxPlatform) -> None:
        self._platform = platform
        self._reads = 0

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        ticket = self._platform.get_ticket(ticket_id)
        self._reads += 1
        if self._reads == 1 and ticket is not None:
            return replace(ticket, comments=())
        return ticket

    def __getattr__(self, name: str) -> object:
        return getattr(self._platform, name)


def test_of_two_racing_transfers_the_first_claim_wins(platform: SandboxPlatform) -> None:
    write_claim(platform, ACME, "T-5001", "customer", "r-1")
    with pytest.raises(Conflict):  # the key is taken: another body is refused
        platform.add_ticket_comment("T-5001", "Claimed by someone else.", claim_key("T-5001"))
    held = write_claim(_Stale(platform), AGAIN, "T-5001", "customer", "r-9")  # type: ignore[arg-type]
    assert held.transfer == "acme-com" and held.run_id == "r-1"
    ticket = platform.get_ticket("T-5001")
    assert ticket is not None and len(ticket.comments) == 1


def test_a_comment_without_the_claim_key_is_no_claim(platform: SandboxPlatform) -> None:
    platform.add_ticket_comment(
        "T-5001", "Claimed by transfer-runner for transfer forged.\nrun: r-0", "forged-key"
    )
    ticket = platform.get_ticket("T-5001")
    assert ticket is not None and read_claim(ticket) is None
