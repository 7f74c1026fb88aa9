"""The journal of completed parts: how an export resumes exactly after a crash.

Once part N is uploaded, `<store>/_journal/part-NNNNN.json` is written: a header line
`{"journal": 2, "part": "part-00003.tar.zst", "size": ..., "messages": ..., "bytes": ...,
"pass": 2}` followed by the part's `index.jsonl` lines (version 1 records, from before export
passes, belong to pass 1). S3 is the only durable place shared between runs
(the next one may run on another machine), so that is where the journal lives. On resume a
record counts only if its part object exists with the recorded size and the current
compression; its messages are then skipped. `index.jsonl` is assembled from the records, in
part-number order, so no message is missing or twice.

The records themselves are `part_records`; the checkpoint that saves reading them is
`checkpoint`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from transfer_runner.errors import ExportError
from transfer_runner.export.checkpoint import checkpointed
from transfer_runner.export.idset import IdSet
from transfer_runner.export.index import (
    MAX_HELD_ENTRIES,
    IndexEntry,
    IndexWriter,
    iter_lines,
)
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import Listing, open_object, s3_errors
from transfer_runner.export.part_records import PartRecord, ReadRecord, parse_record

__all__ = ["Journal", "assemble_index", "load_journal"]

_SPOOL = 8 * 1024 * 1024


@dataclass
class Journal:
    """What the journal on S3 vouches for: valid records by number, and keys to delete."""

    records: dict[int, PartRecord] = field(default_factory=dict)
    stale_keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # The index lines of the kept records, as read (spooled: on disk beyond a few MiB), so
    # that assembling the index does not read every record from S3 a second time.
    _lines: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(_SPOOL))  # noqa: SIM115
    _spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Their parsed entries too, while they are few enough to hold (the index about to be
    # assembled from them is then known without reading it back).
    _entries: dict[int, tuple[IndexEntry, ...]] | None = field(default_factory=dict)
    _held: int = 0

    def keep(
        self,
        number: int,
        record: PartRecord,
        lines: bytes,
        entries: Sequence[IndexEntry] = (),
    ) -> None:
        """Keep `record` with its index lines (each newline-terminated) and parsed entries."""
        self.records[number] = record
        start = self._lines.seek(0, 2)
        self._lines.write(lines)
        self._spans[number] = (start, self._lines.tell() - start)
        if self._entries is not None:
            self._entries[number] = tuple(entries)
            self._held += len(entries)
            if self._held > MAX_HELD_ENTRIES:
                self._entries = None

    def entries_of(self, number: int) -> tuple[IndexEntry, ...] | None:
        """The parsed entries of a kept record, or None if they were not held."""
        return None if self._entries is None else self._entries.get(number)

    def lines_of(self, number: int) -> bytes | None:
        """The index lines of a kept record, or None if the record was not read here."""
        span = self._spans.get(number)
        if span is None:
            return None
        self._lines.seek(span[0])
        return self._lines.read(span[1])

    def close(self) -> None:
        """Release the spooled lines."""
        self._lines.close()

    @property
    def messages(self) -> int:
        return sum(r.messages for r in self.records.values())

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.records.values())

    @property
    def index_bytes(self) -> int:
        """The size of the `index.jsonl` these records assemble into."""
        return sum(r.index_bytes for r in self.records.values())

    @property
    def last_pass(self) -> int:
        """The highest pass number of a kept record (0 when there is none)."""
        return max((r.pass_number for r in self.records.values()), default=0)


def load_journal(s3: Any, layout: StoreLayout, listing: Listing, ids: IdSet) -> Journal:
    """Read every journal record under the store and keep those whose part is intact.

    The ids of kept records go into `ids` as RESUMED, with their SHA-256. A record that is
    unreadable, names a part that is missing, of another size or compression, or repeats an
    id of a kept record, is not kept: its messages are exported again. Records the checkpoint
    vouches for are taken from the current index instead of being read.
    """
    journal = Journal()
    try:
        vouched = checkpointed(s3, layout, listing)
        for key in sorted(listing):
            number = layout.journal_number(key)
            if number is None:
                continue
            read = vouched.get(number) or _read_record(s3, layout, key, number, listing)
            record, problem = read.record, read.problem
            pairs = [(e.id, e.sha256) for e in read.entries]
            if record is not None and not ids.add_all(pairs, IdSet.RESUMED):
                record, problem = None, f"{key}: repeats a message of another part"
            if record is None:
                journal.stale_keys.append(key)
                journal.problems.append(problem)
                continue
            journal.keep(number, record, read.lines, read.entries)
    except BaseException:
        journal.close()
        raise
    return journal


def _read_record(
    s3: Any, layout: StoreLayout, key: str, number: int, listing: dict[str, int]
) -> ReadRecord:
    body = open_object(s3, layout.bucket, key)
    if body is None:
        return ReadRecord(None, [], f"{key}: vanished")
    where = f"journal record s3://{layout.bucket}/{key}"
    with s3_errors(f"read of s3://{layout.bucket}/{key}"):
        try:
            raw = list(iter_lines(body, where=where))
        except ExportError as exc:  # past the limits: not a record we wrote, as if malformed
            return ReadRecord(None, [], str(exc))
        finally:
            body.close()
    try:
        record, entries, problem = parse_record(layout, number, raw, listing)
    except (ExportError, ValueError, KeyError, TypeError) as exc:
        return ReadRecord(None, [], f"{key}: {exc}")
    lines = b"".join(line + b"\n" for line in raw[1:] if line.strip())
    return ReadRecord(record, entries, problem, lines)


def assemble_index(
    s3: Any, layout: StoreLayout, numbers: Iterable[int], journal: Journal | None = None
) -> IndexWriter:
    """`index.jsonl` built from the journal records of `numbers`, in that order: those that
    `journal` kept as it loaded them from its copy, the others read from S3.

    The caller closes the returned writer.
    """
    writer = IndexWriter()
    try:
        for number in numbers:
            kept = journal.lines_of(number) if journal is not None else None
            if kept is not None:
                writer.add_lines(kept)
            else:
                _append_record(s3, layout, number, writer)
    except BaseException:
        writer.close()
        raise
    return writer


def _append_record(s3: Any, layout: StoreLayout, number: int, writer: IndexWriter) -> None:
    key = layout.journal_key(number)
    body = open_object(s3, layout.bucket, key)
    if body is None:
        raise ExportError(f"journal record s3://{layout.bucket}/{key} vanished during export")
    with s3_errors(f"read of s3://{layout.bucket}/{key}"):
        try:
            for position, line in enumerate(iter_lines(body, where=f"journal record {key}")):
                if position and line.strip():
                    writer.add_line(line + b"\n")
        finally:
            body.close()
