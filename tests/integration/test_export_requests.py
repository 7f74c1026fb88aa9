"""What a transfer's data costs S3, counted request by request against a real S3 server
(issue 15 part 4): each request is botocore CPU (signing, hooks, XML) in a process that uses
one core. A listing carries every object's ETag and LastModified, so the index a pass just
listed is not asked for again and the receipt needs no HEAD; a transfer's first run asks for
no crashed run's multipart uploads (there was no earlier run); a later run still does, and
aborts what it finds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_world
from tests.s3_requests import count_requests
from transfer_runner import commands
from transfer_runner import s3_client as s3_clients
from transfer_runner.config import Settings

pytestmark = pytest.mark.integration

# acme-com (two small stores), 15 steps: 41 measured (was 79: 37 GET, 23 LIST, 10 PUT,
# 5 ListMultipartUploads, 4 HEAD), of which 10 PUT (per store: part, journal record, index,
# checkpoint; the receipt twice).
BUDGET = 42


def _settings(tmp_path: Path, world: Any, s3_server: Any, s3_env: str) -> Settings:
    return Settings(
        platform=f"sandbox:{world.sandbox}",
        state=f"sqlite:{tmp_path / 'state.db'}",
        export_to=f"s3://{s3_server.bucket}/{s3_env}/exports",
        part_size_mib=1,
    )


def test_a_first_run_stays_within_its_export_request_budget(
    tmp_path: Path, s3_server: Any, s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = write_world(tmp_path)
    settings = _settings(tmp_path, world, s3_server, s3_env)
    seen = count_requests(monkeypatch, s3_clients)
    result = commands.apply(settings, commands.Selection([str(world.manifests)]))
    assert [t.status for t in result.transfers] == ["succeeded"]
    operations = Counter(op for op, _ in seen)
    assert len(seen) <= BUDGET, operations
    assert operations["ListMultipartUploads"] == 0 and operations["HeadObject"] == 0, operations
    assert operations["PutObject"] == 10, operations


def test_a_later_run_aborts_the_uploads_a_crashed_run_left(
    tmp_path: Path, s3_server: Any, s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = write_world(tmp_path)
    settings = _settings(tmp_path, world, s3_server, s3_env)
    first = commands.apply(settings, commands.Selection([str(world.manifests)], tags=["account"]))
    assert [t.status for t in first.transfers] == ["succeeded"]  # --tags account: no data yet
    s3 = s3_server.client()
    key = f"{s3_env}/exports/acme-com/archive/part-00001.tar.zst"
    left = s3.create_multipart_upload(Bucket=s3_server.bucket, Key=key)["UploadId"]
    seen = count_requests(monkeypatch, s3_clients)
    again = commands.apply(settings, commands.Selection([str(world.manifests)]))
    assert [t.status for t in again.transfers] == ["succeeded"]
    assert ("ListMultipartUploads", f"{s3_env}/exports/acme-com/archive/") in seen
    uploads = s3.list_multipart_uploads(Bucket=s3_server.bucket, Prefix=f"{s3_env}/")
    assert left not in {u["UploadId"] for u in uploads.get("Uploads", ())}
