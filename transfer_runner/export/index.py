"""`index.jsonl`: one JSON line per exported message, pass by pass, in listing order.

`{"id": "...", "part": "part-00001.tar.gz", "size": 2048, "sha256": "<hex>",
"received_at": "2026-11-03T12:00:00Z", "pass": 1}`. An export grows by passes: each pass
adds the messages the export lacked as new parts, and the index is rewritten as the union of
every pass (earlier parts are never rewritten). It is written last, so its presence means the
last pass finished; its SHA-256 identifies one state of the export exactly. A line without
`pass` (an export made before passes existed) belongs to pass 1.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from transfer_runner.errors import ExportError
from transfer_runner.export.layout import StoreLayout, is_message_id
from transfer_runner.export.objects import open_object, s3_errors
from transfer_runner.export.s3 import MiB

__all__ = [
    "IndexEntry",
    "IndexWriter",
    "ExportIndex",
    "as_utc",
    "utc_iso",
    "read_index",
    "iter_lines",
]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SPOOL_LIMIT = 4 * MiB


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class IndexEntry:
    """One message of an export."""

    id: str
    part: str
    size: int
    sha256: str
    received_at: str
    pass_number: int = 1

    def to_line(self) -> bytes:
        """The entry as one JSON line, keys in the documented order."""
        doc = {
            "id": self.id,
            "part": self.part,
            "size": self.size,
            "sha256": self.sha256,
            "received_at": self.received_at,
            "pass": self.pass_number,
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes, number: int, layout: StoreLayout) -> IndexEntry:
        """Parse and check one line; `ExportError` naming the line if anything is off."""
        where = f"s3://{layout.bucket}/{layout.index_key} line {number}"
        try:
            doc = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExportError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise ExportError(f"{where}: not a JSON object")
        return cls(
            id=_field(doc, "id", where, is_message_id),
            part=_field(doc, "part", where, lambda v: layout.part_number(v) is not None),
            size=_field(doc, "size", where, _is_size),
            sha256=_field(doc, "sha256", where, _is_sha256),
            received_at=_field(doc, "received_at", where, lambda v: isinstance(v, str)),
            pass_number=_field({"pass": 1, **doc}, "pass", where, _is_pass),
        )


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_pass(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256_RE.match(value) is not None


def _field(doc: dict[str, Any], name: str, where: str, ok: Callable[[Any], bool]) -> Any:
    if name not in doc:
        raise ExportError(f"{where}: no {name!r}")
    if not ok(doc[name]):
        raise ExportError(f"{where}: bad {name!r}: {doc[name]!r}")
    return doc[name]


class IndexWriter:
    """Builds `index.jsonl` in a spooled temporary file, hashing it as it grows."""

    def __init__(self) -> None:
        # Owned by this writer and released by close().
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.size = 0
        self.count = 0

    def add(self, entry: IndexEntry) -> None:
        """Append one entry."""
        self.add_line(entry.to_line())

    def add_line(self, line: bytes) -> None:
        """Append one line already in index form (ending with a newline)."""
        self.file.write(line)
        self._hash.update(line)
        self.size += len(line)
        self.count += 1

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the lines written so far."""
        return self._hash.hexdigest()

    def close(self) -> None:
        """Release the temporary file."""
        self.file.close()


@dataclass(frozen=True)
class ExportIndex:
    """A parsed index: entries in file order, with what identifies and sums it."""

    entries: tuple[IndexEntry, ...]
    sha256: str

    @property
    def messages(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def parts(self) -> tuple[str, ...]:
        """Part names in order of first appearance."""
        return tuple(dict.fromkeys(e.part for e in self.entries))

    @property
    def passes(self) -> int:
        """The number of the export's last pass (0 for an empty export)."""
        return max((e.pass_number for e in self.entries), default=0)


def iter_lines(body: Any, digest: Any | None = None) -> Iterator[bytes]:
    """The lines of a stream, without their newlines; feeds every byte read to `digest`."""
    pending = b""
    for chunk in iter(lambda: body.read(256 * 1024), b""):
        if digest is not None:
            digest.update(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def read_index(s3: Any, layout: StoreLayout) -> ExportIndex | None:
    """The store's index, or None if there is none; `ExportError` if it is malformed.

    Holds the entries (about 200 bytes a message), never message bodies.
    """
    body = open_object(s3, layout.bucket, layout.index_key)
    if body is None:
        return None
    digest = hashlib.sha256()
    entries: list[IndexEntry] = []
    with s3_errors(f"read of s3://{layout.bucket}/{layout.index_key}"):
        try:
            for number, line in enumerate(iter_lines(body, digest), start=1):
                if line.strip():
                    entries.append(IndexEntry.from_line(line, number, layout))
        finally:
            body.close()
    return ExportIndex(tuple(entries), digest.hexdigest())
