"""Export one store of an account to S3: tar parts, a journal, then `index.jsonl`
(README: "Data export").

Streamed: one listing page, one message and a bounded number of parts in memory at a time.
Messages are packed into parts of about `part_size_bytes`, so S3 sees one request per part
rather than per message; finished parts are compressed and uploaded by worker threads while
the next one is packed (`pipeline`). Each uploaded part is journalled (`journal`), so after a
crash (even `kill -9`) the next run skips the journalled messages, aborts the crashed run's
multipart uploads and packs only the rest. The index, assembled from the journal, is written
last: its presence means "exported".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.checkpoint import write_checkpoint
from transfer_runner.export.idset import IdSet
from transfer_runner.export.index import (
    ExportIndex,
    IndexEntry,
    read_index,
    remember_index,
)
from transfer_runner.export.journal import Journal, assemble_index, load_journal
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import (
    Listing,
    abort_multipart_uploads,
    delete_objects,
    list_objects,
    upload,
)
from transfer_runner.export.packing import PartWriter
from transfer_runner.export.part_records import PartRecord
from transfer_runner.export.pipeline import FinishedPart, PartUploader
from transfer_runner.export.source import fetch_batches, listed
from transfer_runner.export.status import ExportResult
from transfer_runner.platforms.base import MessageInfo, Platform, Store
from transfer_runner.s3_client import MiB, S3Settings
from transfer_runner.testpoints import reached as testpoint
from transfer_runner.utc import as_utc, iso_z

__all__ = [
    "Progress",
    "export_store",
]

Progress = Callable[[int, int], None]  # (messages done, bytes done)
INDEX_CONTENT_TYPE = "application/x-ndjson"
MIN_SPLIT_BYTES = 1 * MiB  # the smallest part a small delta is split into
_LOOKUP_BATCH = 500  # listed messages looked up in the id set per statement


def export_store(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
    progress: Progress | None = None,
    *,
    source: Sequence[MessageInfo] | None = None,
    first_run: bool = False,
) -> ExportResult:
    """One export pass of `store` of `account_id` under `transfer_name`.

    The pass adds, as new parts, the messages the export does not hold yet; earlier parts are
    never rewritten, and a pass with nothing new writes nothing. An interrupted pass resumes
    after its last journalled parts. `source` is a listing of the store taken already (see
    `source.list_source`); without it the pass lists the store. Raises `ExportError` (unsafe
    message id, a message whose bytes changed under the same id, digest mismatch, S3 failure)
    or `PlatformError`.

    Multipart uploads a crashed run left unfinished are aborted first, unless `first_run`
    (no earlier run of the transfer was recorded: none can have left any; this run's own
    failed uploads abort themselves).
    """
    layout = store_layout(settings, transfer_name, store)
    listing = list_objects(s3, layout.bucket, layout.base)
    if not first_run:
        abort_multipart_uploads(s3, layout.bucket, layout.base)
    job = _StoreExport(platform, s3, settings, layout, account_id, store, progress, source)
    return job.run(listing)


def _pass_number(listing: dict[str, int], layout: StoreLayout, journal: Journal) -> int:
    """The number of this pass: the next one, or the last one again if it did not finish
    (its index was never written), so a resumed pass gives what an uninterrupted one would."""
    finished = listing.get(layout.index_key) == journal.index_bytes
    return journal.last_pass + 1 if finished or not journal.last_pass else journal.last_pass


def split_size(new_bytes: int, settings: S3Settings) -> int:
    """The part size for a pass of `new_bytes`: a small delta is cut into one part per upload
    worker (at least `MIN_SPLIT_BYTES` each) so that its parts compress in parallel; a large
    one into parts of the configured size."""
    share = -(-new_bytes // settings.upload_workers)
    return min(settings.part_size_bytes, max(MIN_SPLIT_BYTES, share))


class _Numbers:
    """Part numbers for new parts: the gaps the journal leaves first, then past its end.

    A gap is a part that was uploaded but never journalled (a crashed attempt): no index was
    ever assembled with it, so its number is free.
    """

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
    entries: list[IndexEntry]  # shared with `_StoreExport.packed`
    messages: int = 0
    bytes: int = 0
    pass_number: int = 1

    def finished(self) -> FinishedPart:
        return FinishedPart(
            self.number, self.writer, self.entries, self.messages, self.bytes, self.pass_number
        )

    def close(self) -> None:
        self.writer.close()


@dataclass
class _StoreExport:
    """One pass: resume from the journal, pack and ship what is new, write the index."""

    platform: Platform
    s3: Any
    settings: S3Settings
    layout: StoreLayout
    account_id: str
    store: Store
    progress: Progress | None
    source: Sequence[MessageInfo] | None = None
    listed: int = 0
    listed_bytes: int = 0
    ids: IdSet = field(default_factory=IdSet)
    pass_number: int = 1
    listing: Listing = field(default_factory=Listing)
    vanished: int = 0  # listed, then gone before it could be fetched
    packed: dict[int, list[IndexEntry]] = field(default_factory=dict)  # by part number

    def run(self, listing: Listing) -> ExportResult:
        self.listing = listing
        with ExitStack() as cleanup:
            cleanup.callback(self.ids.close)
            journal = load_journal(self.s3, self.layout, listing, self.ids)
            cleanup.callback(journal.close)
            self.pass_number = _pass_number(listing, self.layout, journal)
            delete_objects(self.s3, self.layout.bucket, journal.stale_keys)
            records = self._pack_all(journal)
            expired = self.ids.unlisted(IdSet.RESUMED)
            final = {**journal.records, **{r.number: r for r in records}}
            new = (sum(r.messages for r in records), sum(r.bytes for r in records))
            if not records and not journal.stale_keys and self._current(listing, journal):
                result = self._unchanged(final, expired)
            else:
                result = self._finish(listing, final, new, expired, journal)
        return result

    def _current(self, listing: dict[str, int], journal: Journal) -> bool:
        """Whether S3 already holds exactly the index these records assemble into, and no
        leftovers of interrupted attempts: then a pass with nothing new writes nothing."""
        if listing.get(self.layout.index_key) != journal.index_bytes:
            return False
        named = {self.layout.part_key(r.name) for r in journal.records.values()}
        journal_keys = {self.layout.journal_key(n) for n in journal.records}
        return not any(
            (self.layout.is_part_key(k) and k not in named)
            or (self.layout.journal_number(k) is not None and k not in journal_keys)
            for k in listing
        )

    def _pack_all(self, journal: Journal) -> list[PartRecord]:
        # A part the index on S3 names keeps its number even when its record was dropped or
        # discarded: no index ever vouches for other bytes than those it was made from.
        numbers = _Numbers([*journal.records, *self._indexed_numbers()])
        uploader = PartUploader(self.s3, self.settings, self.layout)
        part: _OpenPart | None = None
        try:
            infos = listed(self.platform, self.account_id, self.store, self.source)
            new: Iterable[MessageInfo] = self._new_messages(infos)
            cut = self.settings.part_size_bytes
            if self.source is not None:  # the listing is held already: so may its delta be
                new = list(new)
                cut = split_size(sum(info.size for info in new), self.settings)
            for info, raw, digest in fetch_batches(self.platform, self.account_id,
                                                   self.store, new):  # fmt: skip
                if raw is None:  # expired (or released) since the listing: nothing to export
                    self.vanished += 1
                    continue
                if part is None:
                    part = self._open(numbers.take())
                self._pack(part, info, raw, digest)
                if part.writer.tar_bytes >= cut:
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

    def _indexed_numbers(self) -> list[int]:
        if self.layout.index_key not in self.listing:
            return []
        try:
            index = read_index(self.s3, self.layout, self.listing)
        except ExportError:  # unreadable: it vouches for nothing, and is rewritten
            return []
        names = index.parts if index is not None else ()
        return [n for name in names if (n := self.layout.part_number(name)) is not None]

    def _open(self, number: int) -> _OpenPart:
        writer = PartWriter(self.layout.part_name(number), self.settings.compression)
        entries = self.packed.setdefault(number, [])
        return _OpenPart(number, writer, entries, pass_number=self.pass_number)

    def _new_messages(self, infos: Iterable[MessageInfo]) -> Iterator[MessageInfo]:
        """The listed messages the export lacks, in listing order; `ExportError` for a repeat
        or changed bytes. Looked up a batch at a time (one SQL statement per batch)."""
        batch: list[MessageInfo] = []
        for info in infos:
            batch.append(info)
            if len(batch) == _LOOKUP_BATCH:
                yield from self._new_of(batch)
                batch = []
        yield from self._new_of(batch)

    def _new_of(self, batch: list[MessageInfo]) -> list[MessageInfo]:
        for info in batch:
            self.layout.member_name(info.id)  # validates the id first
        found = self.ids.lookup([info.id for info in batch])
        new: list[MessageInfo] = []
        seen: set[str] = set()
        known = known_bytes = 0
        for info in batch:
            if info.id in seen:
                raise self._repeats(info.id)
            seen.add(info.id)
            if info.id not in found:
                new.append(info)
                continue
            origin, digest, was_listed = found[info.id]
            if origin == IdSet.PACKED or was_listed:
                raise self._repeats(info.id)
            if info.sha256 is not None and digest is not None and info.sha256.lower() != digest:
                raise ExportError(
                    f"message {info.id} of {self.account_id}'s {self.store} changed under the "
                    f"same id: the export holds SHA-256 {digest}, the source now "
                    f"{info.sha256.lower()}; refusing to overwrite an exported message"
                )
            known += 1
            known_bytes += info.size
        if known:
            self._advance(known_bytes, known)
        self.ids.mark_listed(i for i in seen if i in found)
        self.ids.add_all([(info.id, None) for info in new], IdSet.PACKED)
        return new

    def _repeats(self, message_id: str) -> ExportError:
        return ExportError(f"the listing of {self.account_id}'s {self.store} repeats {message_id}")

    def _advance(self, nbytes: int, messages: int = 1) -> None:
        self.listed += messages
        self.listed_bytes += nbytes
        if self.progress is not None:
            self.progress(self.listed, self.listed_bytes)

    def _pack(self, part: _OpenPart, info: MessageInfo, raw: bytes, digest: str) -> None:
        received = as_utc(info.received_at)
        part.writer.add(self.layout.member_name(info.id), raw, received.timestamp())
        entry = IndexEntry(
            info.id, part.writer.name, len(raw), digest, iso_z(received), self.pass_number
        )
        part.entries.append(entry)
        part.messages += 1
        part.bytes += len(raw)
        if part.messages == 1:
            testpoint(f"export-mid-part-{part.number}")
        self._advance(len(raw))

    def _result(
        self,
        final: dict[int, PartRecord],
        digest: str,
        new: tuple[int, int],
        expired: int,
        wrote: bool,
    ) -> ExportResult:
        numbers = sorted(final)
        return ExportResult(
            self.store,
            sum(r.messages for r in final.values()),
            sum(r.bytes for r in final.values()),
            tuple(self.layout.part_key(final[n].name) for n in numbers),
            self.layout.index_key,
            digest,
            sum(r.size for r in final.values()),
            pass_number=max((r.pass_number for r in final.values()), default=0),
            new_messages=new[0],
            new_bytes=new[1],
            expired=expired,
            wrote=wrote,
        )

    def _unchanged(self, final: dict[int, PartRecord], expired: int) -> ExportResult:
        index = read_index(self.s3, self.layout, self.listing)  # parsed only if it changed
        if index is None:
            raise ExportError(f"the index {self.layout.index_key} vanished during the pass")
        return self._result(final, index.sha256, (0, 0), expired, wrote=False)

    def _finish(
        self,
        listing: dict[str, int],
        final: dict[int, PartRecord],
        new: tuple[int, int],
        expired: int,
        journal: Journal,
    ) -> ExportResult:
        numbers = sorted(final)
        keys = {self.layout.part_key(final[n].name) for n in numbers}
        journal_keys = {self.layout.journal_key(n) for n in numbers}
        # Leftovers of interrupted attempts: not named by the new index.
        stale = {k for k in listing if self.layout.is_part_key(k) and k not in keys}
        stale |= {k for k in listing if self.layout.journal_number(k) and k not in journal_keys}
        delete_objects(self.s3, self.layout.bucket, stale)
        testpoint("export-before-index")
        for number, entries in self.packed.items():  # this pass's parts: lines at hand
            if number in final and number not in journal.records:
                lines = b"".join(e.to_line() for e in entries)
                journal.keep(number, final[number], lines, entries)
        index = assemble_index(self.s3, self.layout, numbers, journal)
        try:
            key, size = self.layout.index_key, index.size
            etag = upload(self.s3, self.settings, key, index.file, size, INDEX_CONTENT_TYPE)
            digest = index.sha256
            index.file.seek(0)
            raw = index.file.read()
        finally:
            index.close()
        testpoint("export-before-checkpoint")
        records = [final[n] for n in numbers]
        write_checkpoint(self.s3, self.settings, self.layout, records, digest, size)
        self._remember(numbers, journal, etag, digest, raw)
        return self._result(final, digest, new, expired, wrote=True)

    def _remember(
        self, numbers: list[int], journal: Journal, etag: str, digest: str, raw: bytes
    ) -> None:
        """Cache the index just written (`raw`, with its digest), with the entries its lines
        were made of (when they are all at hand), so that verify and import do not read it
        back."""
        if not etag:
            return
        entries: list[IndexEntry] = []
        for number in numbers:
            held: Sequence[IndexEntry] | None = journal.entries_of(number)
            if held is None:
                held = self.packed.get(number)
            if held is None:
                return
            entries.extend(held)
        remember_index(self.s3, self.layout, etag, ExportIndex(tuple(entries), digest, raw))
