"""`SandboxPlatform`: the `Platform` Protocol over one SQLite file, with the real platform's rules.

Every write goes through `_write`, which runs it once per idempotency key and audits it
(`idempotency.py`): the audit table counts every write call ever made, which tests use to
prove that a run made no platform write at all. Each thread gets its own connection; WAL mode
and a 30 s busy timeout let threads and processes share the file safely.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from transfer_runner.clock import Clock, clock_from_env
from transfer_runner.errors import PlatformError
from transfer_runner.platforms.base import (
    Account,
    Charge,
    Comment,
    Credit,
    NewAccount,
    NewSubscription,
    Store,
    Subscription,
    Ticket,
)
from transfer_runner.platforms.sandbox import db, idempotency, operations, records, subscriptions
from transfer_runner.platforms.sandbox.message_reads import MAX_PAGE, MessageReads
from transfer_runner.testpoints import reached as testpoint

__all__ = ["SandboxPlatform", "MAX_PAGE"]

T = TypeVar("T")
W = TypeVar("W", bound=records.WriteResult)


class SandboxPlatform(MessageReads):
    """The embedded platform: `SandboxPlatform("sandbox.db", latency_ms=20)`.

    `latency_ms` is slept at the start of every public Platform call, so benchmarks can
    simulate a remote control panel. `clock` stamps records (default: `TRANSFER_RUNNER_NOW`,
    else the system clock). Opening checks that the file is a sandbox (ConfigError).
    """

    def __init__(
        self, path: str | Path, *, latency_ms: float = 0.0, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self.latency_ms = float(latency_ms)
        self.clock = clock or clock_from_env()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # see `_write`: writers of this process queue here
        self._generation = 0
        self._connections: list[sqlite3.Connection] = []
        self._conn()

    def __enter__(self) -> SandboxPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SandboxPlatform({str(self.path)!r}, latency_ms={self.latency_ms})"

    # -- tickets ---------------------------------------------------------------------------
    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket with its comments in order, or None."""
        return self._read("get_ticket", lambda c: records.read_ticket(c, ticket_id))

    def add_ticket_comment(self, ticket_id: str, body: str, idempotency_key: str) -> Comment:
        """Comment on a ticket; a repeated key returns the first comment."""
        request = {"ticket": ticket_id, "body": body}
        return self._write(
            "add_ticket_comment",
            idempotency_key,
            None,
            request,
            lambda c, now: operations.add_comment(c, ticket_id, body, idempotency_key, now),
            records.decode_comment,
        )

    # -- accounts --------------------------------------------------------------------------
    def get_account(self, account_id: str) -> Account | None:
        """The account with its domains (sorted), or None."""
        return self._read("get_account", lambda c: records.read_account(c, "id = ?", account_id))

    def find_account_by_domain(self, domain: str) -> Account | None:
        """The account holding `domain`, or None (also for a name that cannot be a domain)."""
        try:
            name = operations.domain_name("find_account_by_domain", domain)
        except PlatformError:
            self._pause()
            return None
        where = "id = (SELECT account FROM domains WHERE domain = ?)"
        return self._read("find_account_by_domain", lambda c: records.read_account(c, where, name))

    def create_account(self, spec: NewAccount, idempotency_key: str) -> Account:
        """Create an active resold account `A-<n>` under `spec.parent` on `spec.domain`."""
        request = {**asdict(spec), "services": list(spec.services)}
        return self._write(
            "create_account",
            idempotency_key,
            spec.parent,
            request,
            lambda c, now: operations.create_account(c, spec, now),
            records.decode_account,
        )

    def cancel_account(self, account_id: str, idempotency_key: str) -> Account:
        """Cancel an active account (AccountCancelled if it already is, under a new key)."""
        return self._write(
            "cancel_account",
            idempotency_key,
            account_id,
            {"account": account_id},
            lambda c, now: operations.cancel_account(c, account_id, now),
            records.decode_account,
        )

    # -- domains ---------------------------------------------------------------------------
    def attach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Attach a free domain to an active account (Conflict if another account holds it)."""
        self._write(
            "attach_domain",
            idempotency_key,
            account_id,
            {"account": account_id, "domain": domain},
            lambda c, now: operations.attach_domain(c, account_id, domain, now),
            _none,
        )

    def detach_domain(self, account_id: str, domain: str, idempotency_key: str) -> None:
        """Detach a domain from the account holding it, cancelled or not."""
        self._write(
            "detach_domain",
            idempotency_key,
            account_id,
            {"account": account_id, "domain": domain},
            lambda c, now: operations.detach_domain(c, account_id, domain),
            _none,
        )

    def move_domain(
        self, domain: str, from_account: str, to_account: str, idempotency_key: str
    ) -> None:
        """Detach and attach in one transaction: if the attach fails the domain stays put."""
        self._write(
            "move_domain",
            idempotency_key,
            to_account,
            {"domain": domain, "from": from_account, "to": to_account},
            lambda c, now: operations.move_domain(c, domain, from_account, to_account, now),
            _none,
        )

    def import_message(
        self, account_id: str, store: Store, message_id: str, raw: bytes, idempotency_key: str
    ) -> bool:
        """Store a message; False (and no change) if that id is already in that store."""
        digest = hashlib.sha256(raw).hexdigest() if isinstance(raw, bytes) else repr(raw)
        request = {"account": account_id, "store": store, "id": message_id, "sha256": digest}
        added: bool = self._write(
            "import_message",
            idempotency_key,
            account_id,
            request,
            lambda c, now: operations.import_message(c, account_id, store, message_id, raw, now),
            json.loads,  # the stored `true` or `false`
        )
        return added

    # -- billing ---------------------------------------------------------------------------
    def get_subscription(self, account_id: str) -> Subscription | None:
        """The account's billing period and price, or None if it has no billing."""
        return self._read("get_subscription", lambda c: records.read_subscription(c, account_id))

    def quote_subscription(self, parent: str, spec: NewSubscription) -> Subscription:
        """The first period `parent` would be billed for `spec` (see `pricing`)."""
        return self._read(
            "quote_subscription", lambda c: subscriptions.quote_subscription(c, parent, spec)
        )

    def create_subscription(
        self, account_id: str, spec: NewSubscription, idempotency_key: str
    ) -> Subscription:
        """Subscribe a resold account from `spec.start`, once per key."""
        request = {"account": account_id, **asdict(spec), "start": spec.start.isoformat()}
        return self._write(
            "create_subscription",
            idempotency_key,
            account_id,
            request,
            lambda c, now: subscriptions.create_subscription(c, account_id, spec),
            records.decode_subscription,
        )

    def find_credit(self, idempotency_key: str) -> Credit | None:
        """The credit made with this key, or None (read-only)."""
        found = self._read(
            "find_credit", lambda c: records.read_payment(c, "credits", idempotency_key)
        )
        return found if isinstance(found, Credit) else None

    def find_charge(self, idempotency_key: str) -> Charge | None:
        """The charge made with this key, or None (read-only)."""
        found = self._read(
            "find_charge", lambda c: records.read_payment(c, "charges", idempotency_key)
        )
        return found if isinstance(found, Charge) else None

    def credit(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Credit:
        """Credit an account (cancelled ones too); a repeated key returns the first credit."""
        return self._payment("credit", account_id, amount, reason, idempotency_key)

    def charge(self, account_id: str, amount: Decimal, reason: str, idempotency_key: str) -> Charge:
        """Charge an active account; a repeated key returns the first charge."""
        return self._payment("charge", account_id, amount, reason, idempotency_key)

    # -- sandbox extras --------------------------------------------------------------------
    def write_calls(self) -> int:
        """How many write calls the platform has ever received (replays and refusals too)."""
        return int(self._read("write_calls", idempotency.count_audit, pause=False))

    @contextmanager
    def unaudited_write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction outside the Platform API, for sandbox machinery (the mail flow):
        no idempotency key, no audit row, queued with this process's platform writers."""
        conn = self._conn()
        with self._write_lock, db.write(conn):
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on this thread's connection (sandbox machinery, no latency)."""
        conn = self._conn()
        with db.read(conn):
            yield conn

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones."""
        with self._lock:
            self._generation += 1
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    # -- machinery -------------------------------------------------------------------------
    @overload
    def _payment(
        self, op: Literal["charge"], account_id: str, amount: Decimal, reason: str, key: str
    ) -> Charge: ...

    @overload
    def _payment(
        self, op: Literal["credit"], account_id: str, amount: Decimal, reason: str, key: str
    ) -> Credit: ...

    def _payment(
        self,
        op: Literal["charge", "credit"],
        account_id: str,
        amount: Decimal,
        reason: str,
        key: str,
    ) -> Charge | Credit:
        table = "charges" if op == "charge" else "credits"
        request = {"account": account_id, "amount": records.amount_text(amount), "reason": reason}
        decode: Callable[[str], Charge | Credit] = (
            records.decode_charge if op == "charge" else records.decode_credit
        )
        return self._write(
            op,
            key,
            account_id,
            request,
            lambda c, now: operations.add_payment(c, table, account_id, amount, reason, key, now),
            decode,
        )

    def _pause(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            conn = db.connect(self.path)
            try:
                db.check_schema(conn, self.path)
            except BaseException:
                conn.close()
                raise
            with self._lock:
                self._connections.append(conn)
                local.conn, local.generation = conn, self._generation
        current: sqlite3.Connection = local.conn
        return current

    def _read(self, op: str, query: Callable[[sqlite3.Connection], T], *, pause: bool = True) -> T:
        if pause:
            self._pause()
        conn = self._conn()
        try:
            with db.read(conn):
                return query(conn)
        except sqlite3.Error as exc:
            raise PlatformError(op, f"sandbox database error: {exc}", 503) from exc

    def _write(
        self,
        op: str,
        key: str,
        account: str | None,
        request: dict[str, Any],
        action: Callable[[sqlite3.Connection, datetime], W],
        decode: Callable[[str], W],
    ) -> W:
        """Run `action` once per idempotency key, audited (`idempotency.write_once`)."""
        self._pause()
        write = idempotency.Write(op, key, account, request)
        result = idempotency.write_once(
            self._conn(), self._write_lock, self.clock.now, write, action, decode
        )
        testpoint(f"platform-after-{op}")  # committed, not answered: a lost ack
        return result


def _none(_text: str) -> None:
    return None
