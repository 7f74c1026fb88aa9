"""Verify an export: read every part back from S3 and compare with the index and the source.

This is the gate of invariant I2. It trusts nothing but its own SHA-256 of every member: not
the S3 server, not the index alone. Findings are collected (not raised) so that one run shows
every problem; S3 or platform failures still raise, since they say nothing about the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from transfer_runner.crash import crash_point
from transfer_runner.errors import ExportError
from transfer_runner.export.exporter import Progress
from transfer_runner.export.index import ExportIndex, IndexEntry, read_index
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import open_object
from transfer_runner.export.packing import DAMAGE, Member, read_members
from transfer_runner.export.s3 import S3Settings
from transfer_runner.export.source import iter_messages
from transfer_runner.platforms.base import Platform, Store

__all__ = ["MAX_PROBLEMS", "VerifyResult", "verify_store"]

MAX_PROBLEMS = 1000
_DAMAGE = (*DAMAGE, FlexibleChecksumError)


@dataclass(frozen=True)
class VerifyResult:
    """`ok` when every message is in S3 exactly as in the index and in the source."""

    ok: bool
    messages: int
    bytes: int
    problems: tuple[str, ...]
    index_sha256: str | None


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
) -> VerifyResult:
    """Check the export of `store` against S3 read-back and the source account. Writes nothing.

    Holds the index entries in memory (never message bodies); reads parts as streams.
    """
    layout = store_layout(settings, transfer_name, store)
    where = f"s3://{layout.bucket}/{layout.index_key}"
    try:
        index = read_index(s3, layout)
    except ExportError as exc:
        return VerifyResult(False, 0, 0, (f"the index is unreadable: {exc}",), None)
    if index is None:
        return VerifyResult(False, 0, 0, (f"no index at {where}: not exported",), None)
    problems = _Problems()
    expected = _expected(index, problems)
    seen = _check_parts(s3, layout, index, expected, problems, progress)
    for message_id, entry in expected.items():
        if message_id not in seen:
            problems.add(f"message {message_id}: in the index ({entry.part}) but not in S3")
    _check_source(platform, account_id, store, expected, problems)
    return VerifyResult(not problems, index.messages, index.bytes, problems.result(), index.sha256)


def _expected(index: ExportIndex, problems: _Problems) -> dict[str, IndexEntry]:
    expected: dict[str, IndexEntry] = {}
    for entry in index.entries:
        if entry.id in expected:
            problems.add(f"message {entry.id}: listed twice in the index")
        else:
            expected[entry.id] = entry
    return expected


def _check_parts(
    s3: Any,
    layout: StoreLayout,
    index: ExportIndex,
    expected: dict[str, IndexEntry],
    problems: _Problems,
    progress: Progress | None,
) -> set[str]:
    seen: set[str] = set()
    done = [0, 0]
    for number, part in enumerate(index.parts, start=1):
        key = layout.part_key(part)
        body = open_object(s3, layout.bucket, key)
        if body is None:
            problems.add(f"{part}: missing from S3 (s3://{layout.bucket}/{key})")
            continue
        try:
            for member in _members(body, part, problems):
                _check_member(member, part, expected, seen, problems)
                done[0], done[1] = done[0] + 1, done[1] + member.size
                if progress is not None:
                    progress(done[0], done[1])
        except (BotoCoreError, ClientError, OSError) as exc:
            raise ExportError(f"S3 read of s3://{layout.bucket}/{key} failed: {exc}") from exc
        finally:
            body.close()
        crash_point(f"verify-after-part-{number}")
    return seen


def _members(body: Any, part: str, problems: _Problems) -> Any:
    """The part's members; damage ends the stream with a problem instead of an exception."""
    count = 0
    try:
        for member in read_members(body):
            count += 1
            yield member
    except _DAMAGE as exc:
        problems.add(f"{part}: damaged after {count} member(s): {exc or type(exc).__name__}")


def _check_member(
    member: Member,
    part: str,
    expected: dict[str, IndexEntry],
    seen: set[str],
    problems: _Problems,
) -> None:
    message_id = StoreLayout.message_id(member.name)
    if not member.is_file or message_id is None:
        problems.add(f"{part}: unexpected member {member.name!r} (not a message file)")
        return
    entry = expected.get(message_id)
    if entry is None:
        problems.add(f"message {message_id}: in {part} but not in the index")
        return
    if message_id in seen:
        problems.add(f"message {message_id}: appears more than once (again in {part})")
        return
    seen.add(message_id)
    if entry.part != part:
        problems.add(f"message {message_id}: found in {part}, the index says {entry.part}")
    if member.size != entry.size:
        problems.add(f"message {message_id}: {member.size} bytes in {part}, index {entry.size}")
    if member.sha256 != entry.sha256:
        problems.add(
            f"message {message_id}: SHA-256 in {part} is {member.sha256}, "
            f"the index says {entry.sha256}"
        )


def _check_source(
    platform: Platform,
    account_id: str,
    store: Store,
    expected: dict[str, IndexEntry],
    problems: _Problems,
) -> None:
    listed: set[str] = set()
    for info in iter_messages(platform, account_id, store):
        if info.id in listed:
            problems.add(f"message {info.id}: listed twice by the source")
            continue
        listed.add(info.id)
        entry = expected.get(info.id)
        if entry is None:
            problems.add(f"message {info.id}: in the source but not in the export")
            continue
        if info.size != entry.size:
            problems.add(f"message {info.id}: source has {info.size} bytes, export {entry.size}")
        digest = info.sha256.lower() if info.sha256 else None
        if digest is None:  # the listing gives no digest: hash the message itself
            digest = _source_digest(platform, account_id, store, info.id)
        if digest != entry.sha256:
            problems.add(
                f"message {info.id}: source SHA-256 is {digest}, the export has {entry.sha256}"
            )
    for message_id in expected:
        if message_id not in listed:
            problems.add(f"message {message_id}: in the export but no longer in the source")
    if len(listed) != len(expected):
        problems.add(f"the source has {len(listed)} messages, the export {len(expected)}")


def _source_digest(platform: Platform, account_id: str, store: Store, message_id: str) -> str:
    return hashlib.sha256(platform.fetch_message(account_id, store, message_id)).hexdigest()
