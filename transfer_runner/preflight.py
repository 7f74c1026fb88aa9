"""Preflight: the settings a run needs, checked before it writes anything anywhere.

`plan`, `apply` and `validate --online` call `preflight` once, after opening the platform and
the state store and before the first transfer. It makes one authenticated platform read (the
first transfer's customer ticket: a wrong token or an unreachable platform is found here, not
mid-wave), and when a selected transfer still has data to export, it checks the export
destination: set, AWS credentials found, bucket reachable, and (for `apply`) an object can be
written and deleted under the prefix. Each failure is a `PreflightError`: one line naming the
setting and how to set it. The state store's writability is proved by `apply` recording its
run, which it does right after the preflight and before any platform write.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from transfer_runner.errors import ConfigError, NotFound, PlatformError
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform
from transfer_runner.playbook.loader import Playbook
from transfer_runner.s3_client import S3Settings
from transfer_runner.state.base import StateStore

__all__ = ["PreflightError", "preflight", "needs_export", "PROBE_DIR"]

EXPORT_MODULES = frozenset({"data.export"})
PROBE_DIR = ".transfer-runner-preflight"  # under the export prefix; the probe is deleted at once
_ACCESS_TIMEOUT_S = 5


class PreflightError(ConfigError):
    """A setting the run needs is missing or does not work; nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(f"preflight: {message}")


def preflight(
    *,
    platform: Platform,
    platform_url: str,
    state: StateStore,
    playbook: Playbook,
    transfers: Sequence[Transfer],
    tags: frozenset[str],
    export: S3Settings | None,
    write_probe: bool,
) -> None:
    """Raise PreflightError for the first setting that would make the run fail mid-way."""
    if not transfers:
        return
    _check_platform(platform, platform_url, transfers[0])
    if needs_export(playbook, transfers, tags, state):
        _check_export(export, write_probe)


def needs_export(
    playbook: Playbook, transfers: Sequence[Transfer], tags: frozenset[str], state: StateStore
) -> bool:
    """Whether the run may export: a selected export task, and a transfer with a store to
    export that is not already completed with this manifest (a completed one is not re-run)."""
    if not any(
        t.module in EXPORT_MODULES and (not tags or tags.intersection(t.tags))
        for t in playbook.tasks
    ):
        return False
    for transfer in transfers:
        if transfer.quarantine == "skip" and transfer.archive == "skip":
            continue
        record = state.get_transfer(transfer.name)
        if record is None or record.status != "succeeded" or (
            record.manifest_sha256 != transfer.sha256
        ):  # fmt: skip
            return True
    return False


def _check_platform(platform: Platform, url: str, transfer: Transfer) -> None:
    """One authenticated read: the platform answers and accepts the credential."""
    try:
        platform.get_ticket(transfer.customer_ticket)
    except NotFound:
        return  # answered and authorised; the ticket itself is checked by its step
    except PlatformError as exc:
        hint = ""
        if exc.status in (401, 403) and "TRANSFER_RUNNER_PLATFORM_TOKEN" not in str(exc):
            hint = " (check the token in TRANSFER_RUNNER_PLATFORM_TOKEN)"
        raise PreflightError(f"platform {_public(url)} is not usable: {exc}{hint}") from exc


def _check_export(export: S3Settings | None, write_probe: bool) -> None:
    if export is None:
        raise PreflightError(
            "a selected transfer exports data but no export destination is set: pass "
            "--export-to s3://BUCKET/PREFIX or set TRANSFER_RUNNER_EXPORT_TO (a manifest with "
            "data: {quarantine: skip, archive: skip} exports nothing)"
        )
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise PreflightError(
            f"no AWS credentials found for the export to {export.export_to}: set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role"
        )
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=_ACCESS_TIMEOUT_S,
        read_timeout=_ACCESS_TIMEOUT_S,
    )
    s3 = session.client("s3", region_name=session.region_name or "us-east-1", config=config)
    try:
        s3.head_bucket(Bucket=export.bucket)
        if write_probe:
            _probe_write(s3, export)
    except ClientError as exc:
        raise PreflightError(_explain(exc, export)) from exc
    except BotoCoreError as exc:
        message = f"the export destination {export.export_to} is unreachable: {exc}"
        raise PreflightError(message) from exc


def _probe_write(s3: Any, export: S3Settings) -> None:
    """Write and delete one small object under the prefix, with the run's encryption."""
    key = "/".join(p for p in (export.prefix, PROBE_DIR, secrets.token_hex(8)) if p)
    s3.put_object(Bucket=export.bucket, Key=key, Body=b"transfer-runner preflight\n",
                  **export.sse_args())  # fmt: skip
    s3.delete_object(Bucket=export.bucket, Key=key)


def _explain(exc: Any, export: S3Settings) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", "")
    if code in ("404", "NoSuchBucket") or status == 404:
        return (
            f"the export bucket {export.bucket!r} does not exist (--export-to "
            f"{export.export_to}; check the name and AWS_ENDPOINT_URL / the region)"
        )
    if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") or (
        status == 403
    ):  # fmt: skip
        return (
            f"access to the export destination {export.export_to} was denied ({operation}: "
            f"{code or status}); the credentials need s3:ListBucket, s3:PutObject, "
            "s3:GetObject and s3:DeleteObject there"
        )
    return f"the export destination {export.export_to} failed {operation}: {code or status}"


def _public(url: str) -> str:
    """The platform URL without any user-info (a token is never in output)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{host}"
