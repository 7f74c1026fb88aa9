"""The S3 state store against moto: its layout, the lease-scoped buffer, conditional writes,
the open-time probe, 409/412 handling and read-only mode. The semantics every backend shares
are in tests/contracts/state_store.py (run here on moto by tests/unit/test_state_contract.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from tests.contracts.state_store import step
from transfer_runner.errors import ConfigError, StateError
from transfer_runner.retries import RetryPolicy
from transfer_runner.state import s3_objects
from transfer_runner.state.base import RunInfo, TransferRecord
from transfer_runner.state.open import open_state
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.s3_objects import MAX_ATTEMPTS, segment, unsegment
from transfer_runner.state.s3_transfers import LOG_KEEP

BUCKET = "state-bucket"
URL = f"s3://{BUCKET}/team/state"
T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


def _atomic_object_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve moto's object and bucket requests one at a time, so PutObject is atomic as S3's
    is. moto checks If-None-Match / If-Match and stores the object in separate steps, so under
    load two racing threads both passed the check (`test_threads_race_for_one_lock` saw two
    winners), and a read could meet the buffer of an object being replaced ("I/O operation on
    closed file"). The state store relies on the server for that atomicity; the same race
    against a real server is in tests/integration/test_state_s3.py."""
    from moto.s3.responses import S3Response

    lock = threading.RLock()

    def serialised(real: Any) -> Any:
        def handler(self: S3Response, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return real(self, *args, **kwargs)

        return handler

    for name in ("key_response", "bucket_response"):
        monkeypatch.setattr(S3Response, name, serialised(getattr(S3Response, name)))


@contextmanager
def moto_state_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto S3 with the state bucket, its requests atomic; yields a plain client."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _atomic_object_requests(monkeypatch)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_state_bucket(monkeypatch) as client:
        yield client


@pytest.fixture
def store(s3: Any) -> Iterator[S3StateStore]:
    s = S3StateStore(URL)
    yield s
    s.close()


def _keys(s3: Any, under: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=under)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


class Hooked:
    """A boto3 client whose calls pass through `hooks[operation](kwargs, call)` first."""

    def __init__(self, real: Any, **hooks: Callable[[dict[str, Any], Callable[..., Any]], Any]):
        self.real, self.hooks = real, hooks
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        target = getattr(self.real, operation)
        hook = self.hooks.get(operation)

        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, kwargs))
            return hook(kwargs, target) if hook else target(**kwargs)

        return call


