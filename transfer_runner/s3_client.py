"""Where exports go and how the S3 client is made, for exports and the S3 state store alike
(README: "Data export").

The destination is a URL, `s3://BUCKET/PREFIX`. Endpoint, region and credentials come from
boto3's standard chain only (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, environment, instance or OIDC
roles), never from a manifest: a manifest is reviewed data, not a place for secrets.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from transfer_runner.config import COMPRESSIONS, SSE, Compression
from transfer_runner.errors import ConfigError

__all__ = [
    "MiB",
    "DEFAULT_PART_SIZE",
    "DEFAULT_REGION",
    "Compression",
    "SSE",
    "S3Settings",
    "parse_s3_url",
    "make_s3_client",
    "client_config",
    "zstd_available",
]

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 32 * MiB
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120

DEFAULT_UPLOAD_WORKERS = 4
DEFAULT_PARTS_IN_FLIGHT = 4


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BAD_PREFIX_CHARS = re.compile(r"[\x00-\x1f\x7f\\?#]")


@dataclass(frozen=True)
class S3Settings:
    """How to export: destination, encryption, part size, compression, retries, concurrency.

    `part_size_bytes` is the tar size (before compression) at which a part is cut.
    `max_attempts` is the total number of attempts per S3 request (first try included).
    `upload_workers` threads compress and upload finished parts while the next one is packed;
    at most `parts_in_flight` finished parts wait or upload at once (each is a spooled file,
    in memory up to a few MiB, on disk beyond), which bounds memory whatever the mailbox size.
    """

    export_to: str
    sse: SSE | None = None
    sse_kms_key_id: str | None = None
    part_size_bytes: int = DEFAULT_PART_SIZE
    compression: Compression = "auto"
    max_attempts: int = 8
    upload_workers: int = DEFAULT_UPLOAD_WORKERS
    parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT

    def __post_init__(self) -> None:
        parse_s3_url(self.export_to)
        if self.sse not in (None, "AES256", "aws:kms"):
            raise ConfigError(f"sse must be AES256 or aws:kms, not {self.sse!r}")
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ConfigError("an SSE KMS key id needs sse aws:kms")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression must be {', '.join(COMPRESSIONS)}, not {self.compression!r}"
            )
        if self.compression in ("auto", "zstd") and not zstd_available():
            raise ConfigError("zstd compression needs the zstandard package: pip install zstandard")
        _check_count("part size", self.part_size_bytes, 1)
        _check_count("max_attempts", self.max_attempts, 1)
        _check_count("upload_workers", self.upload_workers, 1)
        _check_count("parts_in_flight", self.parts_in_flight, 1)

    @property
    def bucket(self) -> str:
        """The destination bucket."""
        return parse_s3_url(self.export_to)[0]

    @property
    def prefix(self) -> str:
        """The destination prefix, without leading or trailing "/" ("" for the bucket root)."""
        return parse_s3_url(self.export_to)[1]

    def sse_args(self) -> dict[str, str]:
        """The server-side encryption arguments for every object written."""
        if self.sse is None:
            return {}
        args: dict[str, str] = {"ServerSideEncryption": self.sse}
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args


def _check_count(what: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be an integer, not {value!r}")
    if value < minimum:
        adjective = "positive" if minimum == 1 and what == "part size" else f"at least {minimum}"
        raise ConfigError(f"{what} must be {adjective}, not {value}")


def zstd_available() -> bool:
    """True when the optional `zstandard` package can be imported."""
    return importlib.util.find_spec("zstandard") is not None


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix"); ConfigError if malformed."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ConfigError(f"export destination must look like s3://BUCKET/PREFIX, not {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    _check_bucket(url, bucket)
    prefix = prefix.strip("/")
    if _BAD_PREFIX_CHARS.search(prefix):
        raise ConfigError(f"{url!r}: the prefix holds a control character, '\\', '?' or '#'")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise ConfigError(f"{url!r}: the prefix has an empty, '.' or '..' segment")
    if len(prefix) > 512:
        raise ConfigError(f"{url!r}: the prefix is longer than 512 characters")
    return bucket, prefix


def _check_bucket(url: str, bucket: str) -> None:
    if not bucket:
        raise ConfigError(f"{url!r}: no bucket name")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigError(
            f"{url!r}: {bucket!r} is not a valid bucket name "
            "(3-63 lowercase letters, digits, '.' and '-', starting and ending alphanumeric)"
        )
    try:
        ipaddress.ip_address(bucket)
    except ValueError:
        return
    raise ConfigError(f"{url!r}: a bucket name cannot be an IP address")


def client_config(settings: S3Settings) -> Config:
    """One explicit retry policy and timeouts for every S3 call."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        tcp_keepalive=True,
    )


def make_s3_client(settings: S3Settings) -> Any:
    """An S3 client from the standard AWS chain; region us-east-1 when none is configured."""
    session = boto3.session.Session()
    region = session.region_name or DEFAULT_REGION
    return session.client("s3", region_name=region, config=client_config(settings))
