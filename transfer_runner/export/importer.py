"""Import an export from S3 into the new account, message by message, idempotently.

What is imported: the exported messages the direct account still holds and the new account
lacks. Mail that expired from the direct account is not brought back; mail that arrived in the
new account directly is never touched. Only the parts holding such a message are read, and
each member is checked against the index (id, part, size, SHA-256) before the platform sees
it, so a damaged export never lands in the new account. Afterwards the target is checked by
id set, never by count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError

from transfer_runner.errors import ExportError
from transfer_runner.export.exporter import Progress
from transfer_runner.export.index import ExportIndex, IndexEntry, read_index
from transfer_runner.export.layout import StoreLayout, store_layout
from transfer_runner.export.objects import open_object_if_changed
from transfer_runner.export.packing import DAMAGE, Member, read_members
from transfer_runner.export.source import iter_messages, listed
from transfer_runner.platforms.base import MessageInfo, Platform, Store
from transfer_runner.s3_client import S3Settings
from transfer_runner.testpoints import reached as testpoint

__all__ = ["ImportResult", "VerifiedExport", "import_store", "inspect_import", "index_sha256"]

_DAMAGE: tuple[type[BaseException], ...] = (*DAMAGE, FlexibleChecksumError)


@dataclass(frozen=True)
class ImportResult:
    """How many messages of the export were imported now and how many were already there."""

    imported: int
    skipped: int
    messages: int
    index_sha256: str = ""  # the export's index the import read


@dataclass(frozen=True)
class VerifiedExport:
    """What a verification proved of one store's export: the index by its SHA-256 and each
    part by the ETag it had when read back intact. An import given one reads exactly that
    export: an index or part replaced in S3 since (by a writer to the bucket) is refused."""

    index_sha256: str
    parts: Mapping[str, str]  # part name -> ETag

    @classmethod
    def from_facts(cls, facts: Mapping[str, object]) -> VerifiedExport | None:
        """From a verification's recorded facts (`modules.verification.verify_facts`)."""
        sha256, parts = facts.get("index_sha256"), facts.get("parts")
        if not isinstance(sha256, str) or not isinstance(parts, dict):
            return None
        return cls(sha256, {str(name): str(etag) for name, etag in parts.items()})


def inspect_import(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    to_account: str,
    store: Store,
    from_account: str,
    verified: VerifiedExport | None = None,
) -> int:
    """How many exported messages the source still holds and the target lacks (of the
    `verified` export, when given). Writes nothing."""
    layout = store_layout(settings, transfer_name, store)
    index = _require_index(s3, layout, verified)
    return len(_lacking(platform, index, from_account, to_account, store))


def index_sha256(s3: Any, settings: S3Settings, transfer_name: str, store: Store) -> str | None:
    """The SHA-256 of the store's index as S3 holds it now (None: not exported)."""
    index = read_index(s3, store_layout(settings, transfer_name, store))
    return index.sha256 if index is not None else None


def _lacking(
    platform: Platform,
    index: ExportIndex,
    from_account: str,
    to_account: str,
    store: Store,
    source: Sequence[MessageInfo] | None = None,
) -> set[str]:
    """Ids to import: in the export, still held by the source (mail that expired there is not
    brought back), not in the target (mail that arrived there directly is never touched)."""
    held = {info.id for info in listed(platform, from_account, store, source)}
    present = _present(platform, to_account, store)
    return {e.id for e in index.entries if e.id in held and e.id not in present}


def import_store(
    platform: Platform,
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    to_account: str,
    store: Store,
    idempotency_prefix: str,
    progress: Progress | None = None,
    *,
    from_account: str,
    retry_suffix: str = "",
    source: Sequence[MessageInfo] | None = None,
    verified: VerifiedExport | None = None,
) -> ImportResult:
    """Import into `to_account` what it lacks of the export of `store` that `from_account`
    still holds (as `source`, a listing taken already, shows it, if given); `ExportError` if
    anything is off. Checked by id set afterwards.

    Each platform write carries the key `<idempotency_prefix>:<message id>`. A message the
    target held once and lost since (its retention expired the imported copy) is imported
    again under `<idempotency_prefix>:<message id>:<retry_suffix>`: the first key would only
    replay. Import is by id, so the platform never holds it twice.

    With `verified`, only that export is read: `ExportError` before anything is imported if
    the index is not the one verified, and before a part is read if it is not the object that
    was read back intact.
    """
    layout = store_layout(settings, transfer_name, store)
    index = _require_index(s3, layout, verified)
    expected = _expected(index)
    lacking = _lacking(platform, index, from_account, to_account, store, source)
    job = _Import(platform, to_account, store, idempotency_prefix, progress, expected, lacking)
    job.pinned = verified
    if not lacking:  # nothing to import: the listing just taken is the id-set check
        return ImportResult(0, index.messages, index.messages, index.sha256)
    _import_parts(job, s3, layout, index)
    still = lacking - _present(platform, to_account, store)
    if still and retry_suffix:
        job.prefix, job.suffix, job.wanted = idempotency_prefix, f":{retry_suffix}", still
        _import_parts(job, s3, layout, index)
        still -= _present(platform, to_account, store)
    if still:
        first = sorted(still)[0]
        raise ExportError(
            f"after import {to_account}'s {store} still lacks {len(still)} exported "
            f"message(s) that {from_account} holds, first {first}"
        )
    # Counted from the target's listing, not from True answers (a replayed key says True too)
    imported = len(lacking - job.already)
    return ImportResult(imported, index.messages - imported, index.messages, index.sha256)


