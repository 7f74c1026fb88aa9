"""`HttpPlatform`: the `Platform` Protocol over the platform REST API (`schemas/platform-api.yaml`).

One Protocol method is one HTTP request (plus safe retries, see `transport.py`). Every write
sends its idempotency key as the `Idempotency-Key` header, so a write retried after a lost
reply is replayed by the platform, never done twice (invariant I3). The bearer token comes from
the environment only (`open_http_platform`): secrets never go in URLs or manifests.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from transfer_runner.errors import ConfigError, NotFound, PlatformError
from transfer_runner.platforms.base import (
    Account,
    Charge,
    Comment,
    Credit,
    MessagePage,
    NewAccount,
    NewSubscription,
    Store,
    Subscription,
    Ticket,
    WriteCounter,
)
from transfer_runner.platforms.http import transport
from transfer_runner.platforms.http.replies import decode_fetched
from transfer_runner.platforms.http.transport import HTTP_RETRIES, Endpoint, Response, Transport
from transfer_runner.platforms.http.wire import API_PREFIX, from_wire, to_wire

__all__ = [
    "HttpPlatform",
    "open_http_platform",
    "TOKEN_ENV",
    "TIMEOUT_ENV",
    "RETRIES_ENV",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
]

log = logging.getLogger(__name__)

TOKEN_ENV = "TRANSFER_RUNNER_PLATFORM_TOKEN"
TIMEOUT_ENV = "TRANSFER_RUNNER_PLATFORM_TIMEOUT"
RETRIES_ENV = "TRANSFER_RUNNER_PLATFORM_RETRIES"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 6

T = TypeVar("T")
_P = API_PREFIX
_ACCOUNT = f"{_P}/accounts/{{account_id}}"
_STORE = f"{_ACCOUNT}/stores/{{store}}"

GET_TICKET = Endpoint("get_ticket", "GET", f"{_P}/tickets/{{ticket_id}}")
ADD_COMMENT = Endpoint("add_ticket_comment", "POST", f"{_P}/tickets/{{ticket_id}}/comments")
GET_ACCOUNT = Endpoint("get_account", "GET", _ACCOUNT)
FIND_ACCOUNT = Endpoint("find_account_by_domain", "GET", f"{_P}/accounts")
CREATE_ACCOUNT = Endpoint("create_account", "POST", f"{_P}/accounts")
CANCEL_ACCOUNT = Endpoint("cancel_account", "POST", f"{_ACCOUNT}/cancel")
ATTACH_DOMAIN = Endpoint("attach_domain", "PUT", f"{_ACCOUNT}/domains/{{domain}}")
DETACH_DOMAIN = Endpoint("detach_domain", "DELETE", f"{_ACCOUNT}/domains/{{domain}}")
MOVE_DOMAIN = Endpoint("move_domain", "POST", f"{_P}/domains/{{domain}}/move")
LIST_MESSAGES = Endpoint("list_messages", "GET", f"{_STORE}/messages")
COUNT_MESSAGES = Endpoint("count_messages", "GET", f"{_STORE}/summary")
FETCH_MESSAGE = Endpoint("fetch_message", "GET", f"{_STORE}/messages/{{message_id}}")
FETCH_MESSAGES = Endpoint("fetch_messages", "POST", f"{_STORE}/fetch", read=True)
IMPORT_MESSAGE = Endpoint("import_message", "PUT", f"{_STORE}/messages/{{message_id}}")
GET_SUBSCRIPTION = Endpoint("get_subscription", "GET", f"{_ACCOUNT}/subscription")
QUOTE_SUBSCRIPTION = Endpoint("quote_subscription", "GET", f"{_ACCOUNT}/subscription-quote")
CREATE_SUBSCRIPTION = Endpoint("create_subscription", "POST", f"{_ACCOUNT}/subscription")
FIND_CREDIT = Endpoint("find_credit", "GET", f"{_P}/credits")
FIND_CHARGE = Endpoint("find_charge", "GET", f"{_P}/charges")
CREDIT = Endpoint("credit", "POST", f"{_ACCOUNT}/credits")
CHARGE = Endpoint("charge", "POST", f"{_ACCOUNT}/charges")
HEALTH = Endpoint("health", "GET", f"{_P}/health")

RFC822 = "message/rfc822"


class HttpPlatform:
    """The platform REST API as a `Platform`: `HttpPlatform("https://panel.example", token=...)`.

    `timeout` is the read timeout in seconds (connecting waits at most 10 s); `max_attempts`
    bounds the tries of a safe request (see `transport.py`); `pool_size` should be at least the
    number of forks; `max_reply_bytes` bounds a reply's body (see `transport.py`). `writes`
    counts the write calls made through this adapter (one per Protocol call, however many
    attempts it took). `sleep` and `rng` drive the retry backoff (tests pass fakes).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        pool_size: int = 32,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_reply_bytes: int = transport.MAX_REPLY_BYTES,
    ) -> None:
        self._http = Transport(
            base_url,
            token=token,
            timeout=timeout,
            policy=replace(HTTP_RETRIES, attempts=max_attempts),
            pool_size=pool_size,
            sleep=sleep,
            rng=rng,
            max_reply_bytes=max_reply_bytes,
        )
        self.base_url = self._http.base_url
        self.policy = self._http.policy
        self.timeout = timeout
        self.writes = WriteCounter()
        self._writes_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpPlatform({self.base_url!r})"

    def __enter__(self) -> HttpPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tickets ---------------------------------------------------------------------------
    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with its comments, or None."""
        return self._get_or_none(Ticket, GET_TICKET, {"ticket_id": ticket_id})

    def add_ticket_comment(self, ticket_id: str, body: str, idempotency_key: str) -> Comment:
        """Comment on a ticket; a repeated key returns the first comment."""
        params = {"ticket_id": ticket_id}
        reply = self._write(ADD_COMMENT, params, idempotency_key, json_body={"body": body})
        return _decode(Comment, ADD_COMMENT, reply)

    # -- accounts --------------------------------------------------------------------------
    def get_account(self, account_id: str) -> Account | None:
        """The account, or None."""
        return self._get_or_none(Account, GET_ACCOUNT, {"account_id": account_id})

    def find_account_by_domain(self, domain: str) -> Account | None:
        """The account holding `domain`, or None."""
        reply = self._http.request(FIND_ACCOUNT, query={"domain": domain})
        return _one_of(Account, FIND_ACCOUNT, reply, "accounts")

    def create_account(self, spec: NewAccount, idempotency_key: str) -> Account:
        """Create a resold account; a repeated key returns the account first created."""
        reply = self._write(CREATE_ACCOUNT, {}, idempotency_key, json_body=to_wire(spec))
        return _decode(Account, CREATE_ACCOUNT, reply)

    def cancel_account(self, account_id: str, idempotency_key: str) -> Account:
        """Cancel an account (it keeps its domains until they are moved or detached)."""
        params = {"account_id": account_id}
        reply = self._write(CANCEL_ACCOUNT, params, idempotency_key, json_body={})
        return _decode(Account, CANCEL_ACCOUNT, reply)

    # -- domains ---------------------------------------------------------------------------
    def attach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Attach a free domain to an active account (Conflict if another account holds it)."""
        self._write(ATTACH_DOMAIN, {"account_id": account_id, "domain": domain}, idempotency_key)

    def detach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Detach a domain from an account (allowed on a cancelled account: it releases it)."""
        self._write(DETACH_DOMAIN, {"account_id": account_id, "domain": domain}, idempotency_key)

    def move_domain(
        self, domain: str, from_account: str, to_account: str, idempotency_key: str
    ) -> None:
        """Detach and attach back to back on the platform (invariant I4)."""
        body = {"from_account": from_account, "to_account": to_account}
        self._write(MOVE_DOMAIN, {"domain": domain}, idempotency_key, json_body=body)

    # -- messages --------------------------------------------------------------------------
    def list_messages(
        self, account_id: str, store: Store, cursor: str | None = None, limit: int = 500
    ) -> MessagePage:
        """One page of a store's messages in a stable order (by id)."""
        params = {"account_id": account_id, "store": store}
        query = {"cursor": cursor, "limit": limit}
        reply = self._http.request(LIST_MESSAGES, params, query=query)
        return _decode(MessagePage, LIST_MESSAGES, reply)

    def count_messages(self, account_id: str, store: Store) -> tuple[int, int]:
        """(message count, total bytes) of a store."""
        params = {"account_id": account_id, "store": store}
        reply = self._http.request(COUNT_MESSAGES, params)
        data = _object(COUNT_MESSAGES, reply)
        count, size = data.get("count"), data.get("bytes")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, size)):
            raise _bad_reply(COUNT_MESSAGES, reply, "expected integers 'count' and 'bytes'")
        return int(count), int(size)  # type: ignore[arg-type]

    def fetch_message(self, account_id: str, store: Store, message_id: str) -> bytes:
        """The raw RFC 822 bytes of one message."""
        params = {"account_id": account_id, "store": store, "message_id": message_id}
        return self._http.request(FETCH_MESSAGE, params, accept=RFC822).body

    def fetch_messages(
        self, account_id: str, store: Store, message_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """Several messages in one request (retried as a read); those gone are left out."""
        params = {"account_id": account_id, "store": store}
        reply = self._http.request(FETCH_MESSAGES, params, json_body={"ids": list(message_ids)})
        return decode_fetched(FETCH_MESSAGES.label, _object(FETCH_MESSAGES, reply), message_ids)

    def import_message(
        self, account_id: str, store: Store, message_id: str, raw: bytes, idempotency_key: str
    ) -> bool:
        """Store a message in an account; False (and no change) if that id is already there."""
        if not isinstance(raw, bytes | bytearray) or not raw:
            raise PlatformError(IMPORT_MESSAGE.label, "the message must be non-empty bytes", 400)
        params = {"account_id": account_id, "store": store, "message_id": message_id}
        reply = self._write(
            IMPORT_MESSAGE, params, idempotency_key, body=bytes(raw), content_type=RFC822
        )
        imported = _object(IMPORT_MESSAGE, reply).get("imported")
        if not isinstance(imported, bool):
            raise _bad_reply(IMPORT_MESSAGE, reply, "expected a boolean 'imported'")
        return imported

    # -- billing ---------------------------------------------------------------------------
    def get_subscription(self, account_id: str) -> Subscription | None:
        """The account's current subscription period and price, or None."""
        return self._get_or_none(Subscription, GET_SUBSCRIPTION, {"account_id": account_id})

    def quote_subscription(self, parent: str, spec: NewSubscription) -> Subscription:
        """The first period the platform would bill `parent` for `spec` (read-only)."""
        query = {
            "users": str(spec.users),
            "domains": str(spec.domains),
            "services": ",".join(spec.services),
            "start": spec.start.isoformat(),
        }
        reply = self._http.request(QUOTE_SUBSCRIPTION, {"account_id": parent}, query=query)
        return _decode(Subscription, QUOTE_SUBSCRIPTION, reply)

    def create_subscription(
        self, account_id: str, spec: NewSubscription, idempotency_key: str
    ) -> Subscription:
        """Subscribe a resold account from `spec.start`; a repeated key returns the first."""
        params = {"account_id": account_id}
        reply = self._write(CREATE_SUBSCRIPTION, params, idempotency_key, json_body=to_wire(spec))
        return _decode(Subscription, CREATE_SUBSCRIPTION, reply)

    def find_credit(self, idempotency_key: str) -> Credit | None:
        """The credit made with this key, or None (read-only)."""
        reply = self._http.request(FIND_CREDIT, query={"idempotency_key": idempotency_key})
        return _one_of(Credit, FIND_CREDIT, reply, "credits")

    def find_charge(self, idempotency_key: str) -> Charge | None:
        """The charge made with this key, or None (read-only)."""
        reply = self._http.request(FIND_CHARGE, query={"idempotency_key": idempotency_key})
        return _one_of(Charge, FIND_CHARGE, reply, "charges")

    def credit(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Credit:
        """Credit an account; a repeated key returns the first credit and credits nothing."""
        reply = self._payment(CREDIT, account_id, amount, reason, idempotency_key)
        return _decode(Credit, CREDIT, reply)

    def charge(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Charge:
        """Charge an account; a repeated key returns the first charge and charges nothing."""
        reply = self._payment(CHARGE, account_id, amount, reason, idempotency_key)
        return _decode(Charge, CHARGE, reply)

    # -- extras ----------------------------------------------------------------------------
    def health(self) -> bool:
        """True when the platform answers `GET /v1/health` with status ok (no auth needed)."""
        reply = self._http.request(HEALTH)
        return _object(HEALTH, reply).get("status") == "ok"

    def close(self) -> None:
        """Release pooled connections; a later call opens new ones."""
        self._http.close()

    # -- machinery -------------------------------------------------------------------------
    def _get_or_none(self, cls: type[T], endpoint: Endpoint, params: Mapping[str, str]) -> T | None:
        try:
            reply = self._http.request(endpoint, params)
        except NotFound:
            return None
        return _decode(cls, endpoint, reply)

    def _write(
        self,
        endpoint: Endpoint,
        params: Mapping[str, str],
        idempotency_key: str,
        **kwargs: Any,
    ) -> Response:
        with self._writes_lock:
            self.writes.add(endpoint.name)
        return self._http.request(endpoint, params, idempotency_key=idempotency_key, **kwargs)

    def _payment(
        self, endpoint: Endpoint, account_id: str, amount: Decimal, reason: str, key: str
    ) -> Response:
        if not isinstance(amount, Decimal) or not amount.is_finite():
            detail = f"amount must be a positive Decimal, not {amount!r}"
            raise PlatformError(endpoint.label, detail, 400)
        body = {"amount": format(amount, "f"), "reason": reason}
        return self._write(endpoint, {"account_id": account_id}, key, json_body=body)


# -- decoding replies ---------------------------------------------------------------------------
def _object(endpoint: Endpoint, reply: Response) -> dict[str, Any]:
    data = reply.json(endpoint.label)
    if not isinstance(data, dict):
        raise _bad_reply(endpoint, reply, f"expected a JSON object, got {type(data).__name__}")
    return data


def _decode(cls: type[T], endpoint: Endpoint, reply: Response) -> T:
    return _from_wire(cls, endpoint, reply, _object(endpoint, reply))


def _from_wire(cls: type[T], endpoint: Endpoint, reply: Response, data: Any) -> T:
    if not isinstance(data, Mapping):
        raise _bad_reply(endpoint, reply, f"expected a JSON object for {cls.__name__}")
    try:
        return from_wire(cls, data, strict=False)  # a provider may add fields to replies
    except PlatformError as exc:
        raise _bad_reply(endpoint, reply, exc.detail) from exc


def _one_of(cls: type[T], endpoint: Endpoint, reply: Response, key: str) -> T | None:
    items = _object(endpoint, reply).get(key)
    if not isinstance(items, list) or len(items) > 1:
        raise _bad_reply(endpoint, reply, f"expected {key!r}: a list of at most one item")
    return _from_wire(cls, endpoint, reply, items[0]) if items else None


def _bad_reply(endpoint: Endpoint, reply: Response, detail: str) -> PlatformError:
    return PlatformError(endpoint.label, f"unexpected reply: {detail}", reply.status)


# -- opening from a URL and the environment ---------------------------------------------------
def open_http_platform(url: str) -> HttpPlatform:
    """An `HttpPlatform` for `http(s)://HOST[:PORT][/PATH]`, configured from the environment.

    `TRANSFER_RUNNER_PLATFORM_TOKEN` is the bearer token (never in the URL: a URL holding
    credentials or a query string is refused). `TRANSFER_RUNNER_PLATFORM_TIMEOUT` (seconds,
    default 30) and `TRANSFER_RUNNER_PLATFORM_RETRIES` (retries after the first attempt,
    default 5; 0 turns retrying off) and `TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB` (default 96)
    are optional.
    """
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    timeout = _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT, float, minimum=0.001)
    retries = int(_env_number(RETRIES_ENV, DEFAULT_MAX_ATTEMPTS - 1, int, minimum=0))
    reply_mib = int(
        _env_number(transport.MAX_REPLY_ENV, transport.MAX_REPLY_BYTES >> 20, int, minimum=1)
    )
    platform = HttpPlatform(
        url, token=token, timeout=timeout, max_attempts=retries + 1, max_reply_bytes=reply_mib << 20
    )
    _warn_plain_http(platform.base_url, token)
    return platform


def _env_number(name: str, default: float, kind: type, *, minimum: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum or value == float("inf"):
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}={text!r}: expected {noun} >= {minimum:g}")
    return float(value)


def _warn_plain_http(base_url: str, token: str | None) -> None:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or token is None or _is_loopback(parts.hostname or ""):
        return
    log.warning(
        "the platform token is sent over plain http to %s; use https outside loopback",
        parts.hostname,
    )


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