def _client_error(status: int, code: str, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


# -- the layout on S3 (the semantics are in tests/contracts/state_store.py) ------------------
def test_a_transfer_is_one_object_and_events_without_its_lease_are_their_own(
    store: S3StateStore, s3: Any
) -> None:
    before = _keys(s3)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(RunInfo("r-naive", datetime(2026, 1, 1), "alice"))
    with pytest.raises(TypeError, match="cannot store"):
        store.record_step(step("r-1", "acme-com", 0, "x", outputs={"bad": object()}))
    assert _keys(s3) == before  # a refused write leaves no object behind

    store.set_transfer(TransferRecord("acme-com", "sha", "running", T0, "r-1"))
    store.append_event("r-1", "acme-com", "locked", {})  # no lease held: an object of its own
    store.record_step(step("r-1", "acme-com", 0, "verify", "ok"))
    store.append_event("r-1", None, "run_note", {})
    keys = _keys(s3, "team/state/")
    assert [k for k in keys if k.startswith("team/state/transfers/")] == [
        "team/state/transfers/acme-com.json"
    ]
    assert len([k for k in keys if k.startswith("team/state/transfer-events/acme-com/")]) == 1
    assert len([k for k in keys if k.startswith("team/state/events/")]) == 1
    assert "team/state/layout.json" in keys

    assert store.acquire_lock("acme-com", "alice@h1", "r-1", "h1", 600)
    store.append_event("r-1", "acme-com", "transfer_started", {})  # under the lease: the log
    assert _keys(s3, "team/state/") == keys + []  # nothing new until a renewal or release
    store.release_lock("acme-com", "r-1")
    assert _keys(s3, "team/state/") == keys
    assert [e["kind"] for e in store.events("acme-com")] == ["locked", "step", "transfer_started"]


def test_under_the_lease_records_wait_for_the_renewal_or_release(s3: Any) -> None:
    """The holder buffers; another runner sees the steps once renewed (or released)."""
    mine, other = S3StateStore(URL), S3StateStore(URL, read_only=True)
    assert mine.acquire_lock("acme", "alice", "r-1", "h1", 600)
    mine.set_transfer(TransferRecord("acme", "sha", "running", T0, "r-1"))
    mine.record_step(step("r-1", "acme", 0, "verify"))
    assert set(mine.latest_steps("acme")) == {"verify"}  # the holder reads its own writes
    assert other.latest_steps("acme") == {} and other.get_transfer("acme") is None
    assert mine.renew_lock("acme", "r-1", 600)
    assert set(other.latest_steps("acme")) == {"verify"}
    mine.record_step(step("r-1", "acme", 1, "export"))
    mine.release_lock("acme", "r-1")
    state = other.transfer_state("acme")
    assert list(state.steps) == ["verify", "export"] and state.lock is None
    assert state.record is not None and state.record.status == "running"


def test_a_holder_that_lost_the_object_loses_its_buffer_and_its_lease(s3: Any) -> None:
    mine, other = S3StateStore(URL), S3StateStore(URL)
    assert mine.acquire_lock("acme", "alice", "r-1", "h1", 600)
    mine.record_step(step("r-1", "acme", 0, "verify"))
    assert other.force_unlock("acme") is not None  # `unlock` from another machine
    assert not mine.renew_lock("acme", "r-1", 600)  # the conditional write is the check
    assert mine.get_lock("acme") is None and mine.latest_steps("acme") == {}
    mine.record_step(step("r-1", "acme", 0, "verify"))  # no lease: written at once
    assert set(other.latest_steps("acme")) == {"verify"}


def test_the_engine_reads_a_transfer_once_then_takes_its_lease_without_a_read(s3: Any) -> None:
    hooked = Hooked(boto3.client("s3", region_name="us-east-1"))
    store = S3StateStore(URL, client=hooked)
    hooked.calls.clear()
    assert store.transfer_state("acme").record is None
    assert store.acquire_lock("acme", "alice", "r-1", "h1", 600)
    store.get_transfer("acme"), store.latest_steps("acme"), store.get_lock("acme")
    store.record_step(step("r-1", "acme", 0, "verify"))
    store.release_lock("acme", "r-1")
    assert [op for op, _ in hooked.calls] == ["get_object", "put_object", "put_object"]


def test_the_log_moves_to_history_objects_and_reads_back_whole(s3: Any) -> None:
    store = S3StateStore(URL)
    for n in range(3 * LOG_KEEP):
        assert store.acquire_lock("acme", "alice", f"r-{n}", "h1", 600)
        store.record_step(step(f"r-{n}", "acme", 0, "verify"))
        store.release_lock("acme", f"r-{n}")
    assert len(_keys(s3, "team/state/history/acme/")) >= 2
    assert [e["run_id"] for e in store.events("acme")] == [f"r-{n}" for n in range(3 * LOG_KEEP)]
    assert [s.run_id for s in store.run_steps("r-7")] == ["r-7"]
    assert store.latest_steps("acme")["verify"].run_id == f"r-{3 * LOG_KEEP - 1}"


def test_a_lost_layout_marker_is_written_again_not_taken_for_the_old_layout(s3: Any) -> None:
    store = S3StateStore(URL)
    store.set_transfer(TransferRecord("acme", "sha", "running", T0, "r-1"))
    s3.delete_object(Bucket=BUCKET, Key="team/state/layout.json")
    again = S3StateStore(URL)
    assert again.get_transfer("acme") is not None
    assert "team/state/layout.json" in _keys(s3, "team/state/")


@pytest.mark.parametrize(
    ("key", "body", "match"),
    [
        ("team/state/locks/acme.json", b"{}", "before 2026-12 .*layout 1"),
        ("team/state/transfers/acme/record.json", b"{}", "before 2026-12 .*layout 1"),
        ("team/state/layout.json", b'{"layout": 3}', "has layout 3"),
    ],
)
def test_a_prefix_in_another_layout_is_refused(s3: Any, key: str, body: bytes, match: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    for read_only in (False, True):
        with pytest.raises(ConfigError, match=match):
            S3StateStore(URL, read_only=read_only)


# -- conditional writes --------------------------------------------------------------------
def test_set_transfer_reapplies_its_change_after_a_concurrent_write(s3: Any) -> None:
    """A 412 on If-Match is met by re-reading and re-writing, never by a blind overwrite."""
    sneaked: list[bool] = []

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if kwargs["Key"].endswith("transfers/acme.json") and "IfMatch" in kwargs and not sneaked:
            sneaked.append(True)
            real(Bucket=BUCKET, Key=kwargs["Key"], Body=b'{"name": "x", "other": "writer"}')
        return real(**kwargs)

    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), put_object=put)
    store = S3StateStore(URL, client=hooked)
    store.set_transfer(TransferRecord("acme", "sha-1", "running", T0, "r-1"))
    store.set_transfer(TransferRecord("acme", "sha-1", "succeeded", T0, "r-1"))
    assert sneaked and store.get_transfer("acme") == TransferRecord(
        "acme", "sha-1", "succeeded", T0, "r-1"
    )
    record_puts = [kw for op, kw in hooked.calls
                   if op == "put_object" and kw["Key"].endswith("transfers/acme.json")]  # fmt: skip
    assert [("IfNoneMatch" in kw, "IfMatch" in kw) for kw in record_puts] == [
        (True, False),  # created
        (False, True),  # refused: the other writer changed it
        (False, True),  # re-read and re-applied
    ]


