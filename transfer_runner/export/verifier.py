"""Verify an export: read its parts back from S3 and compare with the index and the source.

This is the gate of invariant I2, by id set, never by count: every message the source lists
must be in the export with the same SHA-256 (`complete`), and every part must hold exactly what
the index says. A message the export holds that the source no longer lists has expired since
it was exported: it stays in the export and is counted, not a problem. Before the cut-over the
source still receives mail, so `complete=False` counts the source's messages the export lacks
as `pending` (the next pass exports them) instead of failing.

It trusts nothing but its own SHA-256 of every member: not the S3 server, not the index
alone. Each member's header is checked first (`packing.read_members`): one the index does
not list, or of another size, is a finding and is never read. Parts verified earlier
(`known_parts`: name -> ETag) are not read again while S3 still holds them under the same
ETag. Findings are collected (not raised) so that one run shows every problem; S3 or platform
failures still raise, since they say nothing about the data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from transfer_runner.errors import ExportError, NotFound
from transfer_runner.export.exporter import Progress
from transfer_runner.export.index import ExportIndex, IndexEntry, read_index
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import Listing, list_objects, open_object
from transfer_runner.export.packing import DAMAGE, Member, read_members
from transfer_runner.export.source import listed
from transfer_runner.platforms.base import MessageInfo, Platform, Store
from transfer_runner.s3_client import S3Settings
from transfer_runner.testpoints import reached as testpoint

__all__ = ["MAX_PROBLEMS", "VerifyResult", "verify_store", "id_set_digest", "source_digest"]

MAX_PROBLEMS = 1000
_DAMAGE: tuple[type[BaseException], ...] = (*DAMAGE, FlexibleChecksumError)


@dataclass(frozen=True)
class VerifyResult:
    """`ok` when every part holds exactly what the index says and every message the source
    lists is in the export with its SHA-256 (or, with `complete=False`, pending)."""

    ok: bool
    messages: int
    bytes: int
    problems: tuple[str, ...]
    index_sha256: str | None
    expired: int = 0  # exported messages the source no longer lists
    pending: int = 0  # listed by the source, not exported yet (only with complete=False)
    source_messages: int = 0
    passes: int = 0
    parts: dict[str, str] = field(default_factory=dict)  # intact part name -> ETag
    damaged_parts: tuple[str, ...] = ()
    id_set_sha256: str | None = None  # of the sorted "id sha256" lines of the export


class _Problems:
    """Human-readable findings, capped so a wholly broken export stays readable."""

    def __init__(self, limit: int | None = None) -> None:
        self.items: list[str] = []
        self.dropped = 0
        self.limit = MAX_PROBLEMS if limit is None else limit

    def add(self, problem: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(problem)
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def result(self) -> tuple[str, ...]:
        more = (f"... and {self.dropped} more problems",) if self.dropped else ()
        return (*self.items, *more)


def verify_store(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    account_id: str,
    store: Store,
    progress: Progress | None = None,
    *,
    complete: bool = True,
    known_parts: Mapping[str, str] | None = None,
    source: Sequence[MessageInfo] | None = None,
    listing: Listing | None = None,
) -> VerifyResult:
    """Check the export of `store` against S3 read-back and the source account. Writes nothing.

    Holds the index entries in memory (never message bodies); reads parts as streams.
    `source` is a listing of the store taken already (see `source.list_source`); without it
    the source is listed now. `listing` is the caller's listing of the export just taken;
    without it the export is listed now.
    """
    layout = store_layout(settings, transfer_name, store)
    where = f"s3://{layout.bucket}/{layout.index_key}"
    if listing is None:
        listing = list_objects(s3, layout.bucket, layout.base)
    try:
        index = read_index(s3, layout, listing)
    except ExportError as exc:
        return VerifyResult(False, 0, 0, (f"the index is unreadable: {exc}",), None)
    if index is None:
        return VerifyResult(False, 0, 0, (f"no index at {where}: not exported",), None)
    problems = _Problems()
    expected = _expected(index, problems)
    parts = _PartCheck(s3, layout, expected, problems, progress, dict(known_parts or {}))
    parts.run(index, listing.etags)
    infos = listed(platform, account_id, store, source)
    checked = _check_source(platform, account_id, store, infos, expected, problems, complete)
    return VerifyResult(
        ok=not problems,
        messages=index.messages,
        bytes=index.bytes,
        problems=problems.result(),
        index_sha256=index.sha256,
        expired=len(expected) - checked.matched,
        pending=checked.pending,
        source_messages=checked.listed,
        passes=index.passes,
        parts=parts.intact,
        damaged_parts=tuple(sorted(parts.damaged)),
        id_set_sha256=id_set_digest(expected),
    )


def id_set_digest(entries: Mapping[str, IndexEntry]) -> str:
    """SHA-256 of the export's id set: sorted `<id> <sha256>` lines."""
    digest = hashlib.sha256()
    for message_id in sorted(entries):
        digest.update(f"{message_id} {entries[message_id].sha256}\n".encode())
    return digest.hexdigest()


