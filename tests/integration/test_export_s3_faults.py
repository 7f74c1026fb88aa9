"""The fault cases of tests/unit/test_export_faults.py against a real S3 server on loopback.

Here a lost acknowledgement really reaches the server (over HTTP, through botocore's own
session) before its reply is replaced by an error. Also: a flipped byte in a stored part
fails verify, and the export is untouched by it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import local_s3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session
from botocore.retries import standard

from tests.unit.fake_platform import FakePlatform
from tests.unit.test_export_faults import FAULT_CASES, FaultInjector
from transfer_runner.export import objects
from transfer_runner.export.exporter import export_store
from transfer_runner.export.verifier import verify_store
from transfer_runner.retries import RetryPolicy
from transfer_runner.s3_client import MiB, S3Settings, make_s3_client

integration = pytest.mark.integration
SOURCE = "C-1001"
_HTTP = URLLib3Session()


def http_perform(event_name: str, request: AWSPreparedRequest) -> AWSResponse:
    """Send the request to the real server; its reply is then thrown away by the injector."""
    response = _HTTP.send(request)
    assert response.status_code < 300, response.content
    return response


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    monkeypatch.setattr(objects, "CONFLICT_POLICY", RetryPolicy(attempts=4, base_delay_s=0))


def settings(server: local_s3.LocalS3, prefix: str, **changes: Any) -> S3Settings:
    base = S3Settings(f"s3://{server.bucket}/{prefix}", part_size_bytes=64 * 1024)
    return replace(base, **changes)


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 120, size=2048)
    return fake


@integration
@pytest.mark.parametrize(("kind", "faults"), FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_each_fault_is_survived_on_a_real_server(
    s3_server: local_s3.LocalS3,
    s3_env: str,
    platform: FakePlatform,
    kind: str,
    faults: dict[str, list[str]],
) -> None:
    cfg = settings(s3_server, s3_env)
    s3 = make_s3_client(cfg)
    expected = export_store(platform, s3, cfg, "clean-run", SOURCE, "archive").index_sha256
    injector = FaultInjector(faults, http_perform).install(s3)
    result = export_store(platform, s3, cfg, "faulty-run", SOURCE, "archive")
    assert result.index_sha256 == expected and result.messages == 120
    verified = verify_store(platform, s3, cfg, "faulty-run", SOURCE, "archive")
    assert verified.ok, verified.problems
    # every fault was met, by the export or (a first export reads nothing) its verification
    assert injector.injected[kind] == sum(len(v) for v in faults.values())


@integration
def test_lost_acknowledgement_of_a_multipart_part_on_a_real_server(
    s3_server: local_s3.LocalS3, s3_env: str
) -> None:
    platform = FakePlatform()
    platform.add_messages(SOURCE, "archive", 10, size=1 * MiB)
    cfg = settings(s3_server, s3_env, compression="none", part_size_bytes=9 * MiB)
    s3 = make_s3_client(cfg)
    faults = {"UploadPart": ["lost-ack", "reset"], "CompleteMultipartUpload": ["slowdown"]}
    injector = FaultInjector(faults, http_perform).install(s3)
    result = export_store(platform, s3, cfg, "multipart", SOURCE, "archive")
    assert injector.injected["lost-ack"] == 1 and result.messages == 10
    assert verify_store(platform, s3, cfg, "multipart", SOURCE, "archive").ok


@integration
def test_a_flipped_byte_in_a_stored_part_fails_verify(
    s3_server: local_s3.LocalS3, s3_env: str, platform: FakePlatform
) -> None:
    cfg = settings(s3_server, s3_env)
    s3 = make_s3_client(cfg)
    result = export_store(platform, s3, cfg, "flipped", SOURCE, "archive")
    key = result.parts[1]
    data = bytearray(s3.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())
    data[len(data) // 3] ^= 0x01
    s3.put_object(Bucket=s3_server.bucket, Key=key, Body=bytes(data))
    verified = verify_store(platform, s3, cfg, "flipped", SOURCE, "archive")
    assert not verified.ok
    assert any("part-00002" in problem for problem in verified.problems), verified.problems
    assert platform.ids(SOURCE, "archive") == [f"msg-{i:05d}" for i in range(120)]
