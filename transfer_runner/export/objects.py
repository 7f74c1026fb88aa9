"""The few S3 object operations exports need, with errors turned into `ExportError`.

Every object is written with a SHA-256 S3 checksum and the configured server-side encryption.
Small objects go up in one PutObject; large ones through boto3's transfer manager, which splits
them into a multipart upload, keeps the checksum per part and aborts the upload on failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from transfer_runner.errors import ExportError
from transfer_runner.export.s3 import MiB, S3Settings

__all__ = [
    "MULTIPART_THRESHOLD",
    "MULTIPART_CHUNK",
    "s3_errors",
    "list_objects",
    "open_object",
    "upload",
    "delete_objects",
]

MULTIPART_THRESHOLD = 8 * MiB
MULTIPART_CHUNK = 8 * MiB
_MAX_CONCURRENCY = 4
_MISSING = ("NoSuchKey", "404", "NotFound")


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


def list_objects(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size of every object under `prefix` (paginated, read-only)."""
    found: dict[str, int] = {}
    with s3_errors(f"list s3://{bucket}/{prefix}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                found[obj["Key"]] = int(obj["Size"])
    return found


def open_object(s3: Any, bucket: str, key: str) -> Any | None:
    """The streaming body of an object, or None if it does not exist.

    `ChecksumMode` lets botocore check the stored checksum as the body is read, where S3 has
    a full-object one; our own SHA-256 of every message is the check that counts.
    """
    try:
        response = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise ExportError(f"S3 read of s3://{bucket}/{key} failed: {_describe(exc)}") from exc
    except BotoCoreError as exc:
        raise ExportError(f"S3 read of s3://{bucket}/{key} failed: {_describe(exc)}") from exc
    return response["Body"]


def _transfer_config() -> TransferConfig:
    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=_MAX_CONCURRENCY,
    )


def upload(
    s3: Any, settings: S3Settings, key: str, fileobj: IO[bytes], size: int, content_type: str
) -> None:
    """Write `size` bytes of `fileobj` (from its start) to `key`, checksummed and encrypted."""
    extra = {"ChecksumAlgorithm": "SHA256", "ContentType": content_type, **settings.sse_args()}
    fileobj.seek(0)
    with s3_errors(f"upload of s3://{settings.bucket}/{key}"):
        if size < MULTIPART_THRESHOLD:
            # Bytes, not the spooled file: botocore would ask for fileno() and spill it to disk.
            s3.put_object(Bucket=settings.bucket, Key=key, Body=fileobj.read(), **extra)
        else:
            s3.upload_fileobj(
                fileobj, settings.bucket, key, ExtraArgs=extra, Config=_transfer_config()
            )


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
