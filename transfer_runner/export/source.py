"""Reading a store from the platform: the full listing, page by page, and checked fetches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

from transfer_runner.errors import ExportError
from transfer_runner.platforms.base import MessageInfo, Platform, Store

__all__ = ["PAGE_SIZE", "iter_messages", "list_source", "listed", "fetch_checked"]

PAGE_SIZE = 1000


def iter_messages(
    platform: Platform, account_id: str, store: Store, page_size: int = PAGE_SIZE
) -> Iterator[MessageInfo]:
    """Every message of a store in listing order, one page in memory at a time."""
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page = platform.list_messages(account_id, store, cursor, page_size)
        yield from page.messages
        if page.next_cursor is None:
            return
        if page.next_cursor in seen_cursors:
            raise ExportError(
                f"the platform's listing of {account_id}'s {store} repeats cursor "
                f"{page.next_cursor!r}: refusing to loop"
            )
        seen_cursors.add(page.next_cursor)
        cursor = page.next_cursor


def list_source(platform: Platform, account_id: str, store: Store) -> tuple[MessageInfo, ...]:
    """One listing of a store, held in memory so that several readers share it.

    Only for an account that receives no mail (its domains moved away): such a store can only
    shrink, so what this listing shows is a superset of what the account holds afterwards.
    """
    return tuple(iter_messages(platform, account_id, store))


def listed(
    platform: Platform, account_id: str, store: Store, source: Sequence[MessageInfo] | None
) -> Iterable[MessageInfo]:
    """`source` when a shared listing is given, else a fresh listing of the store."""
    return source if source is not None else iter_messages(platform, account_id, store)


def fetch_checked(
    platform: Platform, account_id: str, store: Store, info: MessageInfo
) -> tuple[bytes, str]:
    """The message's bytes and hex SHA-256, checked against what the listing said."""
    raw = platform.fetch_message(account_id, store, info.id)
    digest = hashlib.sha256(raw).hexdigest()
    where = f"message {info.id} of {account_id}'s {store}"
    if info.sha256 is not None and info.sha256.lower() != digest:
        raise ExportError(
            f"{where}: fetched bytes have SHA-256 {digest}, the listing says {info.sha256}"
        )
    if info.size != len(raw):
        raise ExportError(f"{where}: fetched {len(raw)} bytes, the listing says {info.size}")
    return raw, digest
