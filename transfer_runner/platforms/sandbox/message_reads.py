"""The sandbox's message reads (`list_messages`, `count_messages`, `fetch_message`,
`fetch_messages`), a part of `SandboxPlatform`: each is one read of the database, one
simulated round trip."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from transfer_runner.errors import NotFound
from transfer_runner.platforms.base import MAX_FETCH, MessagePage, Store
from transfer_runner.platforms.sandbox import operations, records
from transfer_runner.platforms.sandbox.messages import stored_bytes

__all__ = ["MAX_PAGE", "MessageReads"]

MAX_PAGE = 10_000

T = TypeVar("T")


class MessageReads:
    """The message reads of `SandboxPlatform` (which provides `_read`)."""

    _read: Callable[..., Any]

    def list_messages(
        self, account_id: str, store: Store, cursor: str | None = None, limit: int = 500
    ) -> MessagePage:
        """One page in id order; `next_cursor` (the last id of the page) is None at the end."""
        op = "list_messages"
        operations.check_store(op, store)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise operations.bad_request(op, f"limit must be 1..{MAX_PAGE}, not {limit!r}")

        def page(conn: sqlite3.Connection) -> MessagePage:
            operations.require_account(conn, op, account_id)
            rows = conn.execute(
                "SELECT id, size, received_at, sha256 FROM messages "
                "WHERE account = ? AND store = ? AND id > ? ORDER BY id LIMIT ?",
                (account_id, store, cursor or "", limit + 1),
            ).fetchall()
            infos = tuple(records.message_info(r) for r in rows[:limit])
            more = len(rows) > limit
            return MessagePage(infos, infos[-1].id if more else None)

        listed: MessagePage = self._read(op, page)
        return listed

    def count_messages(self, account_id: str, store: Store) -> tuple[int, int]:
        """(message count, total bytes) of a store."""
        op = "count_messages"
        operations.check_store(op, store)

        def count(conn: sqlite3.Connection) -> tuple[int, int]:
            operations.require_account(conn, op, account_id)
            row = conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM messages "
                "WHERE account = ? AND store = ?",
                (account_id, store),
            ).fetchone()
            return int(row[0]), int(row[1])

        counted: tuple[int, int] = self._read(op, count)
        return counted

    def fetch_message(self, account_id: str, store: Store, message_id: str) -> bytes:
        """The raw bytes: stored for imported messages, regenerated for generated ones."""
        op = "fetch_message"
        operations.check_store(op, store)
        row = self._read(
            op,
            lambda c: c.execute(
                "SELECT raw, seed, idx, size, sha256, body, received_at FROM messages "
                "WHERE account = ? AND store = ? AND id = ?",
                (account_id, store, message_id),
            ).fetchone(),
        )
        if row is None:
            raise NotFound(op, f"no message {message_id} in {account_id}'s {store}")
        return stored_bytes(op, account_id, store, message_id, row)

    def fetch_messages(
        self, account_id: str, store: Store, message_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """Several messages in one read (at most MAX_FETCH); those no longer there are left
        out."""
        op = "fetch_messages"
        operations.check_store(op, store)
        ids = list(message_ids)
        if not 1 <= len(ids) <= MAX_FETCH or len(set(ids)) != len(ids):
            raise operations.bad_request(
                op, f"give 1..{MAX_FETCH} distinct message ids, not {len(ids)}"
            )

        def rows(conn: sqlite3.Connection) -> list[Any]:
            operations.require_account(conn, op, account_id)
            marks = ",".join("?" * len(ids))
            return conn.execute(
                "SELECT id, raw, seed, idx, size, sha256, body, received_at FROM messages "
                f"WHERE account = ? AND store = ? AND id IN ({marks})",
                (account_id, store, *ids),
            ).fetchall()

        found = {row[0]: stored_bytes(op, account_id, store, row[0], row[1:])
                 for row in self._read(op, rows)}  # fmt: skip
        return {i: found[i] for i in ids if i in found}
