"""The journal of completed parts: how an export resumes exactly after a crash.

Once part N is uploaded, `<store>/_journal/part-NNNNN.json` is written: a header line
`{"journal": 2, "part": "part-00003.tar.gz", "size": ..., "messages": ..., "bytes": ...,
"pass": 2}` followed by the part's `index.jsonl` lines (version 1 records, from before export
passes, belong to pass 1). S3 is the only durable place shared between runs
(the next one may run on another machine), so that is where the journal lives. On resume a
record counts only if its part object exists with the recorded size and the current
compression; its messages are then skipped. `index.jsonl` is assembled from the records, in
part-number order, so no message is missing or twice.

After a pass writes the index, `_journal/checkpoint.json` names the records it was made of
(their headers) and the index's SHA-256. While S3 still holds that index, the next pass takes
those records from the index (which every step reads, and keeps parsed) instead of reading
each record object: a pass then costs reads in proportion to what is new, not to the store.
Anything that does not agree (another index, a part of another size, lines that would not
give the same bytes) is read from its record as before, so the checkpoint only saves reads.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from transfer_runner.errors import ExportError
from transfer_runner.export.idset import IdSet
from transfer_runner.export.index import (
    MAX_HELD_ENTRIES,
    ExportIndex,
    IndexEntry,
    IndexWriter,
    iter_lines,
    read_index,
)
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import open_object, put_bytes, read_bytes, s3_errors
from transfer_runner.s3_client import S3Settings

__all__ = [
    "JOURNAL_VERSION",
    "PartRecord",
    "Journal",
    "journal_header",
    "write_record",
    "write_checkpoint",
    "load_journal",
    "assemble_index",
]

JOURNAL_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_SPOOL = 8 * 1024 * 1024
JOURNAL_CONTENT_TYPE = "application/x-ndjson"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class PartRecord:
    """A completed part: its number and name, stored size, message count and bytes, the pass
    that wrote it and the size of its index lines."""

    number: int
    name: str
    size: int
    messages: int
    bytes: int
    pass_number: int = 1
    index_bytes: int = 0


def _record_fields(record: PartRecord) -> dict[str, Any]:
    return {
        "part": record.name,
        "size": record.size,
        "messages": record.messages,
        "bytes": record.bytes,
        "pass": record.pass_number,
    }


def journal_header(record: PartRecord) -> bytes:
    """The first line of a journal record."""
    doc = {"journal": JOURNAL_VERSION, **_record_fields(record)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def write_record(
    s3: Any, settings: S3Settings, layout: StoreLayout, record: PartRecord, lines: IO[bytes]
) -> None:
    """Write part `record.number`'s journal record: the header, then its index lines."""
    lines.seek(0)
    body = journal_header(record) + lines.read()
    put_bytes(s3, settings, layout.journal_key(record.number), body, JOURNAL_CONTENT_TYPE)


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


