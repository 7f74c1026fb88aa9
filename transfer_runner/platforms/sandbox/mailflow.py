"""Live mailboxes: mail arrives, and retention expires it, while a transfer runs
(README: "The sandbox platform").

`MailFlow.deliver` sends new messages round-robin over the flow's domains and stores, each to
whichever *active* account holds the domain at that moment. While none does (the domain is
detached, or held by a cancelled account) the message waits in the sandbox's `mail_queue`, as
a sending server retries, and a later `deliver` hands it over first. `MailFlow.expire` removes
the oldest messages of the accounts that hold or held the flow's domains (retention; users
deleting or releasing quarantined mail).

Every delivery is its own short `BEGIN IMMEDIATE` transaction, so a transfer running in another
process interleaves safely. Deliveries are not platform writes of the runner: they stay out of
the audit table and are counted in `meta` instead. Messages are generated like the fixture's
(`messages.py`): the database keeps their inputs and digest, not their bytes.

`deliver` and `expire` are deterministic, for tests; `run` keeps them at given rates, for the
CLI (`sandbox mail`, `sandbox serve --deliver`) and benchmarks.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from transfer_runner.domains import normalize_domain
from transfer_runner.errors import ConfigError, PlatformError
from transfer_runner.platforms.base import STORES, Store
from transfer_runner.platforms.sandbox import db
from transfer_runner.platforms.sandbox.fixture import DEFAULT_SIZE, MAX_SIZE
from transfer_runner.platforms.sandbox.mailflow_pace import BATCH, FlowTotals, Pace
from transfer_runner.platforms.sandbox.messages import BODY_KINDS, BodyKind, generate_message
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = ["FlowSpec", "FlowTotals", "MailFlow", "delivery_id"]  # FlowTotals: mailflow_pace's

_OP = "mail_flow"
_QUEUED = (
    "SELECT q.seq, q.domain, q.store, q.size, q.body, d.account FROM mail_queue q "
    "JOIN domains d ON d.domain = q.domain "
    "JOIN accounts a ON a.id = d.account AND a.status = 'active'"
)
_DELIVERABLE = f"{_QUEUED} ORDER BY q.seq"  # held-back messages an active account now takes
_DELIVERABLE_SEQ = f"{_QUEUED} WHERE q.seq = ?"


@dataclass(frozen=True)
class FlowSpec:
    """What a flow sends: to which domains (empty: every domain of every active direct account
    when the flow starts) and stores, how big each message is, and its body kind."""

    domains: tuple[str, ...] = ()
    stores: tuple[Store, ...] = STORES
    size: int = DEFAULT_SIZE
    body: BodyKind = "text"


def delivery_id(seed: int, store: str, seq: int) -> str:
    """The id of delivery `seq`: `q-d00000001-1a2b3c`, never one of the fixture's `q-00000001-…`."""
    suffix = hashlib.sha256(f"{seed}:{store}:{seq}".encode()).hexdigest()[:6]
    return f"{store[0]}-d{seq:08d}-{suffix}"


