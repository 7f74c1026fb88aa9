"""What S3 holds for a store's export, read-only: its status (complete or not, counts, the
index's SHA-256), how the source differs from it (the next pass's delta), and the result of
an export pass."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.index import ExportIndex, read_index
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import Listing, list_objects
from transfer_runner.export.source import iter_messages
from transfer_runner.platforms.base import Platform, Store
from transfer_runner.s3_client import S3Settings

__all__ = [
    "ExportDelta",
    "ExportResult",
    "ExportStatus",
    "inspect_delta",
    "inspect_export",
    "store_status",
]


@dataclass(frozen=True)
class ExportResult:
    """A finished export of one store. `parts` are object keys; `bytes` counts message bytes."""

    store: str
    messages: int
    bytes: int
    parts: tuple[str, ...]
    index_key: str
    index_sha256: str
    compressed_bytes: int
    pass_number: int = 1  # the export's last pass
    new_messages: int = 0  # what this pass added
    new_bytes: int = 0
    expired: int = 0  # exported messages the source no longer listed during this pass
    wrote: bool = True  # False: nothing was new, nothing was written

    def as_found(self) -> ExportResult:
        """The export this pass left, without what the pass itself did (for comparisons)."""
        return replace(self, new_messages=0, new_bytes=0, expired=0, wrote=False)

    def facts(self) -> dict[str, Any]:
        """JSON-friendly outputs for the state store and reports."""
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "parts": list(self.parts),
            "index_key": self.index_key,
            "index_sha256": self.index_sha256,
            "compressed_bytes": self.compressed_bytes,
            "pass": self.pass_number,
            "new_messages": self.new_messages,
            "new_bytes": self.new_bytes,
            "expired": self.expired,
        }


@dataclass(frozen=True)
class ExportStatus:
    """What S3 holds for one store (read-only). `complete`: index and every part it names."""

    store: str
    index_key: str
    exists: bool
    complete: bool
    messages: int = 0
    bytes: int = 0
    parts: tuple[str, ...] = ()
    missing_parts: tuple[str, ...] = ()
    index_sha256: str | None = None
    compressed_bytes: int = 0
    problem: str = ""
    passes: int = 0
    discarded: tuple[str, ...] = ()  # parts the index names whose journal record is gone

    def facts(self) -> dict[str, Any]:
        """The outputs of `ExportResult.facts` that describe the export found (no delta)."""
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "parts": list(self.parts),
            "index_key": self.index_key,
            "index_sha256": self.index_sha256,
            "compressed_bytes": self.compressed_bytes,
            "pass": self.passes,
        }

    def result(self) -> ExportResult:
        """The finished export this status describes (only when `complete`)."""
        if not self.complete or self.index_sha256 is None:
            raise ExportError(f"the export at {self.index_key} is not complete")
        return ExportResult(
            self.store,
            self.messages,
            self.bytes,
            self.parts,
            self.index_key,
            self.index_sha256,
            self.compressed_bytes,
            pass_number=self.passes,
            wrote=False,
        )


def inspect_export(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
) -> ExportStatus:
    """Whether the store's export exists and is complete, and its counts. Writes nothing.

    `platform` and `account_id` are not read: S3 alone says what was exported.
    """
    return store_status(s3, settings, transfer_name, store)


@dataclass(frozen=True)
class ExportDelta:
    """How the source differs from its export (read-only): what the next pass would add."""

    status: ExportStatus
    source_messages: int
    new_messages: int
    new_bytes: int
    expired: int  # exported, no longer listed by the source
    changed: tuple[str, ...] = ()  # ids whose bytes changed under the same id (first few)

    @property
    def current(self) -> bool:
        """The export is complete on S3, vouched for by its journal (no part was discarded as
        damaged), and holds every message the source lists."""
        return self.status.complete and not self.status.discarded and self.new_messages == 0


def inspect_delta(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
) -> ExportDelta:
    """Compare the source's listing with the export's index, by id and SHA-256. Writes nothing.

    Holds the index's id -> SHA-256 map in memory (about 100 bytes a message).
    """
    layout = store_layout(settings, transfer_name, store)
    listing = list_objects(s3, layout.bucket, layout.base)
    status = _status(s3, layout, store, listing)
    exported: dict[str, str] = {}
    if status.complete:
        index = read_index(s3, layout, listing)
        exported = {e.id: e.sha256 for e in index.entries} if index else {}
    listed = new = new_bytes = matched = 0
    changed: list[str] = []
    for info in iter_messages(platform, account_id, store):
        listed += 1
        digest = exported.get(info.id)
        if digest is None:
            new, new_bytes = new + 1, new_bytes + info.size
        else:
            matched += 1
            if info.sha256 is not None and info.sha256.lower() != digest and len(changed) < 5:
                changed.append(info.id)
    return ExportDelta(status, listed, new, new_bytes, len(exported) - matched, tuple(changed))


def store_status(
    s3: Any, settings: S3Settings, transfer_name: str, store: str, listing: Listing | None = None
) -> ExportStatus:
    """What S3 holds for one store's export (read-only), as `listing` (a listing of the store
    the caller took just now) or a new listing shows it."""
    layout = store_layout(settings, transfer_name, store)
    if listing is None:
        listing = list_objects(s3, layout.bucket, layout.base)
    return _status(s3, layout, store, listing)


def _status(s3: Any, layout: StoreLayout, store: str, listing: Listing) -> ExportStatus:
    if layout.index_key not in listing:
        return ExportStatus(store, layout.index_key, exists=False, complete=False)
    try:
        index = read_index(s3, layout, listing)
    except ExportError as exc:
        return ExportStatus(store, layout.index_key, True, False, problem=str(exc))
    if index is None:  # deleted between the listing and the read
        return ExportStatus(store, layout.index_key, exists=False, complete=False)
    return _status_of(index, layout, store, listing)


def _status_of(
    index: ExportIndex, layout: StoreLayout, store: str, listing: dict[str, int]
) -> ExportStatus:
    keys = tuple(layout.part_key(name) for name in index.parts)
    missing = tuple(k for k in keys if k not in listing)
    return ExportStatus(
        store=store,
        index_key=layout.index_key,
        exists=True,
        complete=not missing,
        messages=index.messages,
        bytes=index.bytes,
        parts=keys,
        missing_parts=missing,
        index_sha256=index.sha256,
        compressed_bytes=sum(listing.get(k, 0) for k in keys),
        problem=f"{len(missing)} part(s) missing, first {missing[0]}" if missing else "",
        passes=index.passes,
        discarded=tuple(
            k
            for k in keys
            if layout.journal_key(layout.part_number(k[len(layout.base) :]) or 1) not in listing
        ),
    )
