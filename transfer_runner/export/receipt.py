"""`PREFIX/<name>/receipt.json`: what an auditor or the customer is handed once exports verify.

Per store: messages, bytes, parts, stored bytes, the index key and its SHA-256 (which
identifies the export exactly), its passes, how many exported messages have since expired from
the source (they stay in the export), when the index was written and when it was verified, and
`verifications`: every verification of the store so far (time, `complete` or not, index
SHA-256, messages), oldest first, so an auditor sees that the domains moved after a verified
pass and the account was cancelled after a complete one. Then totals, the runner's version,
the git commit of the manifests, and the authorization: both tickets and, when a ticket
needed review, who approved it (`reviewed_by`). Written after the stores verify; rewritten only when
something in it other than `written_at` changes. An `abort` of the transfer adds an entry to
`aborts` (who, why, when, which manifest): the export stays, and says it no longer backs a transfer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from transfer_runner import __version__
from transfer_runner.errors import ExportError
from transfer_runner.export.layout import check_transfer_name, receipt_key, store_layout
from transfer_runner.export.objects import Listing, list_objects, put_bytes, read_bytes, s3_errors
from transfer_runner.export.status import ExportStatus, store_status
from transfer_runner.s3_client import S3Settings
from transfer_runner.utc import iso_z

__all__ = ["RECEIPT_VERSION", "Receipt", "note_abort", "read_receipt", "write_receipt"]

RECEIPT_VERSION = 1
_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Receipt:
    """The receipt as stored: its key, SHA-256, document, and whether this call wrote it."""

    key: str
    sha256: str
    document: dict[str, Any]
    written: bool


def write_receipt(
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    stores: Mapping[str, Mapping[str, Any]],
    git_commit: str | None,
    *,
    authorization: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Receipt:
    """Write the receipt of the verified exports in `stores` (store -> verify facts).

    Each value needs `index_sha256` (as verified); `verified_at` is optional. The export on S3
    must still be complete and carry that index, else `ExportError`: a receipt never vouches
    for data that changed after it was verified.
    """
    check_transfer_name(transfer_name)
    key = receipt_key(settings, transfer_name)
    doc: dict[str, Any] = {
        "receipt": RECEIPT_VERSION,
        "transfer": transfer_name,
        "destination": f"s3://{settings.bucket}/{key[: -len('receipt.json')]}",
        "runner_version": __version__,
        "git_commit": git_commit,
        "authorization": dict(authorization or {}),
        "stores": {s: _store_doc(s3, settings, transfer_name, s, f) for s, f in stores.items()},
    }
    doc["totals"] = {
        name: sum(int(entry[name]) for entry in doc["stores"].values())
        for name in ("messages", "bytes", "compressed_bytes")
    }
    existing = read_receipt(s3, settings, transfer_name)
    if existing is not None:
        _carry_history(existing.document, doc)
    if existing is not None and _same(existing.document, doc):
        return existing
    doc["written_at"] = iso_z(now or datetime.now(UTC))
    body = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    put_bytes(s3, settings, key, body, _CONTENT_TYPE)
    return Receipt(key, hashlib.sha256(body).hexdigest(), doc, written=True)


def read_receipt(s3: Any, settings: S3Settings, transfer_name: str) -> Receipt | None:
    """The stored receipt, or None; `ExportError` if it is not a JSON object."""
    key = receipt_key(settings, transfer_name)
    raw = read_bytes(s3, settings.bucket, key)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ExportError(f"s3://{settings.bucket}/{key} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ExportError(f"s3://{settings.bucket}/{key} is not a JSON object")
    return Receipt(key, hashlib.sha256(raw).hexdigest(), doc, written=False)


def note_abort(
    s3: Any,
    settings: S3Settings,
    transfer_name: str,
    entry: Mapping[str, str],
    *,
    write: bool = True,
) -> str | None:
    """Add `entry` (`aborted_at`, `by`, `reason`, `manifest_sha256`) to the stored receipt's
    `aborts`, once per manifest version. Returns the receipt's key when it lacked the note
    (and writes it when `write`); None when it has it or the export never got a receipt."""
    existing = read_receipt(s3, settings, transfer_name)
    if existing is None:
        return None
    doc = dict(existing.document)
    aborts = [a for a in doc.get("aborts") or [] if isinstance(a, dict)]
    if any(a.get("manifest_sha256") == entry.get("manifest_sha256") for a in aborts):
        return None
    if write:
        doc["aborts"] = [*aborts, dict(entry)]
        body = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        put_bytes(s3, settings, existing.key, body, _CONTENT_TYPE)
    return existing.key


def _carry_history(old: Mapping[str, Any], new: dict[str, Any]) -> None:
    """Prepend the verifications the stored receipt lists to the new one's, without repeats,
    and keep its aborts."""
    if old.get("aborts"):
        new["aborts"] = list(old["aborts"])
    for store, entry in new["stores"].items():
        before = ((old.get("stores") or {}).get(store) or {}).get("verifications") or []
        mine = entry.get("verifications") or []
        merged = [v for v in before if isinstance(v, dict) and v not in mine] + mine
        if merged:
            entry["verifications"] = sorted(merged, key=lambda v: str(v.get("verified_at", "")))


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return {k: v for k, v in old.items() if k != "written_at"} == dict(new)


def _store_doc(
    s3: Any, settings: S3Settings, transfer_name: str, store: str, facts: Mapping[str, Any]
) -> dict[str, Any]:
    layout = store_layout(settings, transfer_name, store)
    listing = list_objects(s3, layout.bucket, layout.base)
    status = store_status(s3, settings, transfer_name, store, listing)
    wanted = facts.get("index_sha256")
    if not status.complete:
        raise ExportError(f"no receipt: the {store} export is not complete on S3")
    if not wanted or wanted != status.index_sha256:
        raise ExportError(
            f"no receipt: the {store} index on S3 has SHA-256 {status.index_sha256}, "
            f"the verified one {wanted}"
        )
    doc = {
        "messages": status.messages,
        "bytes": status.bytes,
        "parts": len(status.parts),
        "compressed_bytes": status.compressed_bytes,
        "index_key": status.index_key,
        "index_sha256": status.index_sha256,
        "exported_at": _written_at(s3, settings, status, listing),
        "verified": True,
        "passes": status.passes,
        "expired": int(facts.get("expired") or 0),
    }
    if facts.get("verified_at"):
        doc["verified_at"] = str(facts["verified_at"])
        doc["verifications"] = [
            {
                "verified_at": str(facts["verified_at"]),
                "complete": bool(facts.get("complete", True)),
                "index_sha256": status.index_sha256,
                "messages": status.messages,
            }
        ]
    return doc


def _written_at(s3: Any, settings: S3Settings, status: ExportStatus, listing: Listing) -> str:
    """When the index was written: as the listing shows it, else as S3 answers a HEAD."""
    if status.index_key in listing.modified:
        return iso_z(listing.modified[status.index_key])
    with s3_errors(f"head of s3://{settings.bucket}/{status.index_key}"):
        head = s3.head_object(Bucket=settings.bucket, Key=status.index_key)
    return iso_z(head["LastModified"])