def _import_parts(job: _Import, s3: Any, layout: StoreLayout, index: ExportIndex) -> None:
    """Read the parts holding a wanted message (a delta's parts, not the whole export)."""
    needed = {job.expected[i].part for i in job.wanted if i in job.expected}
    job.seen = set()
    for number, part in enumerate(index.parts, start=1):
        if part in needed:
            job.import_part(s3, layout, part)
        testpoint(f"import-after-part-{number}")
    unseen = sorted(i for i in job.wanted if i not in job.seen)
    if unseen:
        raise ExportError(
            f"{len(unseen)} message(s) of the index are in no part, first {unseen[0]}"
        )


def _require_index(
    s3: Any, layout: StoreLayout, verified: VerifiedExport | None = None
) -> ExportIndex:
    where = f"s3://{layout.bucket}/{layout.index_key}"
    index = read_index(s3, layout)
    if index is None:
        raise ExportError(f"no export at {where}: export the store first")
    if verified is not None and index.sha256 != verified.index_sha256:
        raise ExportError(
            f"{where} is not the index that was verified (SHA-256 {index.sha256[:16]}..., "
            f"verified {verified.index_sha256[:16]}...): the export changed in S3 since its "
            "verification; nothing was imported from it. Find out who wrote to the bucket, "
            "then apply again to verify the export anew"
        )
    return index


def _expected(index: ExportIndex) -> dict[str, IndexEntry]:
    expected: dict[str, IndexEntry] = {}
    for entry in index.entries:
        if entry.id in expected:
            raise ExportError(f"message {entry.id} is listed twice in the index")
        expected[entry.id] = entry
    return expected


def _present(platform: Platform, account_id: str, store: Store) -> set[str]:
    return {info.id for info in iter_messages(platform, account_id, store)}


@dataclass
class _Import:
    platform: Platform
    to_account: str
    store: Store
    prefix: str
    progress: Progress | None
    expected: dict[str, IndexEntry]
    wanted: set[str]
    suffix: str = ""
    already: set[str] = field(default_factory=set)  # the platform said: already there
    imported: int = 0
    skipped: int = 0
    nbytes: int = 0
    seen: set[str] = field(default_factory=set)
    pinned: VerifiedExport | None = None

    def import_part(self, s3: Any, layout: StoreLayout, part: str) -> None:
        key = layout.part_key(part)
        read = open_object_if_changed(s3, layout.bucket, key, None)
        if read is None or read.body is None:
            raise ExportError(f"part s3://{layout.bucket}/{key} is missing: verify the export")
        body = read.body
        if self.pinned is not None and self.pinned.parts.get(part) != read.etag:
            body.close()
            raise ExportError(
                f"part s3://{layout.bucket}/{key} is not the object that was verified (ETag "
                f"{read.etag}, verified {self.pinned.parts.get(part) or 'none'}): the export "
                "changed in S3 since its verification; apply again to verify it anew"
            )
        try:
            admit = partial(self._admitted, part=part)
            for member in read_members(body, keep_data=True, admit=admit):
                self._import(self._checked(member, part), member)
        except _DAMAGE as exc:
            raise ExportError(f"part s3://{layout.bucket}/{key} is damaged: {exc}") from exc
        except (BotoCoreError, ClientError, OSError) as exc:
            raise ExportError(f"S3 read of s3://{layout.bucket}/{key} failed: {exc}") from exc
        finally:
            body.close()

    def _admitted(self, head: Member, part: str) -> bool:
        """A member's header checked against the index before any of its data is read: a
        member the index does not list, or whose size is not the index's, is refused unread."""
        message_id = StoreLayout.message_id(head.name)
        entry = self.expected.get(message_id) if message_id and head.is_file else None
        if entry is None or message_id is None:
            raise ExportError(f"{part}: member {head.name!r} is not a message of the index")
        if message_id in self.seen:
            raise ExportError(f"{part}: message {message_id} appears more than once")
        if entry.part != part or entry.size != head.size:
            raise ExportError(
                f"{part}: message {message_id} does not match the index ({head.size:,} bytes, "
                f"index {entry.size:,} in {entry.part}); refused before reading it"
            )
        return True

    def _checked(self, member: Member, part: str) -> str:
        """The message id of a member read (admitted before), its SHA-256 the index's."""
        message_id = StoreLayout.message_id(member.name)
        entry = self.expected.get(message_id) if message_id else None
        if entry is None or message_id is None or entry.sha256 != member.sha256:
            raise ExportError(
                f"{part}: message {message_id} does not match the index (SHA-256 "
                f"{member.sha256}, index {entry.sha256 if entry else 'none'} in {part})"
            )
        self.seen.add(message_id)
        return message_id

    def _import(self, message_id: str, member: Member) -> None:
        assert member.data is not None  # read_members(keep_data=True)
        if message_id not in self.wanted:
            self.skipped += 1
        elif self.platform.import_message(
            self.to_account,
            self.store,
            message_id,
            member.data,
            idempotency_key=f"{self.prefix}:{message_id}{self.suffix}",
        ):
            self.imported += 1
        else:
            self.already.add(message_id)
            self.skipped += 1
        self.nbytes += member.size
        if self.progress is not None:
            self.progress(self.imported + self.skipped, self.nbytes)