def test_a_retried_create_that_had_landed_is_recognised_as_ours(s3: Any) -> None:
    """botocore retries a PUT whose response was lost; the retry gets 412 on our own write."""

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        response = real(**kwargs)
        if kwargs.get("IfNoneMatch") and "/.probe/" not in kwargs["Key"]:
            raise _client_error(412, "PreconditionFailed")
        return response

    store = S3StateStore(URL, client=Hooked(boto3.client("s3", region_name="us-east-1"),
                                            put_object=put))  # fmt: skip
    assert store.claim_ticket("T-1", "acme-com") == "acme-com"
    store.start_run(RunInfo("r-1", T0, "alice"))  # not "already exists"
    assert store.acquire_lock("acme-com", "alice", "r-1", "h1", 600)
    plain = S3StateStore(URL)
    assert plain.claim_ticket("T-1", "other") == "acme-com"
    assert not plain.acquire_lock("acme-com", "bob", "r-2", "h2", 600)


def test_renew_loses_to_a_takeover_between_read_and_write(s3: Any) -> None:
    """The lease expired; another runner takes it over just before our renewal writes."""
    other = S3StateStore(URL)
    taken: list[bool] = []

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if kwargs["Key"].endswith("transfers/acme.json") and "IfMatch" in kwargs and not taken:
            taken.append(other.acquire_lock("acme", "bob", "r-2", "h2", 600))
        return real(**kwargs)

    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), put_object=put)
    mine = S3StateStore(URL, client=hooked)
    assert mine.acquire_lock("acme", "alice", "r-1", "h1", -1)  # created: no If-Match yet
    assert not mine.renew_lock("acme", "r-1", 600)
    assert taken == [True]
    lock = mine.get_lock("acme")
    assert lock is not None and lock.run_id == "r-2"


# -- the probe ----------------------------------------------------------------------------
def _ignore(header: str) -> Callable[[dict[str, Any], Callable[..., Any]], Any]:
    def drop(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        kwargs.pop(header, None)
        return real(**kwargs)

    return drop


@pytest.mark.parametrize(
    ("operation", "header", "match"),
    [
        ("put_object", "IfNoneMatch", "ignores If-None-Match"),
        ("put_object", "IfMatch", "ignores If-Match on PutObject"),
    ],
)
def test_probe_refuses_a_bucket_without_conditional_writes(
    s3: Any, operation: str, header: str, match: str
) -> None:
    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), **{operation: _ignore(header)})
    with pytest.raises(ConfigError, match=match):
        S3StateStore(URL, client=hooked)
    assert _keys(s3) == []  # the probe object is removed


def test_probe_refuses_a_bucket_that_rejects_the_header(s3: Any) -> None:
    def refuse(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if "IfNoneMatch" in kwargs:
            raise _client_error(501, "NotImplemented")
        return real(**kwargs)

    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), put_object=refuse)
    with pytest.raises(ConfigError, match="refused a conditional write.*NotImplemented"):
        S3StateStore(URL, client=hooked)


