"""Reading the external world for `tests.invariants`: the sandbox file and the S3 export.

The sandbox is read through `dump_sandbox`, its message API and, for the order of write
calls, its audit table (opened read-only). S3 is read with plain boto3 calls; parts are
opened with `tarfile` (and `zstandard` for `.tar.zst`), independently of the runner's reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
import tarfile
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = [
    "AuditRow",
    "Snapshot",
    "Export",
    "read_snapshot",
    "read_export",
    "read_receipt",
    "store_messages",
    "attributable",
    "s3_location",
]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MEMBER_SUFFIX = ".eml"


class AuditRow(NamedTuple):
    """One write call the sandbox received, in the order it received them."""

    op: str
    key: str | None
    account: str | None
    replayed: bool
    error: str | None
    at: datetime


@dataclass(frozen=True)
class Snapshot:
    """One reading of the sandbox: its dump, its audit rows, and the baseline to ignore."""

    dump: dict[str, Any]
    audit: tuple[AuditRow, ...]
    baseline: Mapping[str, Any] = field(default_factory=dict)

    def account(self, account_id: str) -> dict[str, Any] | None:
        """The dumped account, or None."""
        return next((a for a in self.dump["accounts"] if a["id"] == account_id), None)

    def new_accounts(self) -> list[dict[str, Any]]:
        """Accounts that are not in the baseline."""
        old = {a["id"] for a in self.baseline.get("accounts", ())}
        return [a for a in self.dump["accounts"] if a["id"] not in old]

    def domain_holders(self) -> dict[str, list[str]]:
        """Domain -> the ids of every account holding it (more than one is a violation)."""
        holders: dict[str, list[str]] = {}
        for account in self.dump["accounts"]:
            for domain in account["domains"]:
                holders.setdefault(domain, []).append(account["id"])
        return holders

    def new_payments(self, table: str) -> list[dict[str, Any]]:
        """Charges or credits (`table`) that are not in the baseline."""
        old = {p["id"] for p in self.baseline.get(table, ())}
        return [p for p in self.dump[table] if p["id"] not in old]

    def new_comments(self, ticket_id: str) -> list[str]:
        """The comments of a ticket after those it had in the baseline."""

        def comments(dump: Mapping[str, Any]) -> list[str]:
            found = (t for t in dump.get("tickets", ()) if t["id"] == ticket_id)
            return list(next(found, {}).get("comments", []))

        return comments(self.dump)[len(comments(self.baseline)) :]

    def committed_writes(
        self, ops: Iterable[str], accounts: Iterable[str]
    ) -> list[tuple[str, datetime]]:
        """(op, time) of the writes of `ops` on `accounts` that took effect, oldest first.

        Replays (a repeated idempotency key) and refused writes changed nothing: left out.
        """
        ops, accounts = set(ops), set(accounts)
        return [
            (row.op, row.at)
            for row in self.audit
            if row.op in ops and row.account in accounts and not row.replayed and row.error is None
        ]


def read_snapshot(sandbox: Path, baseline: Mapping[str, Any] | None) -> Snapshot:
    """Dump the sandbox and read its audit table (read-only) in write order."""
    dump = dump_sandbox(sandbox)
    uri = f"{sandbox.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute(
            "SELECT op, idempotency_key, account, replayed, error, at FROM audit ORDER BY seq"
        ).fetchall()
    audit = tuple(
        AuditRow(op, key, account, bool(replayed), error, datetime.fromisoformat(at))
        for op, key, account, replayed, error, at in rows
    )
    return Snapshot(dump, audit, baseline or {})


def store_messages(platform: SandboxPlatform, account_id: str, store: str) -> dict[str, str]:
    """Message id -> SHA-256 of the bytes the platform serves, for every message of a store."""
    if platform.get_account(account_id) is None:
        return {}
    out: dict[str, str] = {}
    cursor: str | None = None
    while True:
        page = platform.list_messages(account_id, store, cursor, 1000)  # type: ignore[arg-type]
        for info in page.messages:
            raw = platform.fetch_message(account_id, store, info.id)  # type: ignore[arg-type]
            out[info.id] = hashlib.sha256(raw).hexdigest()
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def attributable(payment: Mapping[str, Any], key: str, transfer: str) -> bool:
    """Whether a charge or credit belongs to a transfer: its key, or its reason names it."""
    got = payment.get("idempotency_key") or ""
    named = re.search(rf"(?<![\w.-]){re.escape(transfer)}(?![\w-])", payment.get("reason") or "")
    return got == key or got.startswith(key + ":") or named is not None


def s3_location(export_to: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    bucket, _, prefix = export_to.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def _base(export_to: str, transfer: str) -> tuple[str, str]:
    bucket, prefix = s3_location(export_to)
    return bucket, (f"{prefix}/{transfer}/" if prefix else f"{transfer}/")


@dataclass
class Export:
    """One store's export as found on S3.

    `index` is None when there is no `index.jsonl`; `members` maps each message id found in
    a part named by the index to its (part, SHA-256) copies; `problems` are structural
    findings (a part missing or unreadable, a stray part object, a bad member).
    """

    index: list[dict[str, Any]] | None = None
    index_sha256: str | None = None
    index_modified: datetime | None = None
    members: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_export(s3: Any, export_to: str, transfer: str, store: str) -> Export:
    """Read `store`'s export of `transfer`: its index and every part the index names."""
    bucket, base = _base(export_to, transfer)
    base += f"{store}/"
    keys = _list(s3, bucket, base)
    export = Export()
    if base + "index.jsonl" not in keys:
        return export
    body, export.index_modified = _get(s3, bucket, base + "index.jsonl")
    export.index_sha256 = hashlib.sha256(body).hexdigest()
    try:
        export.index = [json.loads(line) for line in body.splitlines() if line.strip()]
    except ValueError as exc:
        export.index = []
        export.problems.append(f"index.jsonl is not JSON lines: {exc}")
        return export
    parts = list(dict.fromkeys(str(e.get("part")) for e in export.index))
    for part in parts:
        if base + part not in keys:
            export.problems.append(f"part {part} named by the index is not on S3")
            continue
        _read_part(export, part, _get(s3, bucket, base + part)[0])
    stray = sorted(k for k in keys if _is_part(k[len(base) :]) and k[len(base) :] not in parts)
    if stray:
        export.problems.append(f"part objects the index does not name: {stray}")
    return export


