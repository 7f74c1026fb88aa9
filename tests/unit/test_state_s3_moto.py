"""The S3 state store against moto: the StateStore semantics of the SQLite store, conditional
writes, the open-time probe, 409/412 handling and read-only mode."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.state import s3_objects
from transfer_runner.state.base import RunInfo, StepRecord, TransferRecord
from transfer_runner.state.open import open_state
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.s3_objects import MAX_ATTEMPTS, segment, unsegment

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


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
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
def store(s3: Any) -> Iterator[S3StateStore]:
    s = S3StateStore(URL)
    yield s
    s.close()


def _keys(s3: Any, under: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=under)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _step(run: str, transfer: str, index: int, name: str, status: str = "changed", **kw: Any):
    return StepRecord(
        run_id=run,
        transfer=transfer,
        index=index,
        name=name,
        module=kw.pop("module", "account"),
        status=status,  # type: ignore[arg-type]
        started_at=T0 + timedelta(seconds=index),
        ended_at=T0 + timedelta(seconds=index, milliseconds=250),
        **kw,
    )


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


# -- runs ----------------------------------------------------------------------------------
def test_run_round_trip_and_last_run(store: S3StateStore) -> None:
    assert store.last_run() is None
    first = RunInfo("r-1", T0, "alice", "ci-7", "abc123")
    store.start_run(first)
    store.start_run(RunInfo("r-plan", T0 + timedelta(hours=2), "bob", command="plan"))
    store.start_run(RunInfo("r-2", T0 + timedelta(hours=1), "bob"))
    assert store.get_run("r-1") == first
    assert store.get_run("nope") is None
    last = store.last_run()
    assert last is not None and last.id == "r-2"  # the latest *apply* run
    store.finish_run("r-2", T0 + timedelta(hours=1, minutes=5), {"transfers": 3, "failed": 1})
    done = store.get_run("r-2")
    assert done is not None and done.finished_at == T0 + timedelta(hours=1, minutes=5)
    assert done.totals == {"transfers": 3, "failed": 1}


def test_duplicate_run_unknown_finish_and_naive_time(store: S3StateStore, s3: Any) -> None:
    store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="already exists"):
        store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="no run r-9"):
        store.finish_run("r-9", T0, {})
    before = _keys(s3)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(RunInfo("r-naive", datetime(2026, 1, 1), "alice"))
    assert _keys(s3) == before


def test_times_are_returned_in_utc(store: S3StateStore) -> None:
    paris = datetime(2026, 11, 18, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    store.start_run(RunInfo("r-1", paris, "alice"))
    run = store.get_run("r-1")
    assert run is not None and run.started_at == paris
    assert run.started_at.utcoffset() == timedelta(0)


# -- transfers -----------------------------------------------------------------------------
def test_transfer_round_trip_update_and_list(store: S3StateStore, s3: Any) -> None:
    store.set_transfer(TransferRecord("b-com", "sha-b", "running", T0, "r-1"))
    store.set_transfer(TransferRecord("a-com", "sha-a", "pending", T0))
    store.set_transfer(TransferRecord("b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"))
    store.record_step(_step("r-2", "b-com", 0, "verify"))  # steps do not look like transfers
    assert store.get_transfer("b-com") == TransferRecord(
        "b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"
    )
    assert [t.name for t in store.list_transfers()] == ["a-com", "b-com"]
    assert store.get_transfer("zzz") is None
    assert "team/state/transfers/b-com/record.json" in _keys(s3, "team/state/transfers/")


def test_set_transfer_reapplies_its_change_after_a_concurrent_write(s3: Any) -> None:
    """A 412 on If-Match is met by re-reading and re-writing, never by a blind overwrite."""
    sneaked: list[bool] = []

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if kwargs["Key"].endswith("record.json") and "IfMatch" in kwargs and not sneaked:
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
                   if op == "put_object" and kw["Key"].endswith("record.json")]  # fmt: skip
    assert [("IfNoneMatch" in kw, "IfMatch" in kw) for kw in record_puts] == [
        (True, False),  # created
        (False, True),  # refused: the other writer changed it
        (False, True),  # re-read and re-applied
    ]


# -- steps ---------------------------------------------------------------------------------
def test_steps_round_trip_outputs_as_json(store: S3StateStore) -> None:
    outputs = {"account": "A-9", "amount": Decimal("52.00"), "at": T0, "keys": ["k1", "k2"]}
    store.record_step(_step("r-1", "acme-com", 0, "verify", "ok", message="verified"))
    store.record_step(_step("r-1", "acme-com", 2, "charge", outputs=outputs))
    store.record_step(_step("r-1", "other", 0, "verify", "failed", message="bad ticket"))
    steps = store.run_steps("r-1")
    assert [(s.transfer, s.name, s.status) for s in steps] == [
        ("acme-com", "verify", "ok"),
        ("acme-com", "charge", "changed"),
        ("other", "verify", "failed"),
    ]
    assert steps[1].index == 2 and steps[1].outputs == {
        "account": "A-9",
        "amount": "52.00",
        "at": "2026-11-18T09:30:00.000000Z",
        "keys": ["k1", "k2"],
    }
    assert steps[1].ended_at == T0 + timedelta(seconds=2, milliseconds=250)
    assert steps[0].message == "verified"
    assert store.run_steps("r-other") == []


def test_latest_steps_is_last_record_per_task_across_runs(store: S3StateStore) -> None:
    store.record_step(_step("r-1", "acme-com", 0, "verify", "ok"))
    store.record_step(_step("r-1", "acme-com", 1, "charge", "failed", message="declined"))
    store.record_step(_step("r-2", "acme-com", 1, "charge", "changed", outputs={"id": "ch-1"}))
    store.record_step(_step("r-2", "other", 1, "charge", "failed"))
    latest = store.latest_steps("acme-com")
    assert set(latest) == {"verify", "charge"}
    assert latest["charge"].run_id == "r-2" and latest["charge"].outputs == {"id": "ch-1"}
    assert latest["verify"].run_id == "r-1"
    assert store.latest_steps("nobody") == {}


def test_odd_names_round_trip_through_keys(store: S3StateStore) -> None:
    name, task, run = "we/ird_name..", "move the_data/now", "r_1/x"
    store.record_step(_step(run, name, 3, task))
    store.set_transfer(TransferRecord(name, "sha", "pending", T0))
    assert set(store.latest_steps(name)) == {task}
    assert [s.transfer for s in store.run_steps(run)] == [name]
    assert [t.name for t in store.list_transfers()] == [name]
    assert store.latest_steps("we") == {}


def test_unserialisable_output_fails_and_records_nothing(store: S3StateStore, s3: Any) -> None:
    before = _keys(s3)
    with pytest.raises(TypeError, match="cannot store a object"):
        store.record_step(_step("r-1", "acme-com", 0, "x", outputs={"bad": object()}))
    assert _keys(s3) == before and store.events() == []


# -- events --------------------------------------------------------------------------------
def test_events_in_order_with_step_events(store: S3StateStore, s3: Any) -> None:
    store.append_event("r-1", "acme-com", "transfer_started", {"path": "t/acme.yml"})
    store.record_step(_step("r-1", "acme-com", 0, "verify", "ok", message="fine"))
    store.append_event("r-1", None, "run_note", {"n": Decimal("1.5")})
    store.append_event("r-1", "other", "locked", {"holder": "x"})
    store.append_event("r-1", "acme-com", "transfer_finished", {"status": "unchanged"})
    events = store.events()
    assert [e["kind"] for e in events] == [
        "transfer_started",
        "step",
        "run_note",
        "locked",
        "transfer_finished",
    ]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[1]["data"] == {
        "index": 0,
        "name": "verify",
        "module": "account",
        "status": "ok",
        "message": "fine",
    }
    assert events[2]["data"] == {"n": "1.5"} and events[2]["transfer"] is None
    assert all(e["at"].tzinfo is not None and e["run_id"] == "r-1" for e in events)
    assert [e["kind"] for e in store.events("acme-com")] == [
        "transfer_started",
        "step",
        "transfer_finished",
    ]
    # Every event is its own object (a step's event is the step object): appends never conflict.
    assert len([k for k in _keys(s3) if "/events/" in k]) == 4
    assert len([k for k in _keys(s3) if "/steps/" in k]) == 1


def test_events_of_many_threads_are_all_kept(store: S3StateStore) -> None:
    def append(i: int) -> None:
        for j in range(5):
            store.append_event("r-1", "acme-com", "tick", {"i": i, "j": j})

    threads = [threading.Thread(target=append, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.events("acme-com")
    assert len(events) == 30 and len({e["seq"] for e in events}) == 30
    for i in range(6):  # per thread, in the order appended
        assert [e["data"]["j"] for e in events if e["data"]["i"] == i] == list(range(5))


# -- ticket claims -------------------------------------------------------------------------
def test_claim_ticket_first_claim_wins(store: S3StateStore) -> None:
    assert store.ticket_claim("T-5001") is None
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.claim_ticket("T-5001", "other-com") == "acme-com"
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.ticket_claim("T-5001") == "acme-com"
    assert store.claim_ticket("T-5002", "other-com") == "other-com"


def test_a_retried_create_that_had_landed_is_recognised_as_ours(s3: Any) -> None:
    """botocore retries a PUT whose response was lost; the retry gets 412 on our own write."""

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        real(**kwargs)
        if kwargs.get("IfNoneMatch") and "/.probe/" not in kwargs["Key"]:
            raise _client_error(412, "PreconditionFailed")
        return {}

    store = S3StateStore(URL, client=Hooked(boto3.client("s3", region_name="us-east-1"),
                                            put_object=put))  # fmt: skip
    assert store.claim_ticket("T-1", "acme-com") == "acme-com"
    store.start_run(RunInfo("r-1", T0, "alice"))  # not "already exists"
    assert store.acquire_lock("acme-com", "alice", "r-1", "h1", 600)
    plain = S3StateStore(URL)
    assert plain.claim_ticket("T-1", "other") == "acme-com"
    assert not plain.acquire_lock("acme-com", "bob", "r-2", "h2", 600)


# -- locks ---------------------------------------------------------------------------------
def test_lock_acquire_contention_renew_release(store: S3StateStore, s3: Any) -> None:
    assert store.get_lock("acme-com") is None
    assert store.acquire_lock("acme-com", "alice@h1", "r-1", "h1", 600)
    lock = store.get_lock("acme-com")
    assert lock is not None and (lock.owner, lock.run_id, lock.host) == ("alice@h1", "r-1", "h1")
    assert timedelta(seconds=599) < lock.expires_at - lock.acquired_at <= timedelta(seconds=600)
    assert _keys(s3, "team/state/locks/") == ["team/state/locks/acme-com.json"]

    assert not store.acquire_lock("acme-com", "bob@h2", "r-2", "h2", 600)  # held and live
    assert not store.renew_lock("acme-com", "r-2", 600)  # not ours
    store.release_lock("acme-com", "r-2")  # not ours: no-op
    assert store.get_lock("acme-com") == lock

    assert store.renew_lock("acme-com", "r-1", 1200)
    renewed = store.get_lock("acme-com")
    assert renewed is not None and renewed.expires_at > lock.expires_at

    store.release_lock("acme-com", "r-1")
    assert store.get_lock("acme-com") is None
    assert _keys(s3, "team/state/locks/") == []  # DeleteObject(IfMatch) on moto
    assert not store.renew_lock("acme-com", "r-1", 600)
    assert store.acquire_lock("acme-com", "bob@h2", "r-2", "h2", 600)


def test_expired_lock_is_taken_over_conditionally(store: S3StateStore) -> None:
    assert store.acquire_lock("acme-com", "dead", "r-dead", "gone", -1)
    assert store.acquire_lock("acme-com", "bob", "r-2", "h2", 600)
    lock = store.get_lock("acme-com")
    assert lock is not None and lock.run_id == "r-2"
    assert not store.renew_lock("acme-com", "r-dead", 600)  # the old holder lost it


def test_same_run_reacquires_its_own_lock_and_force_unlock(store: S3StateStore) -> None:
    assert store.force_unlock("acme-com") is None
    assert store.acquire_lock("acme-com", "ci-job-7", "r-7", "runner-3", 600)
    assert store.acquire_lock("acme-com", "ci-job-7", "r-7", "runner-3", 600)
    removed = store.force_unlock("acme-com")
    assert removed is not None and (removed.owner, removed.run_id) == ("ci-job-7", "r-7")
    assert store.get_lock("acme-com") is None
    assert store.acquire_lock("acme-com", "alice", "r-8", "h1", 600)


def test_renew_loses_to_a_takeover_between_read_and_write(s3: Any) -> None:
    """The lease expired; another runner takes it over just before our renewal writes."""
    other = S3StateStore(URL)
    taken: list[bool] = []

    def put(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if kwargs["Key"].endswith("locks/acme.json") and "IfMatch" in kwargs and not taken:
            taken.append(other.acquire_lock("acme", "bob", "r-2", "h2", 600))
        return real(**kwargs)

    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), put_object=put)
    mine = S3StateStore(URL, client=hooked)
    assert mine.acquire_lock("acme", "alice", "r-1", "h1", -1)  # created: no If-Match yet
    assert not mine.renew_lock("acme", "r-1", 600)
    assert taken == [True]
    lock = mine.get_lock("acme")
    assert lock is not None and lock.run_id == "r-2"


def test_threads_race_for_one_lock(s3: Any) -> None:
    stores = [S3StateStore(URL) for _ in range(8)]
    barrier, won = threading.Barrier(8), []

    def race(i: int) -> None:
        barrier.wait()
        if stores[i].acquire_lock("acme", f"o-{i}", f"r-{i}", "h", 600):
            won.append(f"r-{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    lock = stores[0].get_lock("acme")
    assert lock is not None and lock.run_id == won[0]


# -- the probe and the fallback release ----------------------------------------------------
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


def test_without_conditional_delete_a_release_writes_a_marker(s3: Any) -> None:
    hooked = Hooked(boto3.client("s3", region_name="us-east-1"), delete_object=_ignore("IfMatch"))
    store = S3StateStore(URL, client=hooked)
    assert not store.release_by_delete
    assert store.acquire_lock("acme", "alice", "r-1", "h1", 600)
    store.release_lock("acme", "r-1")
    assert store.get_lock("acme") is None
    assert _keys(s3, "team/state/locks/") == ["team/state/locks/acme.json"]  # the marker
    assert not store.renew_lock("acme", "r-1", 600)  # released means not ours any more
    assert store.acquire_lock("acme", "bob", "r-2", "h2", 600)
    assert store.force_unlock("acme") is not None and store.get_lock("acme") is None
    assert S3StateStore(URL).release_by_delete  # moto itself honours If-Match on DELETE


# -- 409 and other errors ------------------------------------------------------------------
def test_conditional_request_conflict_is_retried_then_bounded(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_objects, "_BACKOFF_S", 0.0)  # the retries, not their pauses
    remaining = [3]

    def flaky(kwargs: dict[str, Any], real: Callable[..., Any]) -> Any:
        if "locks/" in kwargs["Key"] and remaining[0] > 0:
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
    s3.put_object(Bucket=BUCKET, Key="team/state/transfers/acme/record.json", Body=b"[1, 2")
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
        lambda: reader.record_step(_step("r-1", "acme-com", 0, "verify")),
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