# -- 409 and other errors ------------------------------------------------------------------
def test_conditional_request_conflict_is_retried_then_bounded(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_pause = RetryPolicy(attempts=MAX_ATTEMPTS, base_delay_s=0)  # the retries, not their pauses
    monkeypatch.setattr(s3_objects, "CONFLICT_POLICY", no_pause)
    remaining = [3]

    def flaky(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if "transfers/" in kwargs["Key"] and remaining[0] > 0:
            remaining[0] -= 1
            raise _client_error(409, "ConditionalRequestConflict")
        return real(**kwargs)

    store = S3StateStore(URL, client=Hooked(boto3.client("s3", region_name="us-east-1"),
                                            put_object=flaky))  # fmt: skip
    assert store.acquire_lock("acme", "alice", "r-1", "h1", 600)
    assert remaining == [0]
    remaining[0] = MAX_ATTEMPTS
    with pytest.raises(StateError, match="409 ConditionalRequestConflict"):
        store.renew_lock("acme", "r-1", 600)


def test_missing_bucket_and_other_errors_are_state_errors(s3: Any) -> None:
    with pytest.raises(StateError, match="bucket 'no-such-bucket' does not exist"):
        S3StateStore("s3://no-such-bucket/x")
    with pytest.raises(StateError, match="bucket 'no-such-bucket' does not exist"):
        S3StateStore("s3://no-such-bucket/x", read_only=True)

    def denied(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if "/transfers/" in kwargs["Key"]:
            raise _client_error(403, "AccessDenied", "GetObject")
        return real(**kwargs)

    store = S3StateStore(URL, client=Hooked(boto3.client("s3", region_name="us-east-1"),
                                            get_object=denied))  # fmt: skip
    with pytest.raises(StateError, match=r"read transfer failed: AccessDenied \[403\]"):
        store.get_transfer("acme")


def test_a_corrupt_object_is_a_state_error(store: S3StateStore, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="team/state/transfers/acme.json", Body=b"[1, 2")
    with pytest.raises(StateError, match="not a JSON state object"):
        store.get_transfer("acme")


# -- read-only and open_state --------------------------------------------------------------
def test_read_only_reads_and_never_writes(s3: Any) -> None:
    writer = S3StateStore(URL)
    writer.start_run(RunInfo("r-1", T0, "alice"))
    writer.claim_ticket("T-1", "acme-com")
    writer.acquire_lock("acme-com", "alice", "r-1", "h1", 600)
    hooked = Hooked(boto3.client("s3", region_name="us-east-1"))
    reader = S3StateStore(URL, read_only=True, client=hooked)
    run = reader.last_run()
    assert run is not None and run.id == "r-1" and reader.ticket_claim("T-1") == "acme-com"
    lock = reader.get_lock("acme-com")
    assert lock is not None and lock.run_id == "r-1"
    attempts: list[Callable[[], Any]] = [
        lambda: reader.start_run(RunInfo("r-2", T0, "bob")),
        lambda: reader.claim_ticket("T-2", "x"),
        lambda: reader.append_event("r-1", None, "x", {}),
        lambda: reader.record_step(step("r-1", "acme-com", 0, "verify")),
        lambda: reader.set_transfer(TransferRecord("acme-com", "sha", "pending", T0)),
        lambda: reader.acquire_lock("b", "o", "r", "h", 60),
        lambda: reader.release_lock("acme-com", "r-1"),
        lambda: reader.force_unlock("acme-com"),
    ]
    for attempt in attempts:
        with pytest.raises(StateError, match="read-only"):
            attempt()
    assert {op for op, _ in hooked.calls} <= {"head_bucket", "get_object", "list_objects_v2"}
    reader.close()


def test_open_state_builds_the_s3_store(s3: Any) -> None:
    store = open_state(URL)
    assert isinstance(store, S3StateStore) and not store.read_only
    store.close()
    ro = open_state(f"  {URL}  ", read_only=True)
    assert isinstance(ro, S3StateStore) and ro.read_only
    ro.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("S3://bucket/prefix", "must look like s3://BUCKET/PREFIX"),
        ("s3:bucket/prefix", "must look like s3://BUCKET/PREFIX"),
        ("s3://", "no bucket name"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://bucket/a/../b", r"'\.\.' segment"),
    ],
)
def test_bad_s3_state_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_state(url)


@given(st.text(max_size=40))
def test_key_segments_round_trip_and_hold_no_separator(text: str) -> None:
    seg = segment(text)
    assert unsegment(seg) == text
    assert "/" not in seg and "_" not in seg and seg not in ("", ".", "..")