class MailFlow:
    """Mail for the domains of `spec`, delivered and expired on `platform`'s sandbox file.

    Opening resolves the domains and notes which accounts hold them; ConfigError if the spec
    is unusable or names no domain.
    """

    def __init__(self, platform: SandboxPlatform, spec: FlowSpec | None = None) -> None:
        spec = spec or FlowSpec()
        _check_spec(spec)
        self.platform = platform
        self.spec = spec
        with self._read() as conn:
            self.domains = tuple(_normalized(spec.domains)) or _direct_domains(conn)
            if not self.domains:
                raise ConfigError("no domain for the mail flow: no active direct account has one")
            self._seed = _flow_seed(conn)
            self._accounts = set(_holders(conn, self.domains))
        self._wanted = set(self.domains)
        self._pairs = [(d, s) for d in self.domains for s in spec.stores]
        self._turn = 0

    @property
    def accounts(self) -> frozenset[str]:
        """The accounts that hold, or held while this flow ran, one of its domains."""
        return frozenset(self._accounts)

    def deliver(self, count: int) -> FlowTotals:
        """Hand over the deliverable held-back messages, then send `count` new ones."""
        _check_count(count)
        released = self._release()
        delivered = 0
        for _ in range(count):
            domain, store = self._pairs[self._turn % len(self._pairs)]
            self._turn += 1
            delivered += self._deliver_new(domain, store)
        return FlowTotals(delivered, count - delivered, released)

    def expire(self, count: int) -> int:
        """Remove the `count` oldest messages (by received_at, then id) of each of the flow's
        stores, across its accounts; returns how many were removed."""
        _check_count(count)
        removed = 0
        for store in self.spec.stores:
            left = count
            while left > 0:
                batch = min(left, BATCH)
                with self._write() as conn:
                    self._accounts.update(_holders(conn, self.domains))
                    rowids = _oldest(conn, sorted(self._accounts), store, batch)
                    conn.executemany("DELETE FROM messages WHERE rowid = ?", rowids)
                    _bump(conn, "mail_expired", len(rowids))
                removed += len(rowids)
                left = 0 if len(rowids) < batch else left - batch
        return removed

    def waiting(self) -> int:
        """How many held-back messages for the flow's domains wait in the queue."""
        with self._read() as conn:
            rows = conn.execute("SELECT domain, count(*) FROM mail_queue GROUP BY domain")
            return sum(n for domain, n in rows if domain in self._wanted)

    def run(
        self,
        stop: threading.Event,
        deliver_per_second: float,
        expire_per_second: float,
        duration_s: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> FlowTotals:
        """Deliver and expire at these rates (messages per second; expire's per store) until
        `stop` is set or `duration_s` has passed; fractional rates accumulate."""
        rates = (deliver_per_second, expire_per_second)
        if any(not math.isfinite(r) or r < 0 for r in rates):
            raise ValueError(f"rates must be finite and >= 0, not {rates!r}")
        pace = Pace(monotonic(), deliver_per_second, expire_per_second, duration_s)
        totals = FlowTotals()
        while not stop.is_set():
            elapsed = pace.elapsed(monotonic())
            deliver, expire = pace.due(elapsed)
            if deliver:
                totals += self.deliver(deliver)
            if expire:
                totals += FlowTotals(expired=self.expire(expire))
            pace.done(deliver, expire)
            if pace.caught_up(elapsed) and pace.finished(elapsed):
                break
            stop.wait(pace.wait(elapsed, monotonic()))
        return totals

    # -- one transaction each -----------------------------------------------------------------
    def _deliver_new(self, domain: str, store: Store) -> bool:
        spec = self.spec
        with self._write() as conn:
            seq = _bump(conn, "mail_seq")
            now = self._now()
            holder = _active_holder(conn, domain)
            if holder is None:
                conn.execute(
                    "INSERT INTO mail_queue VALUES (?, ?, ?, ?, ?, ?)",
                    (seq, domain, store, spec.size, spec.body, db.to_text(now)),
                )
                return False
            self._store(conn, holder, store, seq, spec.size, spec.body, now)
        self._accounts.add(holder)
        return True

    def _release(self) -> int:
        with self._read() as conn:
            queued = [row[0] for row in conn.execute(_DELIVERABLE) if row[1] in self._wanted]
        released = 0
        for seq in queued:  # oldest first; each is checked again under the write lock
            with self._write() as conn:
                row = conn.execute(_DELIVERABLE_SEQ, (seq,)).fetchone()
                if row is None:
                    continue
                _seq, _domain, store, size, body, holder = row
                self._store(conn, holder, store, seq, size, body, self._now())
                conn.execute("DELETE FROM mail_queue WHERE seq = ?", (seq,))
            self._accounts.add(holder)
            released += 1
        return released

    def _store(
        self,
        conn: sqlite3.Connection,
        account: str,
        store: Store,
        seq: int,
        size: int,
        body: BodyKind,
        now: datetime,
    ) -> None:
        message_id = delivery_id(self._seed, store, seq)
        message = generate_message(
            self._seed, account, store, seq, size, body, message_id=message_id, received_at=now
        )
        conn.execute(
            "INSERT INTO messages (account, store, id, size, sha256, received_at, seed, idx, "
            "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account,
                store,
                message_id,
                len(message.raw),
                hashlib.sha256(message.raw).hexdigest(),
                db.to_text(now),
                self._seed,
                seq,
                body,
            ),
        )
        _bump(conn, "mail_delivered")

    def _now(self) -> datetime:
        # whole seconds, as in the Date header: an exported and re-imported copy keeps its time
        return self.platform.clock.now().replace(microsecond=0)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.platform.unaudited_write() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise PlatformError(_OP, f"sandbox database error: {exc}", 503) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.platform.snapshot() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise PlatformError(_OP, f"sandbox database error: {exc}", 503) from exc