def read_receipt(s3: Any, export_to: str, transfer: str) -> dict[str, Any] | None:
    """The transfer's `receipt.json` as a dict, or None if there is none (or it is not JSON)."""
    bucket, base = _base(export_to, transfer)
    if base + "receipt.json" not in _list(s3, bucket, base + "receipt.json"):
        return None
    try:
        doc = json.loads(_get(s3, bucket, base + "receipt.json")[0])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _read_part(export: Export, part: str, body: bytes) -> None:
    try:
        for name, digest in _members(body):
            if not name.endswith(_MEMBER_SUFFIX) or "/" in name:
                export.problems.append(f"{part}: unexpected member {name!r}")
                continue
            export.members.setdefault(name[: -len(_MEMBER_SUFFIX)], []).append((part, digest))
    except (tarfile.TarError, EOFError, OSError, ImportError) as exc:
        export.problems.append(f"{part} cannot be read as a tar: {exc}")


def _members(body: bytes) -> list[tuple[str, str]]:
    if body.startswith(_ZSTD_MAGIC):
        import zstandard  # only when a .tar.zst part is met

        body = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read()
    out = []
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            data = handle.read() if handle is not None else b""
            out.append((info.name, hashlib.sha256(data).hexdigest()))
    return out


def _is_part(name: str) -> bool:
    stem = name.removeprefix("part-")
    return stem != name and stem.split(".", 1)[0].isdigit() and "/" not in stem


def _list(s3: Any, bucket: str, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", ())}


def _get(s3: Any, bucket: str, key: str) -> tuple[bytes, datetime | None]:
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:  # listed a moment ago: only a concurrent delete gets here
        raise AssertionError(f"s3://{bucket}/{key} vanished while being read: {exc}") from exc
    return got["Body"].read(), got.get("LastModified")
