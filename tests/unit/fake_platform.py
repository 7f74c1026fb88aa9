"""An in-memory platform with just the message methods of the Platform Protocol.

Messages are generated deterministically (same seed, same bytes). Every other Protocol method
raises NotImplementedError, so a test that strays outside messages fails loudly.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from transfer_runner.errors import NotFound, PlatformError
from transfer_runner.platforms.base import (
    STORES,
    Account,
    Charge,
    Comment,
    Credit,
    MessageInfo,
    MessagePage,
    NewAccount,
    Store,
    Subscription,
    Ticket,
)

__all__ = ["FakePlatform", "make_message", "BASE_TIME"]

BASE_TIME = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
MAX_PAGE = 10_000
_ALPHABET = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,\r\n"
_PRINTABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


def make_message(seed: int, account: str, store: str, index: int, size: int) -> bytes:
    """An RFC 822 message of exactly `size` bytes (at least the headers), same for same args."""
    received = BASE_TIME + timedelta(minutes=index)
    head = (
        f"From: sender{index}@example.org\r\n"
        f"To: user@{account.lower()}.example\r\n"
        f"Subject: {store} message {index}\r\n"
        f"Date: {received.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <{seed}.{index}@{store}.example>\r\n\r\n"
    ).encode()
    rng = random.Random(f"{seed}/{account}/{store}/{index}")
    body = rng.randbytes(max(0, size - len(head))).translate(_PRINTABLE)
    return head + body


@dataclass
class _Stored:
    raw: bytes
    received_at: datetime


class FakePlatform:
    """Stores keyed by (account, store); listing in id order, cursor = last id of a page."""

    def __init__(self, give_sha256: bool = True) -> None:
        self.give_sha256 = give_sha256
        self.stores: dict[tuple[str, str], dict[str, _Stored]] = {}
        self.listed_sha256: dict[str, str] = {}  # id -> digest the listing claims (a lie)
        self.listed_size: dict[str, int] = {}  # id -> size the listing claims (a lie)
        self.calls: Counter[str] = Counter()
        self.import_keys: list[str] = []

    # -- test helpers ------------------------------------------------------------------------
    def add_messages(
        self, account: str, store: str, count: int, size: int = 2048, seed: int = 7
    ) -> list[str]:
        """Add `count` generated messages `msg-00000`...; returns their ids."""
        ids = []
        for index in range(count):
            message_id = f"msg-{index:05d}"
            raw = make_message(seed, account, store, index, size)
            self.put(account, store, message_id, raw, BASE_TIME + timedelta(minutes=index))
            ids.append(message_id)
        return ids

    def put(
        self, account: str, store: str, message_id: str, raw: bytes, received_at: datetime
    ) -> None:
        """Store a message directly (no checks: tests use it to build odd worlds)."""
        self.stores.setdefault((account, store), {})[message_id] = _Stored(raw, received_at)

    def remove(self, account: str, store: str, message_id: str) -> None:
        """Delete a message directly."""
        del self.stores[(account, store)][message_id]

    def raw(self, account: str, store: str, message_id: str) -> bytes:
        """The stored bytes of a message."""
        return self.stores[(account, store)][message_id].raw

    def ids(self, account: str, store: str) -> list[str]:
        """The ids of a store, sorted."""
        return sorted(self.stores.get((account, store), {}))

    # -- messages (the Protocol) ---------------------------------------------------------
    def list_messages(
        self, account_id: str, store: Store, cursor: str | None = None, limit: int = 500
    ) -> MessagePage:
        self.calls["list_messages"] += 1
        self._check_store("list_messages", store)
        if not 1 <= limit <= MAX_PAGE:
            raise PlatformError("list_messages", f"limit must be 1..{MAX_PAGE}", 400)
        messages = self.stores.get((account_id, store), {})
        ids = [i for i in sorted(messages) if cursor is None or i > cursor]
        page = ids[:limit]
        infos = tuple(self._info(i, messages[i]) for i in page)
        return MessagePage(infos, page[-1] if len(ids) > limit else None)

    def count_messages(self, account_id: str, store: Store) -> tuple[int, int]:
        self.calls["count_messages"] += 1
        self._check_store("count_messages", store)
        messages = self.stores.get((account_id, store), {})
        return len(messages), sum(len(m.raw) for m in messages.values())

    def fetch_message(self, account_id: str, store: Store, message_id: str) -> bytes:
        self.calls["fetch_message"] += 1
        self._check_store("fetch_message", store)
        found = self.stores.get((account_id, store), {}).get(message_id)
        if found is None:
            raise NotFound("fetch_message", f"no message {message_id} in {account_id}'s {store}")
        return found.raw

    def fetch_messages(
        self, account_id: str, store: Store, message_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """Built on `fetch_message`, one id at a time (so a test that patches it patches
        this too; "fetch_message" counts the messages, "fetch_messages" the calls)."""
        self.calls["fetch_messages"] += 1
        self._check_store("fetch_messages", store)
        found: dict[str, bytes] = {}
        for message_id in message_ids:
            try:
                found[message_id] = self.fetch_message(account_id, store, message_id)
            except NotFound:
                continue
        return found

    def import_message(
        self, account_id: str, store: Store, message_id: str, raw: bytes, idempotency_key: str
    ) -> bool:
        self.calls["import_message"] += 1
        self._check_store("import_message", store)
        self.import_keys.append(idempotency_key)
        messages = self.stores.setdefault((account_id, store), {})
        if message_id in messages:
            return False
        messages[message_id] = _Stored(bytes(raw), BASE_TIME)
        return True

    def _info(self, message_id: str, stored: _Stored) -> MessageInfo:
        digest = hashlib.sha256(stored.raw).hexdigest() if self.give_sha256 else None
        return MessageInfo(
            id=message_id,
            size=self.listed_size.get(message_id, len(stored.raw)),
            received_at=stored.received_at,
            sha256=self.listed_sha256.get(message_id, digest),
        )

    @staticmethod
    def _check_store(operation: str, store: str) -> None:
        if store not in STORES:
            raise PlatformError(operation, f"unknown store {store!r}", 400)

    # -- everything else is out of scope for this fake -----------------------------------
    def get_ticket(self, ticket_id: str) -> Ticket | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def add_ticket_comment(self, ticket_id: str, body: str, idempotency_key: str) -> Comment:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def get_account(self, account_id: str) -> Account | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def find_account_by_domain(self, domain: str) -> Account | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def create_account(self, spec: NewAccount, idempotency_key: str) -> Account:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def cancel_account(self, account_id: str, idempotency_key: str) -> Account:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def attach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def detach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def move_domain(
        self, domain: str, from_account: str, to_account: str, idempotency_key: str
    ) -> None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def get_subscription(self, account_id: str) -> Subscription | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def find_credit(self, idempotency_key: str) -> Credit | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def find_charge(self, idempotency_key: str) -> Charge | None:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def credit(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Credit:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def charge(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Charge:
        raise NotImplementedError("FakePlatform only implements the message methods")

    def close(self) -> None:
        return None
