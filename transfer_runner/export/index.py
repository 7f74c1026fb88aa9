"""`index.jsonl`: one JSON line per exported message, pass by pass, in listing order.

`{"id": "...", "part": "part-00001.tar.zst", "size": 2048, "sha256": "<hex>",
"received_at": "2026-11-03T12:00:00Z", "pass": 1}`. An export grows by passes: each pass
adds the messages the export lacked as new parts, and the index is rewritten as the union of
every pass (earlier parts are never rewritten). It is written last, so its presence means the
last pass finished; its SHA-256 identifies one state of the export exactly. A line without
`pass` (an export made before passes existed) belongs to pass 1.

Every step of a transfer reads the index (status, delta, verify, import, the cancel gate), and
it holds a line per message: a parsed index is therefore kept in memory with the ETag it was
read under, and read again only when S3 answers a conditional GET with a new ETag (see
`IndexCache`). A line in the form the runner writes is parsed by one regular expression; any
other line goes through `json.loads` and the same checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, Any, NamedTuple

from transfer_runner.errors import ExportError
from transfer_runner.export.layout import StoreLayout, is_message_id
from transfer_runner.export.limits import iter_lines
from transfer_runner.export.objects import Listing, open_object_if_changed, s3_errors
from transfer_runner.s3_client import MiB
from transfer_runner.shown import shown

__all__ = [
    "IndexEntry",
    "IndexWriter",
    "ExportIndex",
    "IndexCache",
    "INDEX_CACHE",
    "MAX_HELD_ENTRIES",
    "read_index",
    "remember_index",
    "iter_lines",  # limits', re-exported
]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# A line exactly as `IndexEntry.to_line` writes it: no escapes, no control characters, the
# message id in its safe form, whole numbers. Anything else takes the checked slow path.
_CANONICAL_LINE = re.compile(
    r'\{"id":"([A-Za-z0-9][A-Za-z0-9._-]{0,127})","part":"([^"\\\x00-\x1f]*)",'
    r'"size":(0|[1-9][0-9]{0,18}),"sha256":"([0-9a-f]{64})",'
    r'"received_at":"([^"\\\x00-\x1f]*)","pass":([1-9][0-9]{0,9})\}'
)
# Printable ASCII but `"` and a backslash: what JSON writes as it is, without an escape.
_PLAIN_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_SPOOL_LIMIT = 4 * MiB
MAX_HELD_ENTRIES = 250_000  # parsed entries held in memory for one purpose (~300 bytes each)


class IndexEntry(NamedTuple):
    """One message of an export."""

    id: str
    part: str
    size: int
    sha256: str
    received_at: str
    pass_number: int = 1

    def to_line(self) -> bytes:
        """The entry as one JSON line, keys in the documented order."""
        if (
            is_message_id(self.id)
            and _PLAIN_TEXT.fullmatch(self.part)
            and _PLAIN_TEXT.fullmatch(self.received_at)
            and _SHA256_RE.match(self.sha256)
            and type(self.size) is int
            and type(self.pass_number) is int
        ):  # nothing to escape: the bytes json.dumps would give, formatted directly
            return (
                f'{{"id":"{self.id}","part":"{self.part}","size":{self.size},'
                f'"sha256":"{self.sha256}","received_at":"{self.received_at}",'
                f'"pass":{self.pass_number}}}\n'
            ).encode()
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
        entry = _parse_canonical(line)
        if entry is not None and layout.part_number(entry.part) is not None:
            return entry
        return cls._from_json(line, number, layout)

    @classmethod
    def _from_json(cls, line: bytes, number: int, layout: StoreLayout) -> IndexEntry:
        where = f"s3://{layout.bucket}/{layout.index_key} line {number}"
        try:
            doc = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExportError(f"{where}: not JSON ({shown(str(exc))})") from exc
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


def _parse_canonical(line: bytes) -> IndexEntry | None:
    """The entry of a line in the runner's own form, or None (then the slow path decides)."""
    try:
        match = _CANONICAL_LINE.fullmatch(line.decode())
    except UnicodeDecodeError:
        return None
    if match is None:
        return None
    message_id, part, size, sha256, received_at, pass_number = match.groups()
    return IndexEntry(message_id, part, int(size), sha256, received_at, int(pass_number))


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
        raise ExportError(f"{where}: bad {name!r}: {shown(doc[name])}")
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

    def add_lines(self, block: bytes) -> None:
        """Append several lines already in index form (each ending with a newline)."""
        self.file.write(block)
        self._hash.update(block)
        self.size += len(block)
        self.count += block.count(b"\n")

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the lines written so far."""
        return self._hash.hexdigest()

    def close(self) -> None:
        """Release the temporary file."""
        self.file.close()


@dataclass(frozen=True)
class ExportIndex:
    """A parsed index: entries in file order, with what identifies and sums it.

    `raw` is the index as stored, when at hand: the journal takes a record's lines from it
    for the next pass instead of formatting its entries again.
    """

    entries: tuple[IndexEntry, ...]
    sha256: str
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def messages(self) -> int:
        return len(self.entries)

    @cached_property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @cached_property
    def parts(self) -> tuple[str, ...]:
        """Part names in order of first appearance."""
        return tuple(dict.fromkeys(e.part for e in self.entries))

    @cached_property
    def passes(self) -> int:
        """The number of the export's last pass (0 for an empty export)."""
        return max((e.pass_number for e in self.entries), default=0)


