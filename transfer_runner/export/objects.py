"""The few S3 object operations exports need, with errors turned into `ExportError`.

Every object is written with a SHA-256 S3 checksum and the configured server-side encryption.
Small objects go up in one PutObject; large ones in a multipart upload of `MULTIPART_CHUNK`
parts sent one after another, each with its own checksum, aborted on failure. One chunk is in
memory at a time, whatever the object's size: boto3's transfer manager reads chunks of a file
object into memory ahead of the requests and keeps them, so its peak grew with the object
(`index.jsonl` grows with the mailbox). Parts of an export already go up in parallel.

Retries: botocore's `standard` mode (see `s3.client_config`) retries throttling (503
SlowDown), 5xx answers and broken connections. It does not retry a 409
ConditionalRequestConflict (a concurrent write to the same key on the server's side), so
`upload` does, a bounded number of times with jittered exponential backoff, and keeps the
last error. Writes are whole-object puts of deterministic bytes, so repeating one after a lost
acknowledgement is harmless.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from transfer_runner.errors import ExportError
from transfer_runner.retries import RetryPolicy, retry
from transfer_runner.s3_client import MiB, S3Settings

log = logging.getLogger(__name__)

__all__ = [
    "MULTIPART_THRESHOLD",
    "MULTIPART_CHUNK",
    "s3_errors",
    "list_objects",
    "open_object",
    "ObjectRead",
    "open_object_if_changed",
    "Listing",
    "object_sha256",
    "upload",
    "delete_objects",
    "abort_multipart_uploads",
    "put_bytes",
    "CONFLICT_POLICY",
]

MULTIPART_THRESHOLD = 8 * MiB
MULTIPART_CHUNK = 8 * MiB
_MISSING = ("NoSuchKey", "404", "NotFound")
_CONFLICT_CODES = ("ConditionalRequestConflict", "OperationAborted")


CONFLICT_POLICY = RetryPolicy()


def is_conflict(exc: BaseException) -> bool:
    """True for a 409 ConditionalRequestConflict (or OperationAborted) from S3."""
    if isinstance(exc, S3UploadFailedError):
        return any(code in str(exc) for code in _CONFLICT_CODES)
    if not isinstance(exc, ClientError):
        return False
    return exc.response.get("Error", {}).get("Code") in _CONFLICT_CODES


def retry_conflicts(action: Callable[[], Any], policy: RetryPolicy | None = None) -> Any:
    """Run `action`, again after a 409 conflict, at most `policy.attempts` times in all."""
    return retry(action, policy or CONFLICT_POLICY, is_conflict)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        return f"{code}: {error.get('Message') or exc}"
    return str(exc) or type(exc).__name__


@contextmanager
def s3_errors(action: str) -> Iterator[None]:
    """Turn boto3/botocore failures of `action` into a clean `ExportError`."""
    try:
        yield
    except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
        raise ExportError(f"S3 {action} failed: {_describe(exc)}") from exc


class Listing(dict[str, int]):
    """Key -> size of every object under a prefix as one listing saw them, and (`etags`) each
    one's ETag: a changed object has a new ETag, so what was read or verified under an ETag
    need not be read again while a listing still shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.etags: dict[str, str] = {}
        self.modified: dict[str, datetime] = {}  # LastModified, to the second (as HEAD gives)


def list_objects(s3: Any, bucket: str, prefix: str) -> Listing:
    """Every object under `prefix`, with sizes and ETags (paginated, read-only)."""
    found = Listing()
    with s3_errors(f"list s3://{bucket}/{prefix}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                found[obj["Key"]] = int(obj["Size"])
                found.etags[obj["Key"]] = str(obj.get("ETag", "")).strip('"')
                if "LastModified" in obj:
                    found.modified[obj["Key"]] = obj["LastModified"].replace(microsecond=0)
    return found


def open_object(s3: Any, bucket: str, key: str) -> Any | None:
    """The streaming body of an object, or None if it does not exist.

    `ChecksumMode` lets botocore check the stored checksum as the body is read, where S3 has
    a full-object one; our own SHA-256 of every message is the check that counts.
    """
    read = open_object_if_changed(s3, bucket, key, None)
    return None if read is None else read.body


@dataclass(frozen=True)
class ObjectRead:
    """An object read with a validator: its body, or None when it still has `etag`."""

    body: Any | None
    etag: str


def open_object_if_changed(s3: Any, bucket: str, key: str, etag: str | None) -> ObjectRead | None:
    """The object's body and ETag, or only its ETag when that is still `etag` (a conditional
    GET answered 304 Not Modified: nothing is sent); None if the object does not exist.

    A server that ignores `If-None-Match` sends the body: the caller reads it as if new.
    """
    extra = {"IfNoneMatch": f'"{etag}"'} if etag else {}
    log.debug("export: GET s3://%s/%s (if changed from %s)", bucket, key, etag or "-")
    try:
        response = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **extra)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if etag and (status == 304 or error.get("Code") in ("304", "NotModified")):
            return ObjectRead(None, etag)
        if error.get("Code") in _MISSING:
            return None
        raise ExportError(f"S3 read of s3://{bucket}/{key} failed: {_describe(exc)}") from exc
    except BotoCoreError as exc:
        raise ExportError(f"S3 read of s3://{bucket}/{key} failed: {_describe(exc)}") from exc
    return ObjectRead(response["Body"], str(response.get("ETag", "")).strip('"'))


