"""The endpoints of the platform REST API over a `SandboxPlatform`: one handler per method.

A handler gets a decoded `Call` (path parameters percent-decoded, the body already read within
its size limit, the Idempotency-Key already required for writes) and returns a `Reply`; errors
are the `transfer_runner.errors` leaves, which `server.py` turns into problem replies. Request
bodies are decoded with `wire.from_wire` into small dataclasses, so a bad field is a 400 that
names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from transfer_runner.errors import NotFound, PlatformError
from transfer_runner.platforms.base import NewAccount, NewSubscription
from transfer_runner.platforms.http.calls import (
    RFC822,
    Call,
    Reply,
    Route,
    bad_request,
    domain_of,
    json_object,
    key_of,
)
from transfer_runner.platforms.http.message_routes import (
    count_messages,
    fetch_message,
    fetch_messages,
    import_message,
    list_messages,
)
from transfer_runner.platforms.http.wire import API_PREFIX, from_wire, to_wire

__all__ = ["Call", "Reply", "Route", "ROUTES", "RFC822", "AMOUNT", "MAX_COUNT", "bad_request"]

T = TypeVar("T")
MAX_COUNT = 2_147_483_647  # users and max_domains of a new account (the contract's maximum)
AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")  # what a charge or credit takes
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the contract's Date (fromisoformat takes more)


# -- request bodies -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CommentBody:
    """`POST /tickets/{ticket_id}/comments`."""

    body: str


@dataclass(frozen=True)
class MoveBody:
    """`POST /domains/{domain}/move`."""

    from_account: str
    to_account: str


@dataclass(frozen=True)
class PaymentBody:
    """`POST /accounts/{account_id}/credits` and `.../charges`."""

    amount: Decimal
    reason: str


@dataclass(frozen=True)
class EmptyBody:
    """`POST /accounts/{account_id}/cancel`: `{}` or nothing."""


def _json_body(call: Call, cls: type[T], *, optional: bool = False) -> T:
    if optional and not call.body.strip():
        return cls()
    return _decode_body(call, cls, json_object(call))


def _decode_body(call: Call, cls: type[T], data: dict[str, Any]) -> T:
    try:
        return from_wire(cls, data)
    except PlatformError as exc:
        detail = exc.detail
        if detail.startswith(cls.__name__):
            detail = "body" + detail[len(cls.__name__) :]
        raise bad_request(call, detail) from None


def _counted_body(call: Call, cls: type[T], counts: tuple[str, ...]) -> T:
    """The JSON body as `cls`, its `counts` whole numbers up to the contract's maximum."""
    data = json_object(call)
    for name in counts:
        value = data.get(name)
        if isinstance(value, float) and value.is_integer():
            data[name] = int(value)  # JSON has one number type: 40.0 is the integer 40
    spec = _decode_body(call, cls, data)
    for name in counts:
        if getattr(spec, name) > MAX_COUNT:
            raise bad_request(call, f"body.{name}: must be at most {MAX_COUNT}")
    return spec


def _new_account(call: Call) -> NewAccount:
    spec = _counted_body(call, NewAccount, ("users", "max_domains"))
    domain_of(call, spec.domain, "body.domain")
    return spec


def _domain(call: Call) -> str:
    return domain_of(call, call.args["domain"], "domain")


def _payment_body(call: Call) -> PaymentBody:
    data = json_object(call)
    amount = data.get("amount")
    if isinstance(amount, str) and not AMOUNT.fullmatch(amount):
        raise bad_request(
            call,
            f'body.amount: expected a positive amount such as "25.00" (up to 12 digits, then '
            f"up to 2 decimals), got {amount!r}",
        )
    return _decode_body(call, PaymentBody, data)


def _query(call: Call, name: str) -> str:
    value = call.query.get(name)
    if value is None or value == "":
        raise bad_request(call, f"the query parameter {name!r} is required")
    return value


def _found(call: Call, obj: T | None, what: str) -> T:
    if obj is None:
        raise NotFound(call.operation, f"{what} does not exist")
    return obj


# -- handlers -----------------------------------------------------------------------------------
def _health(call: Call) -> Reply:
    return Reply(200, {"status": "ok"})


def _get_ticket(call: Call) -> Reply:
    ticket_id = call.args["ticket_id"]
    ticket = call.platform.get_ticket(ticket_id)
    return Reply(200, to_wire(_found(call, ticket, f"ticket {ticket_id}")))


def _add_ticket_comment(call: Call) -> Reply:
    body = _json_body(call, CommentBody)
    comment = call.platform.add_ticket_comment(call.args["ticket_id"], body.body, key_of(call))
    return Reply(201, to_wire(comment))


def _get_account(call: Call) -> Reply:
    account_id = call.args["account_id"]
    account = call.platform.get_account(account_id)
    return Reply(200, to_wire(_found(call, account, f"account {account_id}")))


def _find_account_by_domain(call: Call) -> Reply:
    account = call.platform.find_account_by_domain(_query(call, "domain"))
    return Reply(200, {"accounts": [to_wire(account)] if account else []})


def _create_account(call: Call) -> Reply:
    spec = _new_account(call)
    return Reply(201, to_wire(call.platform.create_account(spec, key_of(call))))


def _cancel_account(call: Call) -> Reply:
    _json_body(call, EmptyBody, optional=True)
    return Reply(200, to_wire(call.platform.cancel_account(call.args["account_id"], key_of(call))))