# -- queries --------------------------------------------------------------------------------
def _check_spec(spec: FlowSpec) -> None:
    if not spec.stores or any(s not in STORES for s in spec.stores):
        raise ConfigError(f"mail flow stores must be among {', '.join(STORES)}, not {spec.stores}")
    if isinstance(spec.size, bool) or not isinstance(spec.size, int):
        raise ConfigError(f"mail flow message size must be an integer, not {spec.size!r}")
    if not 1 <= spec.size <= MAX_SIZE:
        raise ConfigError(f"mail flow message size must be 1 byte to 64 MiB, not {spec.size}")
    if spec.body not in BODY_KINDS:
        raise ConfigError(f"mail flow body must be one of {', '.join(BODY_KINDS)}")


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an integer >= 0, not {count!r}")


def _normalized(domains: tuple[str, ...]) -> Iterator[str]:
    seen = set()
    for domain in domains:
        try:
            name = normalize_domain(domain)
        except ValueError as exc:
            raise ConfigError(f"mail flow domain {domain!r} {exc}") from exc
        if name not in seen:
            seen.add(name)
            yield name


def _direct_domains(conn: sqlite3.Connection) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT d.domain FROM domains d JOIN accounts a ON a.id = d.account "
        "WHERE a.type = 'direct' AND a.status = 'active' ORDER BY a.seq, d.domain"
    )
    return tuple(row[0] for row in rows)


def _flow_seed(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()
    text = f"{row[0] if row else 0}:mail-flow"
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _holders(conn: sqlite3.Connection, domains: tuple[str, ...]) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT account FROM domains WHERE domain IN (SELECT value FROM json_each(?))",
        (json.dumps(list(domains)),),
    )
    return [row[0] for row in rows]


def _active_holder(conn: sqlite3.Connection, domain: str) -> str | None:
    row = conn.execute(
        "SELECT a.id FROM domains d JOIN accounts a ON a.id = d.account "
        "WHERE d.domain = ? AND a.status = 'active'",
        (domain,),
    ).fetchone()
    return None if row is None else str(row[0])


def _oldest(
    conn: sqlite3.Connection, accounts: list[str], store: str, count: int
) -> list[tuple[int]]:
    """The rowids of the `count` oldest messages of `store` across `accounts`."""
    per_account = [
        conn.execute(
            "SELECT received_at, id, rowid FROM messages WHERE account = ? AND store = ? "
            "ORDER BY received_at, id LIMIT ?",
            (account, store, count),
        ).fetchall()
        for account in accounts
    ]
    return [(row[2],) for row in islice(heapq.merge(*per_account), count)]


def _bump(conn: sqlite3.Connection, key: str, by: int = 1) -> int:
    """Add `by` to the counter `key` in `meta`; returns the new value."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    value = (int(row[0]) if row else 0) + by
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))
    return value
