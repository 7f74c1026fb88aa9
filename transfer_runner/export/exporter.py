"""Export one store of an account to S3: tar parts, then `index.jsonl` (SPEC §6).

Streamed: one listing page, one message and one part under construction in memory at a time.
Messages are packed into parts of about `part_size_bytes`, so S3 sees one request per part
rather than per message. The index is written last: its presence means "exported". A part is
durable once `_ship` returns, which is where resuming at part granularity will hook in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.index import (
    ExportIndex,
    IndexEntry,
    IndexWriter,
    as_utc,
    read_index,
    utc_iso,
)
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import delete_objects, list_objects, upload
from transfer_runner.export.packing import PartWriter, content_type
from transfer_runner.export.s3 import S3Settings
from transfer_runner.export.source import fetch_checked, iter_messages
from transfer_runner.platforms.base import MessageInfo, Platform, Store

__all__ = ["Progress", "ExportResult", "ExportStatus", "export_store", "inspect_export"]

Progress = Callable[[int, int], None]  # (messages done, bytes done)
INDEX_CONTENT_TYPE = "application/x-ndjson"


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

    def facts(self) -> dict[str, Any]:
        """JSON-friendly outputs for the state store and reports."""
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "parts": list(self.parts),
            "index_key": self.index_key,
            "index_sha256": self.index_sha256,
            "compressed_bytes": self.compressed_bytes,
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

    def facts(self) -> dict[str, Any]:
        """The same outputs as `ExportResult.facts` (of the export found)."""
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "parts": list(self.parts),
            "index_key": self.index_key,
            "index_sha256": self.index_sha256,
            "compressed_bytes": self.compressed_bytes,
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
    layout = store_layout(settings, transfer_name, store)
    return _status(s3, layout, store, list_objects(s3, layout.bucket, layout.base))


def _status(s3: Any, layout: StoreLayout, store: str, listing: dict[str, int]) -> ExportStatus:
    if layout.index_key not in listing:
        return ExportStatus(store, layout.index_key, exists=False, complete=False)
    try:
        index = read_index(s3, layout)
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
    )


def export_store(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
    progress: Progress | None = None,
) -> ExportResult:
    """Export `store` of `account_id` under `transfer_name`; an existing complete export is kept.

    Raises `ExportError` (unsafe message id, digest mismatch, S3 failure) or `PlatformError`.
    """
    layout = store_layout(settings, transfer_name, store)
    listing = list_objects(s3, layout.bucket, layout.base)
    status = _status(s3, layout, store, listing)
    if status.complete:
        return status.result()
    if status.exists:
        # An incomplete or unreadable index goes first: until the new one is written, no
        # index must vouch for parts that this run is overwriting.
        delete_objects(s3, layout.bucket, [layout.index_key])
    job = _StoreExport(platform, s3, settings, layout, account_id, store, progress)
    return job.run(stale=frozenset(k for k in listing if layout.is_part_key(k)))


@dataclass
class _StoreExport:
    """One run of an export: packs, ships parts, then writes the index."""

    platform: Platform
    s3: Any
    settings: S3Settings
    layout: StoreLayout
    account_id: str
    store: Store
    progress: Progress | None
    messages: int = 0
    bytes: int = 0
    compressed_bytes: int = 0
    parts: list[str] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)

    def run(self, stale: frozenset[str]) -> ExportResult:
        index = IndexWriter()
        part: PartWriter | None = None
        try:
            for info in iter_messages(self.platform, self.account_id, self.store):
                if part is None:
                    part = PartWriter(self.layout.part_name(len(self.parts) + 1), self._comp)
                index.add(self._pack(part, info))
                if part.stored_bytes >= self.settings.part_size_bytes:
                    self._ship(part)
                    part = None
            if part is not None:
                self._ship(part)
                part = None
            # Leftovers of an earlier, interrupted attempt: not named by the new index.
            delete_objects(self.s3, self.layout.bucket, stale - set(self.parts))
            self._ship_index(index)
            digest = index.sha256
        finally:
            index.close()
            if part is not None:
                part.close()
        return ExportResult(
            self.store,
            self.messages,
            self.bytes,
            tuple(self.parts),
            self.layout.index_key,
            digest,
            self.compressed_bytes,
        )

    @property
    def _comp(self) -> str:
        return self.settings.compression

    def _pack(self, part: PartWriter, info: MessageInfo) -> IndexEntry:
        member = self.layout.member_name(info.id)  # validates the id first
        if info.id in self._ids:
            raise ExportError(f"the listing of {self.account_id}'s {self.store} repeats {info.id}")
        self._ids.add(info.id)
        raw, digest = fetch_checked(self.platform, self.account_id, self.store, info)
        received = as_utc(info.received_at)
        part.add(member, raw, received.timestamp())
        self.messages += 1
        self.bytes += len(raw)
        if self.progress is not None:
            self.progress(self.messages, self.bytes)
        return IndexEntry(info.id, part.name, len(raw), digest, utc_iso(received))

    def _ship_index(self, index: IndexWriter) -> None:
        key, size = self.layout.index_key, index.size
        upload(self.s3, self.settings, key, index.file, size, INDEX_CONTENT_TYPE)

    def _ship(self, part: PartWriter) -> None:
        try:
            size = part.finish()
            key = self.layout.part_key(part.name)
            upload(self.s3, self.settings, key, part.file, size, content_type(self._comp))
        finally:
            part.close()
        self.parts.append(key)
        self.compressed_bytes += size
