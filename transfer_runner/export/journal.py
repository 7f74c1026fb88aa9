"""The journal of completed parts: how an export resumes exactly after a crash.

Once part N is uploaded, `<store>/_journal/part-NNNNN.json` is written: a header line
`{"journal": 2, "part": "part-00003.tar.gz", "size": ..., "messages": ..., "bytes": ...,
"pass": 2}` followed by the part's `index.jsonl` lines (version 1 records, from before export
passes, belong to pass 1). S3 is the only durable place shared between runs
(the next one may run on another machine), so that is where the journal lives. On resume a
record counts only if its part object exists with the recorded size and the current
compression; its messages are then skipped. `index.jsonl` is assembled from the records, in
part-number order, so no message is missing or twice.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from transfer_runner.errors import ExportError
from transfer_runner.export.index import IndexEntry, IndexWriter, iter_lines
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import open_object, put_bytes, s3_errors
from transfer_runner.export.s3 import S3Settings

__all__ = [
    "JOURNAL_VERSION",
    "PartRecord",
    "Journal",
    "IdSet",
    "journal_header",
    "write_record",
    "load_journal",
    "assemble_index",
]

JOURNAL_VERSION = 2
_READABLE_VERSIONS = (1, 2)
JOURNAL_CONTENT_TYPE = "application/x-ndjson"


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


def journal_header(record: PartRecord) -> bytes:
    """The first line of a journal record."""
    doc = {
        "journal": JOURNAL_VERSION,
        "part": record.name,
        "size": record.size,
        "messages": record.messages,
        "bytes": record.bytes,
        "pass": record.pass_number,
    }
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def write_record(
    s3: Any, settings: S3Settings, layout: StoreLayout, record: PartRecord, lines: IO[bytes]
) -> None:
    """Write part `record.number`'s journal record: the header, then its index lines."""
    lines.seek(0)
    body = journal_header(record) + lines.read()
    put_bytes(s3, settings, layout.journal_key(record.number), body, JOURNAL_CONTENT_TYPE)


class IdSet:
    """Message ids of an export, on disk (SQLite), so memory does not grow with them.

    Each id remembers whether it came from the journal (exported by an earlier pass or
    attempt: RESUMED) or from this pass's packing (PACKED), its SHA-256, and whether this
    pass's listing of the source has shown it (`mark_listed`).
    """

    RESUMED, PACKED = 0, 1

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="transfer-runner-ids-")
        self._db = sqlite3.connect(Path(self._dir.name) / "ids.db", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2048"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE ids (id TEXT PRIMARY KEY, origin INTEGER, sha256 TEXT, "
            "listed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")

    def add(self, message_id: str, origin: int, sha256: str | None = None) -> int | None:
        """Record `message_id`; None if it is new, else the origin it was first seen with."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO ids (id, origin, sha256) VALUES (?, ?, ?)",
            (message_id, origin, sha256),
        )
        if cursor.rowcount == 1:
            return None
        row = self._db.execute("SELECT origin FROM ids WHERE id = ?", (message_id,)).fetchone()
        return int(row[0])

    def lookup(self, message_id: str) -> tuple[int, str | None, bool] | None:
        """(origin, SHA-256, listed) of a recorded id, or None."""
        row = self._db.execute(
            "SELECT origin, sha256, listed FROM ids WHERE id = ?", (message_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), row[1], bool(row[2]))

    def mark_listed(self, message_id: str) -> None:
        """Note that the source's listing showed this (recorded) id."""
        self._db.execute("UPDATE ids SET listed = 1 WHERE id = ?", (message_id,))

    def unlisted(self, origin: int) -> int:
        """How many ids of `origin` the source's listing did not show (expired since)."""
        query = "SELECT COUNT(*) FROM ids WHERE origin = ? AND listed = 0"
        return int(self._db.execute(query, (origin,)).fetchone()[0])

    def contains_any(self, message_ids: Iterable[str]) -> bool:
        """True if any of `message_ids` is already recorded."""
        query = "SELECT 1 FROM ids WHERE id = ?"
        return any(self._db.execute(query, (i,)).fetchone() for i in message_ids)

    def close(self) -> None:
        """Drop the database."""
        self._db.close()
        self._dir.cleanup()


@dataclass
class Journal:
    """What the journal on S3 vouches for: valid records by number, and keys to delete."""

    records: dict[int, PartRecord] = field(default_factory=dict)
    stale_keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

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


def load_journal(s3: Any, layout: StoreLayout, listing: dict[str, int], ids: IdSet) -> Journal:
    """Read every journal record under the store and keep those whose part is intact.

    The ids of kept records go into `ids` as RESUMED, with their SHA-256. A record that is
    unreadable, names a part that is missing, of another size or compression, or repeats an
    id of a kept record, is not kept: its messages are exported again.
    """
    journal = Journal()
    for key in sorted(listing):
        number = layout.journal_number(key)
        if number is None:
            continue
        record, entries, problem = _read_record(s3, layout, key, number, listing)
        if record is not None and ids.contains_any(e.id for e in entries):
            record, problem = None, f"{key}: repeats a message of another part"
        if record is None:
            journal.stale_keys.append(key)
            journal.problems.append(problem)
            continue
        for entry in entries:
            ids.add(entry.id, IdSet.RESUMED, entry.sha256)
        journal.records[number] = record
    return journal


def _read_record(
    s3: Any, layout: StoreLayout, key: str, number: int, listing: dict[str, int]
) -> tuple[PartRecord | None, list[IndexEntry], str]:
    body = open_object(s3, layout.bucket, key)
    if body is None:
        return None, [], f"{key}: vanished"
    with s3_errors(f"read of s3://{layout.bucket}/{key}"):
        try:
            raw = list(iter_lines(body))
        finally:
            body.close()
    try:
        return _parse_record(layout, number, raw, listing)
    except (ExportError, ValueError, KeyError, TypeError) as exc:
        return None, [], f"{key}: {exc}"


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


def assemble_index(s3: Any, layout: StoreLayout, numbers: Iterable[int]) -> IndexWriter:
    """`index.jsonl` built from the journal records of `numbers`, in that order.

    The caller closes the returned writer.
    """
    writer = IndexWriter()
    try:
        for number in numbers:
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
