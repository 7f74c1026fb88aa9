"""Export one store of an account to S3: tar parts, a journal, then `index.jsonl` (SPEC §6).

Streamed: one listing page, one message and a bounded number of parts in memory at a time.
Messages are packed into parts of about `part_size_bytes`, so S3 sees one request per part
rather than per message; finished parts are compressed and uploaded by worker threads while
the next one is packed (`pipeline`). Each uploaded part is journalled (`journal`), so after a
crash (even `kill -9`) the next run skips the journalled messages, aborts the crashed run's
multipart uploads and packs only the rest. The index, assembled from the journal, is written
last: its presence means "exported".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from transfer_runner.crash import crash_point
from transfer_runner.errors import ExportError
from transfer_runner.export.index import (
    ExportIndex,
    IndexEntry,
    as_utc,
    read_index,
    utc_iso,
)
from transfer_runner.export.journal import IdSet, Journal, PartRecord, assemble_index, load_journal
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import (
    abort_multipart_uploads,
    delete_objects,
    list_objects,
    upload,
)
from transfer_runner.export.packing import PartWriter
from transfer_runner.export.pipeline import FinishedPart, PartUploader
from transfer_runner.export.s3 import MiB, S3Settings
from transfer_runner.export.source import fetch_checked, iter_messages
from transfer_runner.platforms.base import MessageInfo, Platform, Store

__all__ = [
    "Progress",
    "ExportResult",
    "ExportStatus",
    "export_store",
    "inspect_export",
    "store_status",
]

Progress = Callable[[int, int], None]  # (messages done, bytes done)
INDEX_CONTENT_TYPE = "application/x-ndjson"
_LINES_SPOOL = 1 * MiB


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
    return store_status(s3, settings, transfer_name, store)


def store_status(s3: Any, settings: S3Settings, transfer_name: str, store: str) -> ExportStatus:
    """What S3 holds for one store's export (read-only)."""
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

    An interrupted export resumes after its last journalled parts. Raises `ExportError`
    (unsafe message id, digest mismatch, S3 failure) or `PlatformError`.
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
    abort_multipart_uploads(s3, layout.bucket, layout.base)
    job = _StoreExport(platform, s3, settings, layout, account_id, store, progress)
    return job.run(listing)


class _Numbers:
    """Part numbers for new parts: the gaps the journal leaves first, then past its end."""

    def __init__(self, taken: Iterable[int]) -> None:
        self._taken = set(taken)
        self._next = 1

    def take(self) -> int:
        while self._next in self._taken:
            self._next += 1
        self._taken.add(self._next)
        return self._next


@dataclass
class _OpenPart:
    """The part being packed on the caller's thread."""

    number: int
    writer: PartWriter
    lines: IO[bytes]
    messages: int = 0
    bytes: int = 0

    def finished(self) -> FinishedPart:
        return FinishedPart(self.number, self.writer, self.lines, self.messages, self.bytes)

    def close(self) -> None:
        self.writer.close()
        self.lines.close()


@dataclass
class _StoreExport:
    """One run of an export: resume from the journal, pack and ship the rest, write the index."""

    platform: Platform
    s3: Any
    settings: S3Settings
    layout: StoreLayout
    account_id: str
    store: Store
    progress: Progress | None
    listed: int = 0
    listed_bytes: int = 0
    ids: IdSet = field(default_factory=IdSet)

    def run(self, listing: dict[str, int]) -> ExportResult:
        try:
            journal = load_journal(self.s3, self.layout, listing, self.ids)
            delete_objects(self.s3, self.layout.bucket, journal.stale_keys)
            records = self._pack_all(journal)
        finally:
            self.ids.close()
        final = {**journal.records, **{r.number: r for r in records}}
        return self._finish(listing, final)

    def _pack_all(self, journal: Journal) -> list[PartRecord]:
        numbers = _Numbers(journal.records)
        uploader = PartUploader(self.s3, self.settings, self.layout)
        part: _OpenPart | None = None
        try:
            for info in iter_messages(self.platform, self.account_id, self.store):
                if not self._is_new(info):
                    continue
                if part is None:
                    part = self._open(numbers.take())
                self._pack(part, info)
                if part.writer.tar_bytes >= self.settings.part_size_bytes:
                    uploader.submit(part.finished())
                    part = None
            if part is not None:
                uploader.submit(part.finished())
                part = None
            return uploader.wait()
        finally:
            if part is not None:
                part.close()
            uploader.close()

    def _open(self, number: int) -> _OpenPart:
        name = self.layout.part_name(number)
        lines = tempfile.SpooledTemporaryFile(max_size=_LINES_SPOOL)  # noqa: SIM115
        return _OpenPart(number, PartWriter(name, self.settings.compression), lines)

    def _is_new(self, info: MessageInfo) -> bool:
        """False for a message the journal already holds; `ExportError` for a repeat."""
        self.layout.member_name(info.id)  # validates the id first
        seen = self.ids.add(info.id, IdSet.PACKED)
        if seen == IdSet.PACKED:
            raise ExportError(f"the listing of {self.account_id}'s {self.store} repeats {info.id}")
        if seen == IdSet.RESUMED:
            self._advance(info.size)
            return False
        return True

    def _advance(self, nbytes: int) -> None:
        self.listed += 1
        self.listed_bytes += nbytes
        if self.progress is not None:
            self.progress(self.listed, self.listed_bytes)

    def _pack(self, part: _OpenPart, info: MessageInfo) -> None:
        raw, digest = fetch_checked(self.platform, self.account_id, self.store, info)
        received = as_utc(info.received_at)
        part.writer.add(self.layout.member_name(info.id), raw, received.timestamp())
        entry = IndexEntry(info.id, part.writer.name, len(raw), digest, utc_iso(received))
        part.lines.write(entry.to_line())
        part.messages += 1
        part.bytes += len(raw)
        if part.messages == 1:
            crash_point(f"export-mid-part-{part.number}")
        self._advance(len(raw))

    def _finish(self, listing: dict[str, int], final: dict[int, PartRecord]) -> ExportResult:
        numbers = sorted(final)
        keys = tuple(self.layout.part_key(final[n].name) for n in numbers)
        journal_keys = {self.layout.journal_key(n) for n in numbers}
        # Leftovers of interrupted attempts: not named by the new index.
        stale = {k for k in listing if self.layout.is_part_key(k) and k not in keys}
        stale |= {k for k in listing if self.layout.journal_number(k) and k not in journal_keys}
        delete_objects(self.s3, self.layout.bucket, stale)
        crash_point("export-before-index")
        index = assemble_index(self.s3, self.layout, numbers)
        try:
            key, size = self.layout.index_key, index.size
            upload(self.s3, self.settings, key, index.file, size, INDEX_CONTENT_TYPE)
            digest = index.sha256
        finally:
            index.close()
        return ExportResult(
            self.store,
            sum(r.messages for r in final.values()),
            sum(r.bytes for r in final.values()),
            keys,
            self.layout.index_key,
            digest,
            sum(r.size for r in final.values()),
        )