def _expected(index: ExportIndex, problems: _Problems) -> dict[str, IndexEntry]:
    expected: dict[str, IndexEntry] = {}
    for entry in index.entries:
        if entry.id in expected:
            problems.add(f"message {entry.id}: listed twice in the index")
        else:
            expected[entry.id] = entry
    return expected


@dataclass
class _PartCheck:
    """Reads back every part not verified before; which are intact, which damaged."""

    s3: Any
    layout: StoreLayout
    expected: dict[str, IndexEntry]
    problems: _Problems
    progress: Progress | None
    known: dict[str, str]
    intact: dict[str, str] = field(default_factory=dict)
    damaged: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    done: list[int] = field(default_factory=lambda: [0, 0])

    def run(self, index: ExportIndex, etags: Mapping[str, str]) -> None:
        by_part: dict[str, list[IndexEntry]] = {}
        for entry in self.expected.values():
            by_part.setdefault(entry.part, []).append(entry)
        for number, part in enumerate(index.parts, start=1):
            etag = etags.get(self.layout.part_key(part))
            if etag is not None and self.known.get(part) == etag:
                self._skip(part, etag, by_part.get(part, []))
            else:
                self._read(part, etag)
            testpoint(f"verify-after-part-{number}")
        for message_id, entry in self.expected.items():
            if message_id not in self.seen:
                self.problems.add(
                    f"message {message_id}: in the index ({entry.part}) but not in S3"
                )
                self.damaged.add(entry.part)
                self.intact.pop(entry.part, None)

    def _skip(self, part: str, etag: str, entries: list[IndexEntry]) -> None:
        """A part verified earlier, unchanged on S3 since: its messages count as seen."""
        self.intact[part] = etag
        for entry in entries:
            self.seen.add(entry.id)
            self._advance(entry.size)

    def _read(self, part: str, etag: str | None) -> None:
        key = self.layout.part_key(part)
        body = open_object(self.s3, self.layout.bucket, key) if etag is not None else None
        if body is None:
            self.problems.add(f"{part}: missing from S3 (s3://{self.layout.bucket}/{key})")
            self.damaged.add(part)
            return
        before = len(self.problems.items) + self.problems.dropped
        admit = partial(_admitted, self.problems, part=part, expected=self.expected, seen=self.seen)
        try:
            for member in _members(body, part, self.problems, admit):
                _check_digest(member, part, self.expected, self.seen, self.problems)
                self._advance(member.size)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise ExportError(f"S3 read of s3://{self.layout.bucket}/{key} failed: {exc}") from exc
        finally:
            body.close()
        if len(self.problems.items) + self.problems.dropped > before:
            self.damaged.add(part)
        else:
            self.intact[part] = etag or ""

    def _advance(self, nbytes: int) -> None:
        self.done[0], self.done[1] = self.done[0] + 1, self.done[1] + nbytes
        if self.progress is not None:
            self.progress(self.done[0], self.done[1])


