"""After a pass writes the index, `_journal/checkpoint.json` names the records it was made of
(their headers) and the index's SHA-256. While S3 still holds that index, the next pass takes
those records from the index (which every step reads, and keeps parsed) instead of reading
each record object: a pass then costs reads in proportion to what is new, not to the store.
Anything that does not agree (another index, a part of another size, lines that would not
give the same bytes) is read from its record as before, so the checkpoint only saves reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.index import (
    ExportIndex,
    IndexEntry,
    read_index,
)
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import Listing, put_bytes, read_bytes
from transfer_runner.export.part_records import PartRecord, ReadRecord, record_fields
from transfer_runner.s3_client import S3Settings

__all__ = [
    "CHECKPOINT_VERSION",
    "checkpointed",
    "records_of_index",
    "vouched_record",
    "write_checkpoint",
]

CHECKPOINT_VERSION = 1


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
            {"number": r.number, **record_fields(r), "index_bytes": r.index_bytes} for r in records
        ],
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    put_bytes(s3, settings, layout.checkpoint_key, body, "application/json")


def checkpointed(s3: Any, layout: StoreLayout, listing: Listing) -> dict[int, ReadRecord]:
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
        index = read_index(s3, layout, listing)
        if index is None or index.sha256 != doc["index_sha256"]:
            return {}
        records = [vouched_record(layout, item) for item in doc["parts"]]
    except (ExportError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return records_of_index(layout, index, sorted(records, key=lambda r: r.number), listing)


def vouched_record(layout: StoreLayout, item: dict[str, Any]) -> PartRecord:
    number = item["number"]
    fields = (number, item["size"], item["messages"], item["bytes"], item["pass"])
    if not all(type(v) is int and v >= 0 for v in (*fields, item["index_bytes"])):
        raise ValueError("a checkpoint field is not a whole number")
    if number < 1 or item["pass"] < 1 or item["part"] not in layout.part_names(number):
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


def records_of_index(
    layout: StoreLayout, index: ExportIndex, records: list[PartRecord], listing: dict[str, int]
) -> dict[int, ReadRecord]:
    """Split the index into the records it was assembled from (in part-number order), each
    with its entries and lines; {} unless the lines give back the index byte for byte."""
    entries = index.entries
    blocks = _stored_blocks(index, records)
    if blocks is None:  # not at hand as stored: the lines are formatted again and hashed
        blocks = _formatted_blocks(index, records)
    if blocks is None:
        return {}
    found: dict[int, ReadRecord] = {}
    start = 0
    for record, block in zip(records, blocks, strict=True):
        mine = entries[start : start + record.messages]
        start += record.messages
        if _agrees(layout, record, mine, block, listing):
            found[record.number] = ReadRecord(record, list(mine), "", block)
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
    `parse_record`), and its part and record objects are there."""
    return (
        layout.journal_key(record.number) in listing
        and listing.get(layout.part_key(record.name)) == record.size
        and len(entries) == record.messages
        and sum(e.size for e in entries) == record.bytes
        and len(lines) == record.index_bytes
        and all(e.part == record.name and e.pass_number == record.pass_number for e in entries)
        and len({e.id for e in entries}) == len(entries)
    )