def write_checkpoint(
    s3: Any,
    settings: S3Settings,
    layout: StoreLayout,
    records: Sequence[PartRecord],
    index_sha256: str,
    index_bytes: int,
) -> None:
    """Record that the index with this SHA-256 and size was assembled from `records`."""
    doc = {
        "checkpoint": CHECKPOINT_VERSION,
        "index_sha256": index_sha256,
        "index_bytes": index_bytes,
        "parts": [
            {"number": r.number, **_record_fields(r), "index_bytes": r.index_bytes} for r in records
        ],
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    put_bytes(s3, settings, layout.checkpoint_key, body, "application/json")


def load_journal(s3: Any, layout: StoreLayout, listing: dict[str, int], ids: IdSet) -> Journal:
    """Read every journal record under the store and keep those whose part is intact.

    The ids of kept records go into `ids` as RESUMED, with their SHA-256. A record that is
    unreadable, names a part that is missing, of another size or compression, or repeats an
    id of a kept record, is not kept: its messages are exported again. Records the checkpoint
    vouches for are taken from the current index instead of being read.
    """
    journal = Journal()
    try:
        vouched = _checkpointed(s3, layout, listing)
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


@dataclass(frozen=True)
class _Read:
    """One journal record as read: the record if it is sound, its entries and lines."""

    record: PartRecord | None
    entries: list[IndexEntry]
    problem: str = ""
    lines: bytes = b""  # the index lines, each with its newline, as stored


def _read_record(
    s3: Any, layout: StoreLayout, key: str, number: int, listing: dict[str, int]
) -> _Read:
    body = open_object(s3, layout.bucket, key)
    if body is None:
        return _Read(None, [], f"{key}: vanished")
    with s3_errors(f"read of s3://{layout.bucket}/{key}"):
        try:
            raw = list(iter_lines(body))
        finally:
            body.close()
    try:
        record, entries, problem = _parse_record(layout, number, raw, listing)
    except (ExportError, ValueError, KeyError, TypeError) as exc:
        return _Read(None, [], f"{key}: {exc}")
    lines = b"".join(line + b"\n" for line in raw[1:] if line.strip())
    return _Read(record, entries, problem, lines)


def _checkpointed(s3: Any, layout: StoreLayout, listing: dict[str, int]) -> dict[int, _Read]:
    """The records the checkpoint vouches for, taken from the index S3 holds now: those
    whose part is intact and whose index lines give back exactly that index. Empty when
    there is no checkpoint, it is unreadable, or it was made for another index."""
    if layout.checkpoint_key not in listing:
        return {}
    try:
        raw = read_bytes(s3, layout.bucket, layout.checkpoint_key)
        doc = json.loads(raw if raw is not None else b"{}")
        if doc.get("checkpoint") != CHECKPOINT_VERSION:
            return {}
        if listing.get(layout.index_key) != doc["index_bytes"]:
            return {}
        index = read_index(s3, layout)
        if index is None or index.sha256 != doc["index_sha256"]:
            return {}
        records = [_vouched_record(layout, item) for item in doc["parts"]]
    except (ExportError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return _records_of_index(layout, index, sorted(records, key=lambda r: r.number), listing)


def _vouched_record(layout: StoreLayout, item: dict[str, Any]) -> PartRecord:
    number = item["number"]
    fields = (number, item["size"], item["messages"], item["bytes"], item["pass"])
    if not all(type(v) is int and v >= 0 for v in (*fields, item["index_bytes"])):
        raise ValueError("a checkpoint field is not a whole number")
    if number < 1 or item["pass"] < 1 or item["part"] != layout.part_name(number):
        raise ValueError(f"not a record of part {number}")
    return PartRecord(
        number,
        item["part"],
        item["size"],
        item["messages"],
        item["bytes"],
        item["pass"],
        item["index_bytes"],
    )


def _records_of_index(
    layout: StoreLayout, index: ExportIndex, records: list[PartRecord], listing: dict[str, int]
) -> dict[int, _Read]:
    """Split the index into the records it was assembled from (in part-number order), each
    with its entries and lines; {} unless the lines give back the index byte for byte."""
    entries = index.entries
    blocks = _stored_blocks(index, records)
    if blocks is None:  # not at hand as stored: the lines are formatted again and hashed
        blocks = _formatted_blocks(index, records)
    if blocks is None:
        return {}
    found: dict[int, _Read] = {}
    start = 0
    for record, block in zip(records, blocks, strict=True):
        mine = entries[start : start + record.messages]
        start += record.messages
        if _agrees(layout, record, mine, block, listing):
            found[record.number] = _Read(record, list(mine), "", block)
    return found


def _stored_blocks(index: ExportIndex, records: list[PartRecord]) -> list[bytes] | None:
    """The index as stored cut at the records' sizes, or None unless every line of it is an
    entry (none blank) and each cut holds exactly its record's number of lines."""
    raw = index.raw
    if raw is None or raw.count(b"\n") != len(index.entries) or raw[-1:] not in (b"", b"\n"):
        return None
    blocks, start = [], 0
    for record in records:
        block = raw[start : start + record.index_bytes]
        start += record.index_bytes
        if block.count(b"\n") != record.messages or block[-1:] not in (b"", b"\n"):
            return None
        blocks.append(block)
    return blocks if start == len(raw) else None


def _formatted_blocks(index: ExportIndex, records: list[PartRecord]) -> list[bytes] | None:
    """The records' lines formatted from the entries, or None unless they hash to the index."""
    entries = index.entries
    digest = hashlib.sha256()
    blocks, start = [], 0
    for record in records:
        block = b"".join(e.to_line() for e in entries[start : start + record.messages])
        start += record.messages
        digest.update(block)
        blocks.append(block)
    if start != len(entries) or digest.hexdigest() != index.sha256:
        return None
    return blocks


def _agrees(
    layout: StoreLayout,
    record: PartRecord,
    entries: Sequence[IndexEntry],
    lines: bytes,
    listing: dict[str, int],
) -> bool:
    """Whether `entries` are what the record's own object would give (the checks of
    `_parse_record`), and its part and record objects are there."""
    return (
        layout.journal_key(record.number) in listing
        and listing.get(layout.part_key(record.name)) == record.size
        and len(entries) == record.messages
        and sum(e.size for e in entries) == record.bytes
        and len(lines) == record.index_bytes
        and all(e.part == record.name and e.pass_number == record.pass_number for e in entries)
        and len({e.id for e in entries}) == len(entries)
    )


def _parse_record(
    layout: StoreLayout, number: int, raw: list[bytes], listing: dict[str, int]
) -> tuple[PartRecord | None, list[IndexEntry], str]:
    if not raw:
        raise ValueError("empty record")
    head = json.loads(raw[0])
    name = layout.part_name(number)
    if head.get("journal") not in _READABLE_VERSIONS or head.get("part") != name:
        raise ValueError(f"not a record of {name} (compression changed?)")
    pass_number = int(head.get("pass", 1))
    if pass_number < 1:
        raise ValueError(f"pass {pass_number} is not a pass number")
    index_bytes = sum(len(line) + 1 for line in raw[1:] if line.strip())
    record = PartRecord(
        number,
        name,
        int(head["size"]),
        int(head["messages"]),
        int(head["bytes"]),
        pass_number,
        index_bytes,
    )
    if listing.get(layout.part_key(name)) != record.size:
        raise ValueError(f"{name} is missing or not {record.size} bytes")
    entries = [IndexEntry.from_line(line, n, layout) for n, line in enumerate(raw[1:], 2)]
    if len(entries) != record.messages or sum(e.size for e in entries) != record.bytes:
        raise ValueError("the header's counts do not match its lines")
    if any(e.part != name for e in entries) or len({e.id for e in entries}) != len(entries):
        raise ValueError("a line names another part or an id twice")
    if head.get("journal") != 1 and any(e.pass_number != pass_number for e in entries):
        raise ValueError(f"a line names another pass than the header's {pass_number}")
    return record, entries, ""


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
            for position, line in enumerate(iter_lines(body)):
                if position and line.strip():
                    writer.add_line(line + b"\n")
        finally:
            body.close()
