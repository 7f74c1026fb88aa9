"""The wire form: every base.py dataclass round-trips; bad data is a clean PlatformError."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from transfer_runner.clock import clock_from_env
from transfer_runner.errors import PlatformError
from transfer_runner.platforms.base import (
    Account,
    Charge,
    Comment,
    Credit,
    MessageInfo,
    MessagePage,
    NewAccount,
    Subscription,
    Ticket,
)
from transfer_runner.platforms.http.wire import API_PREFIX, PROBLEM_TYPES, from_wire, to_wire

# A billing period around the session's clock (tests/conftest.py pins it): no literal date
# that a calendar could pass.
TODAY = clock_from_env().now().date()
PERIOD = (TODAY - timedelta(days=10), TODAY + timedelta(days=20))

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 6, 0, 1, 250, tzinfo=UTC)

SAMPLES: list[Any] = [
    Comment("c-1", "hello", T0),
    Comment("c-2", "again", T1, "acme-com/ticket-comment"),
    Ticket("T-<5001>@x", "C-1001", "Authorize", "body", "open", None, T0),
    Ticket(
        "T-5002",
        "R-301",
        "Authorize",
        "body",
        "closed",
        "rejected",
        T1,
        (Comment("c-1", "a", T0), Comment("c-2", "b", T1, "k")),
    ),
    Account("C-1001", "direct", "Acme", "active", None, ("acme.com", "acme.net"), 40, 5, ("s",)),
    Account("A-1", "resold", "Acme", "cancelled", "R-301", (), 0, 3, ()),
    NewAccount("R-301", "Acme Inc", "acme-temp.example", 40, 5, ("spamstopshere", "restoremail")),
    Subscription("C-1001", Decimal("120.00"), *PERIOD),
    MessageInfo("<m1@acme.com>", 2048, T0),
    MessageInfo("m2", 10, T1, "ab" * 32),
    MessagePage((MessageInfo("m1", 1, T0), MessageInfo("m2", 2, T1, "00")), "m2"),
    MessagePage((), None),
    Charge("CH-1", "A-1", Decimal("25.00"), "transfer fee", "k-charge", T0),
    Credit("CR-1", "C-1001", Decimal("52.00"), "pro-ration", "k-credit", T1),
]


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: type(o).__name__)
def test_round_trip_through_json(obj: Any) -> None:
    text = json.dumps(to_wire(obj))
    assert from_wire(type(obj), json.loads(text)) == obj


def test_encoding_of_scalars() -> None:
    wire = to_wire(Charge("CH-1", "A-1", Decimal("25.00"), "fee", "k", T0))
    assert wire["amount"] == "25.00"
    assert wire["created_at"] == "2026-11-29T06:00:00Z"
    assert to_wire(Comment("c", "b", T1))["created_at"] == "2026-11-29T06:00:01.000250Z"
    sub = to_wire(Subscription("C", Decimal("1E+2"), *PERIOD))
    assert sub == {
        "account": "C",
        "price": "100",
        "period_start": PERIOD[0].isoformat(),
        "period_end": PERIOD[1].isoformat(),
    }
    page = to_wire(MessagePage((MessageInfo("m", 1, T0),), None))
    assert page["messages"] == [
        {"id": "m", "size": 1, "received_at": T0.strftime("%Y-%m-%dT%H:%M:%SZ"), "sha256": None}
    ]


def test_no_float_anywhere_in_money() -> None:
    wire = to_wire(Credit("CR", "C", Decimal("0.10"), "r", "k", T0))
    assert isinstance(wire["amount"], str)
    assert Decimal(wire["amount"]) == Decimal("0.10")
    assert not any(isinstance(v, float) for v in wire.values())


def test_other_offsets_are_normalised_to_utc() -> None:
    paris = datetime(2026, 11, 29, 7, 0, tzinfo=timezone(timedelta(hours=1)))
    assert to_wire(Comment("c", "b", paris))["created_at"] == "2026-11-29T06:00:00Z"
    decoded = from_wire(
        Comment, {"id": "c", "body": "b", "created_at": "2026-11-29T07:00:00+01:00"}
    )
    assert decoded.created_at == T0 and decoded.created_at.tzinfo is UTC


def test_optional_fields_with_defaults_may_be_omitted() -> None:
    assert from_wire(Comment, {"id": "c", "body": "b", "created_at": "2026-11-29T06:00:00Z"}) == (
        Comment("c", "b", T0)
    )


def _charge(**over: Any) -> dict[str, Any]:
    base = to_wire(Charge("CH-1", "A-1", Decimal("25.00"), "fee", "k", T0))
    base.update(over)
    return base


BAD: list[tuple[type, dict[str, Any], str]] = [
    (Charge, _charge(amount=25.0), "Charge.amount: expected a decimal string"),
    (Charge, _charge(amount=25), "Charge.amount: expected a decimal string"),
    (Charge, _charge(amount="twenty"), "Charge.amount: not a decimal number"),
    (Charge, _charge(amount="NaN"), "Charge.amount: not a finite decimal"),
    (Charge, _charge(created_at="2026-11-29T06:00:00"), "Charge.created_at: expected an ISO"),
    (Charge, _charge(created_at="2026-13-29T06:00:00Z"), "Charge.created_at: invalid time"),
    (Charge, _charge(created_at=1700000000), "Charge.created_at: expected an ISO"),
    (Charge, _charge(id=None), "Charge.id: expected a string, got null"),
    (Charge, _charge(id=7), "Charge.id: expected a string, got int"),
    (Charge, {k: v for k, v in _charge().items() if k != "reason"}, "Charge.reason: missing"),
    (Charge, _charge(extra=1), "Charge: unknown field(s): extra"),
    (
        Subscription,
        {
            "account": "C",
            "price": "1.00",
            "period_start": f"{PERIOD[0]:%Y/%m/%d}",
            "period_end": PERIOD[1].isoformat(),
        },
        "Subscription.period_start: expected a date",
    ),
    (
        Subscription,
        {
            "account": "C",
            "price": "1.00",
            "period_start": "2026-02-30",  # never a date
            "period_end": PERIOD[1].isoformat(),
        },
        "Subscription.period_start: invalid date",
    ),
    (Account, {**to_wire(SAMPLES[4]), "users": True}, "Account.users: expected an integer"),
    (Account, {**to_wire(SAMPLES[4]), "users": 4.0}, "Account.users: expected an integer"),
    (Account, {**to_wire(SAMPLES[4]), "type": "partner"}, "Account.type: expected one of"),
    (Account, {**to_wire(SAMPLES[4]), "domains": "acme.com"}, "Account.domains: expected an array"),
    (Account, {**to_wire(SAMPLES[4]), "domains": ["a", 1]}, "Account.domains[1]: expected a str"),
    (
        MessagePage,
        {"messages": [{"id": "m", "size": 1}], "next_cursor": None},
        "MessagePage.messages[0].received_at: missing",
    ),
    (
        MessagePage,
        {"messages": ["m"], "next_cursor": None},
        "MessagePage.messages[0]: expected an object, got str",
    ),
    (Ticket, [], "Ticket: expected an object, got list"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("cls", "data", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_data_is_a_decode_error_naming_the_field(cls: type, data: Any, message: str) -> None:
    with pytest.raises(PlatformError) as caught:
        from_wire(cls, data)
    assert caught.value.operation == "decode"
    assert caught.value.detail.startswith(message), caught.value.detail


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("not a dataclass", "not a dataclass instance: str"),
        (Account, "not a dataclass instance: type"),
        (Comment("c", "b", datetime(2026, 1, 1)), "created_at: naive datetime"),
        (Charge("C", "A", Decimal("Infinity"), "r", "k", T0), "amount: not a finite amount"),
    ],
)
def test_encoding_refuses_what_has_no_wire_form(obj: Any, message: str) -> None:
    with pytest.raises(PlatformError) as caught:
        to_wire(obj)
    assert caught.value.operation == "encode"
    assert message in caught.value.detail


def test_from_wire_refuses_a_non_dataclass_type() -> None:
    with pytest.raises(PlatformError, match="not a dataclass type"):
        from_wire(dict, {})


def test_constants() -> None:
    assert API_PREFIX == "/v1"
    assert PROBLEM_TYPES["not-found"] == "/problems/not-found"
    for slug in (
        "conflict",
        "account-cancelled",
        "idempotency-key-reused",
        "unauthorized",
        "bad-request",
        "rate-limited",
        "unavailable",
        "internal",
    ):
        assert PROBLEM_TYPES[slug] == f"/problems/{slug}"


def test_replies_may_carry_fields_the_client_does_not_know() -> None:
    """Non-strict decoding (the client's) ignores added fields, also in nested objects;
    strict decoding (the server's, for requests) refuses them."""
    ticket = Ticket(
        "T-1", "C-1", "s", "b", "open", None, T0,
        (Comment("c-1", "hello", T0, "k"),),
    )  # fmt: skip
    data = to_wire(ticket)
    data["priority"] = "high"
    data["comments"][0]["author"] = "support"
    assert from_wire(Ticket, data, strict=False) == ticket
    with pytest.raises(PlatformError, match="unknown field"):
        from_wire(Ticket, data)