def _attach_domain(call: Call) -> Reply:
    call.platform.attach_domain(call.args["account_id"], _domain(call), key_of(call))
    return Reply(204)


def _detach_domain(call: Call) -> Reply:
    call.platform.detach_domain(call.args["account_id"], _domain(call), key_of(call))
    return Reply(204)


def _move_domain(call: Call) -> Reply:
    domain = _domain(call)
    body = _json_body(call, MoveBody)
    call.platform.move_domain(domain, body.from_account, body.to_account, key_of(call))
    return Reply(204)


def _get_subscription(call: Call) -> Reply:
    account_id = call.args["account_id"]
    subscription = call.platform.get_subscription(account_id)
    return Reply(200, to_wire(_found(call, subscription, f"a subscription of {account_id}")))


def _count_query(call: Call, name: str) -> int:
    text = _query(call, name)
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
        raise bad_request(call, f"the query parameter {name!r} must be 1..{MAX_COUNT}: {text!r}")
    return int(text)


def _quote_subscription(call: Call) -> Reply:
    text = _query(call, "start")
    try:
        if not DATE.fullmatch(text):
            raise ValueError(text)
        start = date.fromisoformat(text)
    except ValueError:
        raise bad_request(
            call, "the query parameter 'start' must be a date such as 2026-12-05"
        ) from None
    spec = NewSubscription(
        users=_count_query(call, "users"),
        domains=_count_query(call, "domains"),
        services=tuple(_query(call, "services").split(",")),
        start=start,
    )
    return Reply(200, to_wire(call.platform.quote_subscription(call.args["account_id"], spec)))


def _create_subscription(call: Call) -> Reply:
    spec = _counted_body(call, NewSubscription, ("users", "domains"))
    account_id = call.args["account_id"]
    return Reply(201, to_wire(call.platform.create_subscription(account_id, spec, key_of(call))))


def _find_credit(call: Call) -> Reply:
    credit = call.platform.find_credit(_query(call, "idempotency_key"))
    return Reply(200, {"credits": [to_wire(credit)] if credit else []})


def _find_charge(call: Call) -> Reply:
    charge = call.platform.find_charge(_query(call, "idempotency_key"))
    return Reply(200, {"charges": [to_wire(charge)] if charge else []})


def _credit(call: Call) -> Reply:
    body = _payment_body(call)
    credit = call.platform.credit(call.args["account_id"], body.amount, body.reason, key_of(call))
    return Reply(201, to_wire(credit))


def _charge(call: Call) -> Reply:
    body = _payment_body(call)
    charge = call.platform.charge(call.args["account_id"], body.amount, body.reason, key_of(call))
    return Reply(201, to_wire(charge))


_P = API_PREFIX
_ACCOUNT = f"{_P}/accounts/{{account_id}}"
_STORE = f"{_ACCOUNT}/stores/{{store}}"

ROUTES: tuple[Route, ...] = (
    Route("health", "GET", f"{_P}/health", _health),
    Route("get_ticket", "GET", f"{_P}/tickets/{{ticket_id}}", _get_ticket),
    Route(
        "add_ticket_comment",
        "POST",
        f"{_P}/tickets/{{ticket_id}}/comments",
        _add_ticket_comment,
        write=True,
        body="json",
    ),
    Route("get_account", "GET", _ACCOUNT, _get_account),
    Route("find_account_by_domain", "GET", f"{_P}/accounts", _find_account_by_domain),
    Route("create_account", "POST", f"{_P}/accounts", _create_account, write=True, body="json"),
    Route("cancel_account", "POST", f"{_ACCOUNT}/cancel", _cancel_account, True, "json"),
    Route("attach_domain", "PUT", f"{_ACCOUNT}/domains/{{domain}}", _attach_domain, True),
    Route("detach_domain", "DELETE", f"{_ACCOUNT}/domains/{{domain}}", _detach_domain, True),
    Route("move_domain", "POST", f"{_P}/domains/{{domain}}/move", _move_domain, True, "json"),
    Route("list_messages", "GET", f"{_STORE}/messages", list_messages),
    Route("count_messages", "GET", f"{_STORE}/summary", count_messages),
    Route("fetch_message", "GET", f"{_STORE}/messages/{{message_id}}", fetch_message),
    Route("fetch_messages", "POST", f"{_STORE}/fetch", fetch_messages, body="json"),
    Route(
        "import_message",
        "PUT",
        f"{_STORE}/messages/{{message_id}}",
        import_message,
        write=True,
        body="message",
    ),
    Route("get_subscription", "GET", f"{_ACCOUNT}/subscription", _get_subscription),
    Route("quote_subscription", "GET", f"{_ACCOUNT}/subscription-quote", _quote_subscription),
    Route(
        "create_subscription",
        "POST",
        f"{_ACCOUNT}/subscription",
        _create_subscription,
        write=True,
        body="json",
    ),
    Route("find_credit", "GET", f"{_P}/credits", _find_credit),
    Route("find_charge", "GET", f"{_P}/charges", _find_charge),
    Route("credit", "POST", f"{_ACCOUNT}/credits", _credit, write=True, body="json"),
    Route("charge", "POST", f"{_ACCOUNT}/charges", _charge, write=True, body="json"),
)
