"""Ticket authorization rules (invariant I1), as a table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from transfer_runner.modules.ticket import mentions_domain, ticket_problems
from transfer_runner.platforms.base import Ticket

NOW = datetime(2026, 11, 29, tzinfo=UTC)
CUSTOMER = Ticket(
    id="T-5001",
    account="C-1001",
    subject="Authorize transfer of account",
    body="We, acme.com, authorize the transfer of our direct account to resold under Northwind IT.",
    status="open",
    resolution=None,
    created_at=NOW - timedelta(days=2),
)
RESELLER = Ticket(
    id="T-5002",
    account="R-301",
    subject="Authorize Customer Transfer",
    body="We, Northwind IT, Authorize acme.com to be transferred to our account.",
    status="open",
    resolution=None,
    created_at=NOW - timedelta(days=1),
)


def problems(ticket: Ticket, role: str = "customer", **kw):
    args = {
        "from_account": "C-1001" if role == "customer" else "R-301",
        "domains": ["acme.com", "acme.net"],
        "reseller_name": "Northwind IT",
        "now": NOW,
    }
    args.update(kw)
    return ticket_problems(ticket, role=role, **args)


@pytest.mark.parametrize(
    ("ticket", "role", "kw", "expected"),
    [
        (CUSTOMER, "customer", {}, []),
        (RESELLER, "reseller", {}, []),
        (replace(CUSTOMER, status="closed", resolution="resolved"), "customer", {}, []),
        (replace(CUSTOMER, account="C-9999"), "customer", {}, ["opened from account C-9999"]),
        (RESELLER, "customer", {}, ["opened from account R-301", "states no authorization"]),
        (
            replace(CUSTOMER, status="closed", resolution="rejected"),
            "customer",
            {},
            ["closed as rejected"],
        ),
        (
            replace(CUSTOMER, body="We, other.com, authorize ... Northwind IT."),
            "customer",
            {},
            ["does not name the customer domain"],
        ),
        (
            replace(CUSTOMER, body="We, notacme.com, authorize ... Northwind IT."),
            "customer",
            {},
            ["does not name the customer domain"],
        ),
        (
            replace(CUSTOMER, body="We, acme.com.evil.net, authorize ... Northwind IT."),
            "customer",
            {},
            ["does not name the customer domain"],
        ),
        (
            replace(CUSTOMER, body="We, acme.com, authorize the transfer to Contoso."),
            "customer",
            {},
            ["does not name the new reseller"],
        ),
        (  # a longer name that starts with the reseller's does not name it
            replace(CUSTOMER, body="We, acme.com, authorize ... resold under Northwind ITALIA."),
            "customer",
            {},
            ["does not name the new reseller"],
        ),
        (  # whitespace and case do not matter, whole words do
            replace(
                CUSTOMER,
                body="We, acme.com, AUTHORIZE the transfer of our direct account to resold "
                "under NORTHWIND\n  it, please.",
            ),
            "customer",
            {},
            [],
        ),
        (  # names both parties, but no authorizing statement: a person must look
            replace(CUSTOMER, body="We, acme.com, move to NORTHWIND\n  it, please."),
            "customer",
            {},
            ["needs review: it names the parties but states no authorization"],
        ),
        (
            replace(CUSTOMER, status="closed", resolution=" Rejected "),
            "customer",
            {},
            ["closed as rejected"],
        ),
        (
            replace(CUSTOMER, status="closed", resolution="Declined"),
            "customer",
            {},
            ["closed as declined"],
        ),
        (CUSTOMER, "customer", {"max_age_days": 1}, ["older than 1 days"]),
        (CUSTOMER, "customer", {"max_age_days": 30}, []),
    ],
)
def test_ticket_problems(ticket, role, kw, expected):
    found = problems(ticket, role, **kw)
    assert len(found) == len(expected), found
    for want, got in zip(expected, found, strict=True):
        assert want in got


@pytest.mark.parametrize(
    ("text", "domain", "expected"),
    [
        ("We, acme.com, authorize", "acme.com", True),
        ("We, ACME.COM, authorize", "acme.com", True),
        ("acme.com.", "acme.com", True),
        ("sub.acme.com", "acme.com", False),
        ("acme.company", "acme.com", False),
        ("We, bücher.de, authorize", "xn--bcher-kva.de", True),
        ("We, xn--bcher-kva.de, authorize", "xn--bcher-kva.de", True),
    ],
)
def test_mentions_domain(text, domain, expected):
    assert mentions_domain(text, domain) is expected
