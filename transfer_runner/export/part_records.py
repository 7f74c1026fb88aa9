"""One journal record: the header line of a part (`PartRecord`) followed by the part's
`index.jsonl` lines, as written after the part is uploaded and parsed when an export resumes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from transfer_runner.export.index import (
    IndexEntry,
)
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import put_bytes
from transfer_runner.s3_client import S3Settings

__all__ = [
    "JOURNAL_CONTENT_TYPE",
    "JOURNAL_VERSION",
    "PartRecord",
    "ReadRecord",
    "journal_header",
    "parse_record",
    "record_fields",
    "write_record",
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


def record_fields(record: PartRecord) -> dict[str, Any]:
    return {
        "part": record.name,
        "size": record.size,
        "messages": record.messages,
        "bytes": record.bytes,
        "pass": record.pass_number,
    }


def journal_header(record: PartRecord) -> bytes:
    """The first line of a journal record."""
    doc = {"journal": JOURNAL_VERSION, **record_fields(record)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def write_record(
    s3: Any, settings: S3Settings, layout: StoreLayout, record: PartRecord, lines: IO[bytes]
) -> None:
    """Write part `record.number`'s journal record: the header, then its index lines."""
    lines.seek(0)
    body = journal_header(record) + lines.read()
    put_bytes(s3, settings, layout.journal_key(record.number), body, JOURNAL_CONTENT_TYPE)


@dataclass(frozen=True)
class ReadRecord:
    """One journal record as read: the record if it is sound, its entries and lines."""

    record: PartRecord | None
    entries: list[IndexEntry]
    problem: str = ""
    lines: bytes = b""  # the index lines, each with its newline, as stored


def parse_record(
    layout: StoreLayout, number: int, raw: list[bytes], listing: dict[str, int]
) -> tuple[PartRecord | None, list[IndexEntry], str]:
    if not raw:
        raise ValueError("empty record")
    head = json.loads(raw[0])
    name = head.get("part")
    if head.get("journal") not in _READABLE_VERSIONS or name not in layout.part_names(number):
        raise ValueError(f"not a record of {layout.part_name(number)} (compression changed?)")
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