def upload(
    s3: Any, settings: S3Settings, key: str, fileobj: IO[bytes], size: int, content_type: str
) -> str:
    """Write `size` bytes of `fileobj` (from its start) to `key`, checksummed and encrypted;
    the ETag S3 gave the object (empty if it gave none)."""
    extra = {"ChecksumAlgorithm": "SHA256", "ContentType": content_type, **settings.sse_args()}
    log.debug("export: PUT s3://%s/%s (%d bytes)", settings.bucket, key, size)
    if size < MULTIPART_THRESHOLD:
        # Bytes, not the spooled file: botocore would ask for fileno() and spill it to disk.
        fileobj.seek(0)
        body = fileobj.read()

        def once() -> dict[str, Any]:
            answer = s3.put_object(Bucket=settings.bucket, Key=key, Body=body, **extra)
            return cast(dict[str, Any], answer)

    else:

        def once() -> dict[str, Any]:
            return _multipart(s3, settings.bucket, key, fileobj, extra)

    with s3_errors(f"upload of s3://{settings.bucket}/{key}"):
        answer = retry_conflicts(once)
    return str((answer or {}).get("ETag", "")).strip('"')


def _multipart(
    s3: Any, bucket: str, key: str, fileobj: IO[bytes], extra: dict[str, str]
) -> dict[str, Any]:
    """All of `fileobj` as one multipart upload, a chunk at a time; aborted if anything fails."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    try:
        parts: list[dict[str, Any]] = []
        fileobj.seek(0)
        while chunk := fileobj.read(MULTIPART_CHUNK):
            number = len(parts) + 1
            answer = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ChecksumAlgorithm="SHA256",
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            if answer.get("ChecksumSHA256"):
                parts[-1]["ChecksumSHA256"] = answer["ChecksumSHA256"]
            del chunk
        completed = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return cast(dict[str, Any], completed)
    except BaseException:
        with suppress(ClientError, BotoCoreError):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def object_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """Hex SHA-256 of an object's bytes, streamed; None if it does not exist."""
    body = open_object(s3, bucket, key)
    if body is None:
        return None
    digest = hashlib.sha256()
    with s3_errors(f"read of s3://{bucket}/{key}"):
        try:
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                digest.update(chunk)
        finally:
            body.close()
    return digest.hexdigest()


# A receipt or a checkpoint is kilobytes (a checkpoint of a million messages, some 40 MiB);
# a bigger object under those names is not ours, and is refused before it fills memory.
MAX_SMALL_OBJECT = 64 * MiB


def read_bytes(s3: Any, bucket: str, key: str) -> bytes | None:
    """The whole of a small object (a receipt, a checkpoint), or None if there is none;
    ExportError past `MAX_SMALL_OBJECT` bytes, read no further."""
    body = open_object(s3, bucket, key)
    if body is None:
        return None
    with s3_errors(f"read of s3://{bucket}/{key}"):
        try:
            data = bytes(body.read(MAX_SMALL_OBJECT + 1))
        finally:
            body.close()
    if len(data) > MAX_SMALL_OBJECT:
        raise ExportError(
            f"s3://{bucket}/{key} is larger than {MAX_SMALL_OBJECT // MiB} MiB: not a receipt "
            "or checkpoint this runner wrote; refused unread"
        )
    return data


def put_bytes(s3: Any, settings: S3Settings, key: str, body: bytes, content_type: str) -> None:
    """Write a small object held in memory (journal records, receipts)."""
    extra = {"ChecksumAlgorithm": "SHA256", "ContentType": content_type, **settings.sse_args()}
    with s3_errors(f"upload of s3://{settings.bucket}/{key}"):
        retry_conflicts(lambda: s3.put_object(Bucket=settings.bucket, Key=key, Body=body, **extra))


def abort_multipart_uploads(s3: Any, bucket: str, prefix: str) -> int:
    """Abort every unfinished multipart upload under `prefix` (a crashed run's); their count.

    Only one runner works on a transfer at a time (the lock), so any upload still open under
    the transfer's prefix when an export starts belongs to a run that is gone.
    """
    aborted = 0
    with s3_errors(f"listing of multipart uploads under s3://{bucket}/{prefix}"):
        paginator = s3.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for upload_info in page.get("Uploads", ()):
                _abort(s3, bucket, upload_info["Key"], upload_info["UploadId"])
                aborted += 1
    return aborted


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise


def delete_objects(s3: Any, bucket: str, keys: Iterable[str]) -> None:
    """Delete `keys` in batches of 1,000; a failure on any key is an `ExportError`."""
    pending = sorted(keys)
    for start in range(0, len(pending), 1000):
        batch = [{"Key": k} for k in pending[start : start + 1000]]
        with s3_errors(f"delete under s3://{bucket}/"):
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise ExportError(
                f"S3 delete of s3://{bucket}/{first.get('Key')} failed: "
                f"{first.get('Code')}: {first.get('Message')}"
            )