class IndexCache:
    """Parsed indexes by object, each with the ETag S3 gave it, least recently used first out.

    A cached index is only ever returned after S3 answered a conditional GET with 304 (the
    object still has that ETag), so the cache saves parsing and transfer, never a check.
    Bounded by the number of entries it holds (about 300 bytes each, plus its stored line).
    """

    def __init__(self, max_entries: int = MAX_HELD_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str, str], tuple[str, ExportIndex]] = OrderedDict()
        self._held = 0
        self.hits = 0
        self.misses = 0

    def get(self, where: tuple[str, str, str]) -> tuple[str, ExportIndex] | None:
        """The (ETag, index) cached for `where`, or None."""
        with self._lock:
            found = self._items.get(where)
            if found is not None:
                self._items.move_to_end(where)
            return found

    def put(self, where: tuple[str, str, str], etag: str, index: ExportIndex) -> None:
        """Remember `index` as the object's content under `etag` (nothing if too large)."""
        with self._lock:
            self._drop(where)
            if not etag or index.messages > self.max_entries:
                return
            self._items[where] = (etag, index)
            self._held += index.messages
            while self._held > self.max_entries:
                self._drop(next(iter(self._items)))

    def discard(self, where: tuple[str, str, str]) -> None:
        """Forget the index cached for `where` (the object is gone or unreadable)."""
        with self._lock:
            self._drop(where)

    def count(self, *, hit: bool) -> None:
        """Count one read: answered from memory (`hit`) or parsed."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def clear(self) -> None:
        """Forget every index."""
        with self._lock:
            self._items.clear()
            self._held = 0

    def _drop(self, where: tuple[str, str, str]) -> None:
        old = self._items.pop(where, None)
        if old is not None:
            self._held -= old[1].messages


INDEX_CACHE = IndexCache()


def _cache_key(s3: Any, layout: StoreLayout) -> tuple[str, str, str]:
    endpoint = getattr(getattr(s3, "meta", None), "endpoint_url", None) or f"client-{id(s3)}"
    return (str(endpoint), layout.bucket, layout.index_key)


def remember_index(s3: Any, layout: StoreLayout, etag: str, index: ExportIndex) -> None:
    """Cache an index this process has just written with `etag`: the next `read_index` gets
    it after a 304 instead of downloading and parsing what it wrote."""
    INDEX_CACHE.put(_cache_key(s3, layout), etag, index)


def read_index(s3: Any, layout: StoreLayout, listing: Listing | None = None) -> ExportIndex | None:
    """The store's index, or None if there is none; `ExportError` if it is malformed.

    Holds the entries and the lines (about 500 bytes a message), never message bodies. Asks
    S3 (a conditional GET) and parses only what changed since the last read (`INDEX_CACHE`);
    with a `listing` of the store taken by the caller that shows the cached index's ETag, it
    does not ask again.
    """
    where = _cache_key(s3, layout)
    cached = INDEX_CACHE.get(where)
    listed = listing.etags.get(layout.index_key) if listing is not None else None
    if cached is not None and cached[0] and listed == cached[0]:
        INDEX_CACHE.count(hit=True)
        return cached[1]
    read = open_object_if_changed(
        s3, layout.bucket, layout.index_key, cached[0] if cached else None
    )
    if read is None:
        INDEX_CACHE.discard(where)
        return None
    if read.body is None and cached is not None:
        INDEX_CACHE.count(hit=True)
        return cached[1]
    INDEX_CACHE.count(hit=False)
    try:
        index = _parse(read.body, layout)
    except ExportError:
        INDEX_CACHE.discard(where)
        raise
    INDEX_CACHE.put(where, read.etag, index)
    return index


def _parse(body: Any, layout: StoreLayout) -> ExportIndex:
    """Parse the index as it is read (`iter_lines`: bounded, linear), keeping what was read."""
    digest = hashlib.sha256()
    recorded = _Recorded(body)
    where = f"s3://{layout.bucket}/{layout.index_key}"
    with s3_errors(f"read of {where}"):
        try:
            lines = iter_lines(recorded, digest, where=where)
            entries = tuple(
                IndexEntry.from_line(line, number, layout)
                for number, line in enumerate(lines, start=1)
                if line.strip()
            )
        finally:
            body.close()
    raw = b"".join(recorded.chunks)
    del recorded
    return ExportIndex(entries, digest.hexdigest(), raw)


class _Recorded:
    """A stream whose every chunk read is kept (`chunks`)."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.chunks: list[bytes] = []

    def read(self, size: int) -> bytes:
        chunk: bytes = self.body.read(size)
        self.chunks.append(chunk)
        return chunk