def _members(body: Any, part: str, problems: _Problems, admit: Callable[[Member], bool]) -> Any:
    """The part's members that `admit` lets be read; damage ends the stream with a problem
    instead of an exception."""
    count = 0
    try:
        for member in read_members(body, admit=admit):
            count += 1
            yield member
    except _DAMAGE as exc:
        problems.add(f"{part}: damaged after {count} member(s): {exc or type(exc).__name__}")


def _admitted(
    problems: _Problems,
    head: Member,
    *,
    part: str,
    expected: dict[str, IndexEntry],
    seen: set[str],
) -> bool:
    """Whether a member's header is the index's, before its data is read: a member that is
    not a message of the index, is there twice or has another size is a problem, unread."""
    message_id = StoreLayout.message_id(head.name)
    if not head.is_file or message_id is None:
        problems.add(f"{part}: unexpected member {head.name!r} (not a message file)")
        return False
    entry = expected.get(message_id)
    if entry is None:
        problems.add(f"message {message_id}: in {part} but not in the index")
        return False
    if message_id in seen:
        problems.add(f"message {message_id}: appears more than once (again in {part})")
        return False
    if entry.part != part:
        problems.add(f"message {message_id}: found in {part}, the index says {entry.part}")
    if head.size != entry.size:
        seen.add(message_id)
        problems.add(f"message {message_id}: {head.size} bytes in {part}, index {entry.size}")
        return False  # its SHA-256 cannot be the index's: not read
    return True


def _check_digest(
    member: Member, part: str, expected: dict[str, IndexEntry], seen: set[str], problems: _Problems
) -> None:
    """A member read whole (its header admitted): seen, and its SHA-256 the index's."""
    entry = expected[StoreLayout.message_id(member.name) or ""]
    seen.add(entry.id)
    if member.sha256 != entry.sha256:
        problems.add(
            f"message {entry.id}: SHA-256 in {part} is {member.sha256}, "
            f"the index says {entry.sha256}"
        )


@dataclass(frozen=True)
class _SourceCheck:
    listed: int  # messages the source lists
    matched: int  # of those, in the export
    pending: int  # of those, not in the export (allowed only before the cut-over)


def _check_source(
    platform: Platform,
    account_id: str,
    store: Store,
    infos: Iterable[MessageInfo],
    expected: dict[str, IndexEntry],
    problems: _Problems,
    complete: bool,
) -> _SourceCheck:
    seen: set[str] = set()
    matched = pending = 0
    for info in infos:
        if info.id in seen:
            problems.add(f"message {info.id}: listed twice by the source")
            continue
        seen.add(info.id)
        entry = expected.get(info.id)
        if entry is None:
            pending += 1
            if complete:
                problems.add(f"message {info.id}: in the source but not in the export")
            continue
        matched += 1
        if info.size != entry.size:
            problems.add(f"message {info.id}: source has {info.size} bytes, export {entry.size}")
        digest = info.sha256.lower() if info.sha256 else None
        if digest is None:  # the listing gives no digest: hash the message itself
            try:
                digest = source_digest(platform, account_id, store, info.id)
            except NotFound:  # expired since the listing: the export keeps it, counted
                matched -= 1
                continue
        if digest != entry.sha256:
            problems.add(
                f"message {info.id}: source SHA-256 is {digest}, the export has {entry.sha256}"
                " (changed under the same id)"
            )
    return _SourceCheck(len(seen), matched, pending)


def source_digest(platform: Platform, account_id: str, store: Store, message_id: str) -> str:
    """Hex SHA-256 of one source message, fetched (for listings that give no digest)."""
    return hashlib.sha256(platform.fetch_message(account_id, store, message_id)).hexdigest()
