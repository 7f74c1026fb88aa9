"""Reading a store from the platform: the full listing, page by page, and checked fetches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

from transfer_runner.errors import ExportError, NotFound, PlatformError
from transfer_runner.platforms.base import MAX_FETCH, MessageInfo, Platform, Store
from transfer_runner.retries import RetryPolicy, retry

Fetched = tuple[MessageInfo, bytes | None, str]
"""A listed message, its bytes (None: gone since the listing) and their hex SHA-256."""

__all__ = [
    "FETCH_BYTES",
    "FETCH_IDS",
    "PAGE_SIZE",
    "fetch_batches",
    "fetch_checked",
    "iter_messages",
    "list_source",
    "listed",
]

PAGE_SIZE = 1000
FETCH_BYTES = 8 * 1024 * 1024  # listed bytes per `fetch_messages` call
FETCH_IDS = MAX_FETCH  # messages per call (1: one `fetch_message` a message, as before)
# A page whose request failed for good (the transport's own retries spent on 429/5xx or dropped
# connections) is asked again as a whole, after a pause: a flaky platform slows the export of a
# large store down instead of failing it for one unlucky page.
PAGE_RETRIES = RetryPolicy(attempts=4, base_delay_s=1.0, max_delay_s=15.0)
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


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


def fetch_batches(
    platform: Platform, account_id: str, store: Store, infos: Iterable[MessageInfo]
) -> Iterator[Fetched]:
    """Each listed message with its bytes, fetched a batch at a time (FETCH_IDS ids or
    FETCH_BYTES listed bytes per `fetch_messages` call: one request over HTTP, asked again as
    a whole when it fails for a transient reason, `PAGE_RETRIES`), checked against the
    listing; a message gone since has None."""
    batch: list[MessageInfo] = []
    size = 0
    for info in infos:
        if batch and (len(batch) >= FETCH_IDS or size + info.size > FETCH_BYTES):
            yield from _fetch_batch(platform, account_id, store, batch)
            batch, size = [], 0
        batch.append(info)
        size += info.size
    if batch:
        yield from _fetch_batch(platform, account_id, store, batch)


def _fetch_batch(
    platform: Platform, account_id: str, store: Store, batch: list[MessageInfo]
) -> Iterator[Fetched]:
    if len(batch) == 1:  # one message: the plain call
        try:
            raw, digest = fetch_checked(platform, account_id, store, batch[0])
        except NotFound:
            yield batch[0], None, ""
            return
        yield batch[0], raw, digest
        return
    ids = [info.id for info in batch]
    found = retry(lambda: platform.fetch_messages(account_id, store, ids), PAGE_RETRIES, _transient)
    for info in batch:
        body = found.get(info.id)
        yield info, body, _checked(account_id, store, info, body) if body is not None else ""


def _transient(exc: BaseException) -> bool:
    """A platform failure that asking again may cure: throttled, unavailable, no reply."""
    return type(exc) is PlatformError and (exc.status is None or exc.status in _TRANSIENT)


def fetch_checked(
    platform: Platform, account_id: str, store: Store, info: MessageInfo
) -> tuple[bytes, str]:
    """The message's bytes and hex SHA-256, checked against what the listing said."""
    raw = platform.fetch_message(account_id, store, info.id)
    return raw, _checked(account_id, store, info, raw)


def _checked(account_id: str, store: Store, info: MessageInfo, raw: bytes) -> str:
    """The hex SHA-256 of `raw`; ExportError unless it and its size are what the listing said."""
    digest = hashlib.sha256(raw).hexdigest()
    where = f"message {info.id} of {account_id}'s {store}"
    if info.sha256 is not None and info.sha256.lower() != digest:
        raise ExportError(
            f"{where}: fetched bytes have SHA-256 {digest}, the listing says {info.sha256}"
        )
    if info.size != len(raw):
        raise ExportError(f"{where}: fetched {len(raw)} bytes, the listing says {info.size}")
    return digest
