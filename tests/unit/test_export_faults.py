"""S3 faults during export: 503 SlowDown, 500, connection resets, lost acknowledgements, 409.

Faults are injected by a botocore `before-send` handler registered with `register_first`:
moto answers through `before-send` too, so a handler registered after it would never run. A
lost acknowledgement performs the request (through moto here, over HTTP in the integration
test) and then replaces the reply with an error, so the retry repeats a write that happened.
`FaultInjector` is shared with tests/integration/test_export_s3_faults.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.retries import standard
from moto.core.models import botocore_stubber

from tests.unit.fake_platform import FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export import objects
from transfer_runner.export.exporter import export_store
from transfer_runner.export.verifier import verify_store
from transfer_runner.retries import RetryPolicy
from transfer_runner.s3_client import MiB, S3Settings, make_s3_client

BUCKET = "exports"
NAME = "acme-com"
SOURCE = "C-1001"
ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error."),
    "conflict": (409, "ConditionalRequestConflict", "A conflicting operation is in progress."),
}

Perform = Callable[[str, AWSPreparedRequest], AWSResponse]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(url: str, kind: str) -> AWSResponse:
    """An S3 error reply as a real server would send it."""
    status, code, message = ERRORS[kind]
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>fault</RequestId></Error>"
    ).encode()
    return AWSResponse(url, status, {"Content-Type": "application/xml"}, _Raw(body))


class FaultInjector:
    """Injects `faults[operation]` (in order, one per call) into an S3 client's requests.

    Kinds: "slowdown", "500", "conflict" (error replies), "reset" (the connection drops
    before a reply), "lost-ack" (the request is performed, then the reply becomes a 500).
    """

    def __init__(self, faults: dict[str, list[str]], perform: Perform) -> None:
        self.pending = {op: list(kinds) for op, kinds in faults.items()}
        self.perform = perform
        self.injected: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, s3: Any) -> FaultInjector:
        s3.meta.events.register_first("before-send.s3", self)
        return self

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.calls[operation] += 1
            queue = self.pending.get(operation) or []
            kind = queue.pop(0) if queue else None
            if kind:
                self.injected[kind] += 1
        if kind is None:
            return None
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "lost-ack":
            self.perform(event_name, request)
            return error_response(request.url, "500")
        return error_response(request.url, kind)


def moto_perform(event_name: str, request: AWSPreparedRequest) -> AWSResponse:
    """Perform a request against moto's in-process backend."""
    response = botocore_stubber(event_name, request)
    assert response is not None, "moto did not answer"
    return response


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without sleeping: botocore's backoff and the runner's conflict policy."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    monkeypatch.setattr(objects, "CONFLICT_POLICY", RetryPolicy(attempts=4, base_delay_s=0))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, no_backoff: None) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET, settings()) as client:
        yield client


def settings(**changes: Any) -> S3Settings:
    base = S3Settings(f"s3://{BUCKET}/runs", part_size_bytes=64 * 1024, upload_workers=2)
    return replace(base, **changes)


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 120, size=2048)
    return fake


def clean_export(platform: FakePlatform, s3: Any, cfg: S3Settings) -> str:
    """Export to a second transfer name without faults; its index SHA-256."""
    return export_store(platform, s3, cfg, "clean-run", SOURCE, "archive").index_sha256


FAULT_CASES = [
    ("slowdown", {"PutObject": ["slowdown", "slowdown", "slowdown"]}),
    ("500", {"PutObject": ["500", "500"], "ListObjectsV2": ["500"]}),
    ("reset", {"PutObject": ["reset", "reset"], "GetObject": ["reset"]}),
    ("lost-ack", {"PutObject": ["lost-ack", "lost-ack", "lost-ack"]}),
    ("conflict", {"PutObject": ["conflict", "conflict"]}),
]


@pytest.mark.parametrize(("kind", "faults"), FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_each_fault_is_survived_with_a_correct_result(
    s3: Any, platform: FakePlatform, kind: str, faults: dict[str, list[str]]
) -> None:
    cfg = settings()
    expected = clean_export(platform, s3, cfg)
    injector = FaultInjector(faults, moto_perform).install(s3)
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert result.messages == 120 and result.index_sha256 == expected
    verified = verify_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert verified.ok, verified.problems
    # every fault was met, by the export or (a first export reads nothing) its verification
    assert injector.injected[kind] == sum(len(v) for v in faults.values())


def test_lost_acknowledgements_of_multipart_parts_are_survived(s3: Any) -> None:
    platform = FakePlatform()
    platform.add_messages(SOURCE, "archive", 20, size=1 * MiB)
    cfg = settings(compression="none", part_size_bytes=9 * MiB)
    expected = clean_export(platform, s3, cfg)
    faults = {"UploadPart": ["lost-ack", "reset", "slowdown"], "CreateMultipartUpload": ["500"]}
    injector = FaultInjector(faults, moto_perform).install(s3)
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert injector.injected["lost-ack"] == 1 and injector.calls["CompleteMultipartUpload"] >= 2
    assert result.index_sha256 == expected
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_a_conflict_that_never_ends_fails_cleanly_after_the_policy_attempts(
    s3: Any, platform: FakePlatform
) -> None:
    injector = FaultInjector({"PutObject": ["conflict"] * 50}, moto_perform).install(s3)
    with pytest.raises(ExportError, match="ConditionalRequestConflict"):
        export_store(platform, s3, settings(upload_workers=1), NAME, SOURCE, "archive")
    assert injector.injected["conflict"] == 4  # RetryPolicy(attempts=4): one part, four tries
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{NAME}/archive/index")
    assert "Contents" not in listing


def test_throttling_beyond_the_retry_budget_is_a_clean_error(
    s3: Any, platform: FakePlatform
) -> None:
    cfg = settings(max_attempts=3, upload_workers=1)
    client = make_s3_client(cfg)
    FaultInjector({"PutObject": ["slowdown"] * 3}, moto_perform).install(client)
    with pytest.raises(ExportError, match="SlowDown"):
        export_store(platform, client, cfg, NAME, SOURCE, "archive")


def test_retry_policy_backoff_is_bounded_and_can_be_switched_off() -> None:
    policy = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=2.0)
    assert all(0 <= policy.delay(n) <= min(2.0, 0.5 * 2 ** (n - 1)) for n in range(1, 8))
    assert RetryPolicy(base_delay_s=0).delay(3) == 0
