"""The platform port: everything the steps may ask of the provider, as one typed Protocol.

Steps know nothing but this interface. Every write takes an `idempotency_key` derived from the
transfer name and the step (see `transfer_runner.modules.keys`); a platform that sees a key again
returns the first result instead of acting twice, which is what makes retries and re-runs safe
(invariant I3). Reads never change anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "AccountType",
    "AccountStatus",
    "Store",
    "STORES",
    "Comment",
    "Ticket",
    "Account",
    "NewAccount",
    "Subscription",
    "NewSubscription",
    "MessageInfo",
    "MessagePage",
    "Charge",
    "Credit",
    "Platform",
    "MAX_FETCH",
]

MAX_FETCH = 100  # message ids per `fetch_messages` call

AccountType = Literal["direct", "reseller", "resold"]
AccountStatus = Literal["active", "cancelled"]
Store = Literal["quarantine", "archive"]
STORES: tuple[Store, ...] = ("quarantine", "archive")


@dataclass(frozen=True)
class Comment:
    """A comment on a ticket. `idempotency_key` is set for comments written by a runner."""

    id: str
    body: str
    created_at: datetime
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A support ticket. `account` is the account the ticket was opened from."""

    id: str
    account: str
    subject: str
    body: str
    status: Literal["open", "closed"]
    resolution: str | None  # e.g. "rejected", "resolved"; None while open
    created_at: datetime
    comments: tuple[Comment, ...] = ()


@dataclass(frozen=True)
class Account:
    """An account on the platform. `parent` is the reseller of a resold account."""

    id: str
    type: AccountType
    name: str
    status: AccountStatus
    parent: str | None
    domains: tuple[str, ...]
    users: int
    max_domains: int
    services: tuple[str, ...]
    cancelled_at: datetime | None = None  # when it was cancelled (pro-ration counts from it)


@dataclass(frozen=True)
class NewAccount:
    """What `create_account` needs: a resold account under `parent` on one (temporary) domain."""

    parent: str
    name: str
    domain: str
    users: int
    max_domains: int
    services: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    """The current billing period of an account; the period is [period_start, period_end)."""

    account: str
    price: Decimal
    period_start: date
    period_end: date


@dataclass(frozen=True)
class NewSubscription:
    """What a resold account is subscribed to from `start` (the cut-over day): the reseller is
    billed for its first period, from `start` to the reseller's next billing day."""

    users: int
    domains: int
    services: tuple[str, ...]
    start: date


@dataclass(frozen=True)
class MessageInfo:
    """One stored message as listed. `sha256` is the platform's digest when it offers one."""

    id: str
    size: int
    received_at: datetime
    sha256: str | None = None


@dataclass(frozen=True)
class MessagePage:
    """A page of a message listing; `next_cursor` is None on the last page."""

    messages: tuple[MessageInfo, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Charge:
    """A charge to an account (e.g. the transfer fee)."""

    id: str
    account: str
    amount: Decimal
    reason: str
    idempotency_key: str
    created_at: datetime


@dataclass(frozen=True)
class Credit:
    """A credit to an account (e.g. the pro-ration of a cancelled subscription)."""

    id: str
    account: str
    amount: Decimal
    reason: str
    idempotency_key: str
    created_at: datetime


@runtime_checkable
class Platform(Protocol):
    """The provider's control panel, ticket system and billing, as the runner sees them.

    Errors are `transfer_runner.errors.PlatformError` and its leaves (`NotFound`, `Conflict`,
    `AccountCancelled`). Reads return None for a missing object where noted.
    """

    # -- tickets ---------------------------------------------------------------------------
    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with its comments, or None."""
        ...

    def add_ticket_comment(self, ticket_id: str, body: str, idempotency_key: str) -> Comment:
        """Comment on a ticket; a repeated key returns the first comment."""
        ...

    # -- accounts --------------------------------------------------------------------------
    def get_account(self, account_id: str) -> Account | None:
        """The account, or None."""
        ...

    def find_account_by_domain(self, domain: str) -> Account | None:
        """The account holding `domain` (there is at most one), or None."""
        ...

    def create_account(self, spec: NewAccount, idempotency_key: str) -> Account:
        """Create a resold account; a repeated key returns the account first created."""
        ...

    def cancel_account(self, account_id: str, idempotency_key: str) -> Account:
        """Cancel an account (it keeps its domains until they are moved or detached)."""
        ...

    # -- domains ---------------------------------------------------------------------------
    def attach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Attach a free domain to an active account (Conflict if another account holds it)."""
        ...

    def detach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Detach a domain from an account (allowed on a cancelled account: it releases it)."""
        ...

    def move_domain(
        self, domain: str, from_account: str, to_account: str, idempotency_key: str
    ) -> None:
        """Detach from one account and attach to another back to back (invariant I4).

        If the attach fails the domain goes back to `from_account` and the error is raised.
        `from_account` may be cancelled (moving out releases the domain); `to_account` may not.
        """
        ...

    # -- messages --------------------------------------------------------------------------
    def list_messages(
        self, account_id: str, store: Store, cursor: str | None = None, limit: int = 500
    ) -> MessagePage:
        """One page of a store's messages in a stable order (by id)."""
        ...

    def count_messages(self, account_id: str, store: Store) -> tuple[int, int]:
        """(message count, total bytes) of a store."""
        ...

    def fetch_message(self, account_id: str, store: Store, message_id: str) -> bytes:
        """The raw RFC 822 bytes of one message."""
        ...

    def fetch_messages(
        self, account_id: str, store: Store, message_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """The raw bytes of several messages of one store in one call (at most MAX_FETCH ids,
        no repeats): id -> bytes; a message no longer there (expired) is left out."""
        ...

    def import_message(
        self, account_id: str, store: Store, message_id: str, raw: bytes, idempotency_key: str
    ) -> bool:
        """Store a message in an account; False (and no change) if that id is already there."""
        ...

    # -- billing ---------------------------------------------------------------------------
    def get_subscription(self, account_id: str) -> Subscription | None:
        """The account's current subscription period and price, or None."""
        ...

    def quote_subscription(self, parent: str, spec: NewSubscription) -> Subscription:
        """The first period the platform would bill reseller `parent` for `spec` (read-only;
        the quote's `account` is the parent)."""
        ...

    def create_subscription(
        self, account_id: str, spec: NewSubscription, idempotency_key: str
    ) -> Subscription:
        """Subscribe an active resold account from `spec.start` (Conflict if it has a
        subscription already); a repeated key returns the first subscription."""
        ...

    def find_credit(self, idempotency_key: str) -> Credit | None:
        """The credit made with this key, or None (read-only)."""
        ...

    def find_charge(self, idempotency_key: str) -> Charge | None:
        """The charge made with this key, or None (read-only)."""
        ...

    def credit(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Credit:
        """Credit an account; a repeated key returns the first credit and credits nothing."""
        ...

    def charge(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Charge:
        """Charge an account; a repeated key returns the first charge and charges nothing."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass
class WriteCounter:
    """Counts platform writes made through an adapter (for recaps, tests and benchmarks)."""

    count: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def add(self, operation: str) -> None:
        self.count += 1
        self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
