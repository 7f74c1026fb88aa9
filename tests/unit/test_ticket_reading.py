"""How ticket texts are read (invariant I1): a table of customer and reseller tickets as
customers really write them, with the outcome a careful support agent would give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from transfer_runner.authorization import read_ticket
from transfer_runner.platforms.base import Comment, Ticket

AT = datetime(2031, 7, 15, 12, tzinfo=UTC)
C_SUBJECT = "Authorize transfer of account"
R_SUBJECT = "Authorize Customer Transfer"
C_BODY = "We, acme.com, authorize the transfer of our direct account to resold under Northwind IT."
R_BODY = "We, Northwind IT, Authorize acme.com to be transferred to our account."
DOMAINS = ("acme.com", "xn--bcher-kva.de")


def ticket(subject: str, body: str, **over: object) -> Ticket:
    base = Ticket("T-1", "C-1001", subject, body, "open", None, AT)
    return replace(base, **over)  # type: ignore[arg-type]


A, R, N = "authorized", "refused", "needs_review"

CUSTOMER = [
    # the procedure's own example, and how people really type it
    (C_SUBJECT, C_BODY, A),
    (
        C_SUBJECT,
        "We ,acme.com, authorize the transfer of our direct account to resold under "
        "Northwind IT.\nThanks you",
        A,
    ),
    ("AUTHORIZE TRANSFER OF ACCOUNT", C_BODY.upper(), A),
    (
        "authorise transfer of account",
        "we, acme.com, authorise the transfer of our direct account to resold under northwind it",
        A,
    ),
    (
        C_SUBJECT,
        "We,   acme.com,\n authorize  the transfer of our direct account to resold "
        "under Northwind\u00a0IT.",
        A,
    ),
    (
        C_SUBJECT,
        "We, acme.com, authorize the transfer of our direct account to resold under Northwind I.T.",
        A,
    ),
    (
        C_SUBJECT,
        "We, https://www.acme.com/, authorize the transfer of our direct account to "
        "resold under Northwind IT.",
        A,
    ),
    (
        C_SUBJECT,
        "We, ACME.COM, authorize the transfer of our direct account to resold under "
        "northwind it. Thank you!",
        A,
    ),
    (
        C_SUBJECT,
        "We, bu\u0308cher.de, authorize the transfer of our direct account to resold "
        "under Northwind IT.",
        A,
    ),  # decomposed Unicode
    (
        C_SUBJECT,
        "We, bücher.de, authorize the transfer of our direct account to resold under Northwind IT.",
        A,
    ),
    (
        C_SUBJECT,
        "Hello,\nWe, acme.com, approve the transfer of our direct account to resold "
        "under Northwind IT.\nBest regards, Jane",
        A,
    ),
    ("Re: Authorize transfer of account", C_BODY, A),
    # refusals, wherever they stand
    (
        C_SUBJECT,
        "We, acme.com, do not authorize the transfer of our direct account to resold "
        "under Northwind IT.",
        R,
    ),
    (
        C_SUBJECT,
        "We, acme.com, don't authorize the transfer of our direct account to resold "
        "under Northwind IT.",
        R,
    ),
    (
        C_SUBJECT,
        "We, acme.com, don\u2019t authorize the transfer of our account to resold under "
        "Northwind IT.",
        R,
    ),
    (
        C_SUBJECT,
        "We, acme.com, never authorized the transfer of our direct account to resold "
        "under Northwind IT.",
        R,
    ),
    (C_SUBJECT, C_BODY + " Update: we withdraw this authorization.", R),
    (C_SUBJECT, C_BODY + " We revoke it.", R),
    (C_SUBJECT, "Northwind IT keeps calling us about a transfer of acme.com. We refuse.", R),
    (
        C_SUBJECT,
        "We, acme.com, refuse the transfer of our direct account to resold under Northwind IT.",
        R,
    ),
    (
        C_SUBJECT,
        "We, acme.com, authorize the transfer of our direct account to resold under "
        "Northwind IT? No.",
        R,
    ),
    ("Do NOT authorize transfer of account", C_BODY, R),
    (C_SUBJECT, "We, acme.com, did not request this. Please stop the transfer to Northwind IT.", R),
    (C_SUBJECT, "This transfer to Northwind IT is unauthorized. acme.com", R),
    # unrelated or unclear: a person must look
    (
        "Password reset",
        "Please reset the password of jane@acme.com.\n--\nAcme Inc, a Northwind IT customer",
        N,
    ),
    ("Invoice question", "Why is acme.com billed twice? Regards, Northwind IT", N),
    (C_SUBJECT, "acme.com and Northwind IT.", N),
    (C_SUBJECT, "We, acme.com, would like to talk about moving to Northwind IT.", N),
    ("Question", C_BODY, N),  # the statement under another subject
    (C_SUBJECT, C_BODY + " No rush, though.", N),  # a negation elsewhere
    (C_SUBJECT, C_BODY + " Please don't hesitate to call.", N),
    (
        C_SUBJECT,
        "We, other.com, authorize the transfer of our direct account to resold under Northwind IT.",
        N,
    ),
    (
        C_SUBJECT,
        "We, acme.com.evil.net, authorize the transfer of our direct account to resold "
        "under Northwind IT.",
        N,
    ),
    (
        C_SUBJECT,
        "We, acme.com, authorize the transfer of our direct account to resold under Contoso.",
        N,
    ),
    (
        C_SUBJECT,
        "We, acme.com, authorize the transfer of our direct account to resold under "
        "Northwind ITALIA.",
        N,
    ),
    (
        C_SUBJECT,
        "We, acme.com, authorize the transfer of our direct account to Northwind IT.",
        N,
    ),  # not "resold under": unclear
]

RESELLER = [
    (R_SUBJECT, R_BODY, A),
    (
        R_SUBJECT,
        "We, Northwind IT, Authorize acme.com to be transferred to our account.\nThanks you",
        A,
    ),
    (
        "authorise customer transfer",
        "we, northwind i.t., authorise acme.com to be transferred to our account",
        A,
    ),
    (
        R_SUBJECT,
        "We, Northwind IT, authorize https://acme.com to be transferred to our account.",
        A,
    ),
    (R_SUBJECT, "We, Northwind IT, do not authorize acme.com to be transferred to our account.", R),
    (R_SUBJECT, "We, Northwind IT, decline acme.com.", R),
    (R_SUBJECT, R_BODY + " Actually we cannot take this customer, we withdraw.", R),
    (R_SUBJECT, "We, Northwind IT, authorize acme.com to be transferred. We won't pay the fee.", R),
    (R_SUBJECT, "We, Contoso, authorize acme.com to be transferred to our account.", N),
    (R_SUBJECT, "We, Northwind IT, authorize globex.io to be transferred to our account.", N),
    ("New customer", "Northwind IT here: acme.com will join us.", N),
]


@pytest.mark.parametrize(
    ("subject", "body", "outcome"), CUSTOMER, ids=[f"c{i}" for i in range(len(CUSTOMER))]
)
def test_customer_tickets(subject: str, body: str, outcome: str) -> None:
    reading = read_ticket(
        ticket(subject, body), role="customer", domains=DOMAINS, reseller_name="Northwind IT"
    )
    assert reading.outcome == outcome, reading


@pytest.mark.parametrize(
    ("subject", "body", "outcome"), RESELLER, ids=[f"r{i}" for i in range(len(RESELLER))]
)
def test_reseller_tickets(subject: str, body: str, outcome: str) -> None:
    reading = read_ticket(
        ticket(subject, body), role="reseller", domains=DOMAINS, reseller_name="Northwind IT"
    )
    assert reading.outcome == outcome, reading


def test_the_table_is_large_and_covers_every_outcome() -> None:
    outcomes = [o for *_, o in CUSTOMER + RESELLER]
    assert len(outcomes) >= 40
    assert {A, R, N} == set(outcomes)


def read(t: Ticket) -> str:
    return read_ticket(t, role="customer", domains=DOMAINS, reseller_name="Northwind IT").outcome


def test_a_later_comment_that_withdraws_refuses() -> None:
    later = Comment("CM-1", "We changed our mind: we revoke the transfer.", AT)
    assert read(ticket(C_SUBJECT, C_BODY, comments=(later,))) == R
    keyed = Comment("CM-3", "We withdraw.", AT, "control-panel:4711")  # a person's, keyed
    assert read(ticket(C_SUBJECT, C_BODY, comments=(keyed,))) == R


def test_the_runners_own_comments_are_not_read() -> None:
    ours = Comment("CM-2", "Transfer not started: no export yet.", AT, "ticket-comment:x:customer")
    assert read(ticket(C_SUBJECT, C_BODY, comments=(ours,))) == A


@pytest.mark.parametrize(
    ("resolution", "outcome"),
    [("resolved", A), ("Completed", A), ("Rejected by customer", R), ("withdrawn", R),
     (" Declined ", R), ("duplicate", R)],
)  # fmt: skip
def test_closed_tickets(resolution: str, outcome: str) -> None:
    closed = ticket(C_SUBJECT, C_BODY, status="closed", resolution=resolution)
    assert read(closed) == outcome


def test_a_refusal_names_the_sentence() -> None:
    reading = read_ticket(
        ticket(C_SUBJECT, "Hi. We, acme.com, do not authorize the transfer to Northwind IT."),
        role="customer",
        domains=DOMAINS,
        reseller_name="Northwind IT",
    )
    assert reading.outcome == R
    assert reading.sentence == "we, acme.com, do not authorize the transfer to northwind it."
