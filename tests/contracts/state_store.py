"""The `StateStore` contract (transfer_runner/state/base.py): what the engine relies on from
every state backend. Run by tests/unit/test_state_contract.py (SQLite, S3 on moto) and
tests/integration/test_state_contract_s3.py (S3 on a real server on loopback).

The backend module provides `make_store(read_only=False) -> StateStore`, a factory of stores
that share one location (a second store is a second runner, or a second process's view).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from transfer_runner.errors import StateError
from transfer_runner.state.base import RunInfo, StateStore, StepRecord, TransferRecord

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
MakeStore = Callable[..., StateStore]


@pytest.fixture
def store(make_store: MakeStore) -> Iterator[StateStore]:
    s = make_store()
    yield s
    s.close()


def step(run: str, transfer: str, index: int, name: str, status: str = "changed", **kw: Any):
    """A step record at T0 + index seconds, lasting 250 ms."""
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


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` in `count` threads released together; their results in order."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- runs ----------------------------------------------------------------------------------
def test_run_round_trip_and_last_run(store: StateStore) -> None:
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
    assert done.finished_at.tzinfo is not None
    assert done.totals == {"transfers": 3, "failed": 1}


def test_recent_runs_are_apply_runs_newest_first(store: StateStore) -> None:
    assert store.recent_runs(5) == []
    for i, hours in enumerate((0, 3, 1, 2)):
        store.start_run(RunInfo(f"r-{i}", T0 + timedelta(hours=hours), "alice"))
    store.start_run(RunInfo("r-plan", T0 + timedelta(hours=9), "bob", command="plan"))
    assert [r.id for r in store.recent_runs(10)] == ["r-1", "r-3", "r-2", "r-0"]
    assert [r.id for r in store.recent_runs(2)] == ["r-1", "r-3"]
    assert store.recent_runs(0) == []


def test_duplicate_run_and_unknown_finish_are_state_errors(store: StateStore) -> None:
    store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="already exists"):
        store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="no run r-9"):
        store.finish_run("r-9", T0, {})


def test_a_naive_time_is_refused_and_records_nothing(store: StateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(RunInfo("r-naive", datetime(2026, 1, 1), "alice"))
    assert store.get_run("r-naive") is None and store.last_run() is None


def test_times_are_returned_in_utc(store: StateStore) -> None:
    paris = datetime(2026, 11, 18, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    store.start_run(RunInfo("r-1", paris, "alice"))
    run = store.get_run("r-1")
    assert run is not None and run.started_at == paris
    assert run.started_at.utcoffset() == timedelta(0)


# -- transfers and steps -------------------------------------------------------------------
def test_transfer_round_trip_update_and_list(store: StateStore) -> None:
    store.set_transfer(TransferRecord("b-com", "sha-b", "running", T0, "r-1"))
    store.set_transfer(TransferRecord("a-com", "sha-a", "pending", T0))
    store.set_transfer(TransferRecord("b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"))
    store.record_step(step("r-2", "c-com", 0, "verify"))  # a step alone is not a transfer
    assert store.get_transfer("b-com") == TransferRecord(
        "b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"
    )
    assert [t.name for t in store.list_transfers()] == ["a-com", "b-com"]
    assert store.get_transfer("zzz") is None


def test_steps_round_trip_outputs_as_json(store: StateStore) -> None:
    outputs = {"account": "A-9", "amount": Decimal("52.00"), "at": T0, "keys": ["k1", "k2"]}
    store.record_step(step("r-1", "acme-com", 0, "verify", "ok", message="verified"))
    store.record_step(step("r-1", "acme-com", 2, "charge", outputs=outputs))
    store.record_step(step("r-1", "other", 0, "verify", "failed", message="bad ticket"))
    steps = store.run_steps("r-1")
    assert [(s.transfer, s.name, s.status) for s in steps] == [
        ("acme-com", "verify", "ok"),
        ("acme-com", "charge", "changed"),
        ("other", "verify", "failed"),
    ]
    charge = steps[1]
    assert charge.index == 2 and charge.module == "account"
    assert charge.outputs == {
        "account": "A-9",
        "amount": "52.00",  # Decimal stored as its exact digits
        "at": "2026-11-18T09:30:00.000000Z",
        "keys": ["k1", "k2"],
    }
    assert charge.started_at == T0 + timedelta(seconds=2)
    assert charge.ended_at == T0 + timedelta(seconds=2, milliseconds=250)
    assert steps[0].message == "verified"
    assert store.run_steps("r-other") == []


def test_latest_steps_is_the_last_record_per_task_across_runs(store: StateStore) -> None:
    store.record_step(step("r-1", "acme-com", 0, "verify", "ok"))
    store.record_step(step("r-1", "acme-com", 1, "charge", "failed", message="declined"))
    store.record_step(step("r-2", "acme-com", 1, "charge", "changed", outputs={"id": "ch-1"}))
    store.record_step(step("r-2", "other", 1, "charge", "failed"))
    latest = store.latest_steps("acme-com")
    assert set(latest) == {"verify", "charge"}
    assert latest["charge"].run_id == "r-2" and latest["charge"].outputs == {"id": "ch-1"}
    assert latest["verify"].run_id == "r-1"
    assert store.latest_steps("nobody") == {}


def test_odd_names_round_trip(store: StateStore) -> None:
    name, task, run = "we/ird_name..", "move the_data/now", "r_1/x"
    store.record_step(step(run, name, 3, task))
    store.set_transfer(TransferRecord(name, "sha", "pending", T0))
    assert set(store.latest_steps(name)) == {task}
    assert [s.transfer for s in store.run_steps(run)] == [name]
    assert [t.name for t in store.list_transfers()] == [name]
    assert store.latest_steps("we") == {}


def test_an_unserialisable_output_fails_and_records_nothing(store: StateStore) -> None:
    with pytest.raises(TypeError, match="cannot store a object"):
        store.record_step(step("r-1", "acme-com", 0, "x", outputs={"bad": object()}))
    assert store.run_steps("r-1") == [] and store.events() == []


# -- events --------------------------------------------------------------------------------
def test_events_in_order_with_step_events(store: StateStore) -> None:
    store.append_event("r-1", "acme-com", "transfer_started", {"path": "t/acme.yml"})
    store.record_step(step("r-1", "acme-com", 0, "verify", "ok", message="fine"))
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


def test_events_of_many_threads_are_all_kept_in_each_threads_order(store: StateStore) -> None:
    def append(i: int) -> None:
        for j in range(5):
            store.append_event("r-1", "acme-com", "tick", {"i": i, "j": j})

    in_threads(6, append)
    events = store.events("acme-com")
    assert len(events) == 30 and len({e["seq"] for e in events}) == 30
    for i in range(6):
        assert [e["data"]["j"] for e in events if e["data"]["i"] == i] == list(range(5))


def test_steps_of_many_threads_all_land(store: StateStore) -> None:
    def work(i: int) -> None:
        for j in range(5):
            store.record_step(step(f"r-{i}", f"t-{i}", j, f"s-{j}"))

    in_threads(6, work)
    assert len(store.events()) == 30
    assert all(len(store.run_steps(f"r-{i}")) == 5 for i in range(6))


# -- ticket claims -------------------------------------------------------------------------
def test_the_first_claim_of_a_ticket_wins(store: StateStore) -> None:
    assert store.ticket_claim("T-5001") is None
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.claim_ticket("T-5001", "other-com") == "acme-com"
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.ticket_claim("T-5001") == "acme-com"
    assert store.claim_ticket("T-5002", "other-com") == "other-com"


def test_runners_racing_for_a_ticket_agree_on_one_holder(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    try:
        holders = in_threads(8, lambda i: stores[i].claim_ticket("T-1", f"t-{i}"))
        assert len(set(holders)) == 1
        assert all(s.ticket_claim("T-1") == holders[0] for s in stores)
    finally:
        for s in stores:
            s.close()


def test_a_released_claim_frees_the_ticket_for_another_transfer(store: StateStore) -> None:
    assert store.claim_ticket("T-1", "acme-com") == "acme-com"
    assert not store.release_ticket("T-1", "other-com")  # not its claim: kept
    assert store.ticket_claim("T-1") == "acme-com"
    assert store.release_ticket("T-1", "acme-com")
    assert store.ticket_claim("T-1") is None
    assert not store.release_ticket("T-1", "acme-com")  # nothing left to release
    assert store.claim_ticket("T-1", "other-com") == "other-com"
    assert store.claim_ticket("T-1", "acme-com") == "other-com"


# -- locks ---------------------------------------------------------------------------------
def test_lock_acquire_contention_renew_release(store: StateStore) -> None:
    assert store.get_lock("acme-com") is None
    assert store.acquire_lock("acme-com", "alice@h1", "r-1", "h1", 600)
    lock = store.get_lock("acme-com")
    assert lock is not None and (lock.owner, lock.run_id, lock.host) == ("alice@h1", "r-1", "h1")
    assert timedelta(seconds=599) < lock.expires_at - lock.acquired_at <= timedelta(seconds=600)
    assert lock.expires_at.tzinfo is not None

    assert not store.acquire_lock("acme-com", "bob@h2", "r-2", "h2", 600)  # held and live
    assert not store.renew_lock("acme-com", "r-2", 600)  # not ours
    store.release_lock("acme-com", "r-2")  # not ours: no-op
    assert store.get_lock("acme-com") == lock

    assert store.renew_lock("acme-com", "r-1", 1200)
    renewed = store.get_lock("acme-com")
    assert renewed is not None and renewed.expires_at > lock.expires_at

    store.release_lock("acme-com", "r-1")
    assert store.get_lock("acme-com") is None
    assert not store.renew_lock("acme-com", "r-1", 600)  # released: nothing to renew
    assert store.acquire_lock("acme-com", "bob@h2", "r-2", "h2", 600)


def test_an_expired_lock_is_taken_over_and_its_holder_loses_it(store: StateStore) -> None:
    assert store.acquire_lock("acme-com", "dead", "r-dead", "gone", -1)
    assert store.acquire_lock("acme-com", "bob", "r-2", "h2", 600)
    lock = store.get_lock("acme-com")
    assert lock is not None and lock.run_id == "r-2"
    assert not store.renew_lock("acme-com", "r-dead", 600)
    store.release_lock("acme-com", "r-dead")  # not its lease any more: no-op
    assert store.get_lock("acme-com") == lock


def test_a_run_reacquires_its_own_lock_and_force_unlock_frees_any(store: StateStore) -> None:
    assert store.force_unlock("acme-com") is None
    assert store.acquire_lock("acme-com", "ci-job-7", "r-7", "runner-3", 600)
    assert store.acquire_lock("acme-com", "ci-job-7", "r-7", "runner-3", 600)
    removed = store.force_unlock("acme-com")
    assert removed is not None and (removed.owner, removed.run_id) == ("ci-job-7", "r-7")
    assert store.get_lock("acme-com") is None
    assert store.acquire_lock("acme-com", "alice", "r-8", "h1", 600)


def test_the_lease_names_its_process_and_only_a_named_holder_is_replaced(
    store: StateStore,
) -> None:
    assert store.acquire_lock("acme", "alice", "r-1", "h1", 600, pid=4242, machine="m-1")
    lock = store.get_lock("acme")
    assert lock is not None and (lock.pid, lock.machine) == (4242, "m-1")
    assert not store.acquire_lock("acme", "bob", "r-2", "h1", 600, replacing="r-other")
    assert store.acquire_lock("acme", "bob", "r-2", "h1", 600, pid=7, replacing="r-1")
    lock = store.get_lock("acme")
    assert lock is not None and (lock.run_id, lock.pid, lock.machine) == ("r-2", 7, "")
    assert not store.renew_lock("acme", "r-1", 600)


def test_runners_racing_for_a_lock_leave_exactly_one_winner(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(8)]
    try:
        won = in_threads(8, lambda i: stores[i].acquire_lock("acme", f"o-{i}", f"r-{i}", "h", 600))
        assert won.count(True) == 1
        lock = stores[0].get_lock("acme")
        assert lock is not None and lock.run_id == f"r-{won.index(True)}"
    finally:
        for s in stores:
            s.close()


# -- read-only -----------------------------------------------------------------------------
def test_a_read_only_store_sees_every_write_and_refuses_its_own(make_store: MakeStore) -> None:
    writer = make_store()
    reader = make_store(read_only=True)
    try:
        writer.start_run(RunInfo("r-1", T0, "alice"))
        writer.claim_ticket("T-1", "acme-com")
        writer.acquire_lock("acme-com", "alice", "r-1", "h1", 600)
        run = reader.last_run()
        assert run is not None and run.id == "r-1" and reader.ticket_claim("T-1") == "acme-com"
        lock = reader.get_lock("acme-com")
        assert lock is not None and lock.run_id == "r-1"
        writes: list[Callable[[], Any]] = [
            lambda: reader.start_run(RunInfo("r-2", T0, "bob")),
            lambda: reader.finish_run("r-1", T0, {}),
            lambda: reader.claim_ticket("T-2", "x"),
            lambda: reader.release_ticket("T-1", "acme-com"),
            lambda: reader.append_event("r-1", None, "x", {}),
            lambda: reader.record_step(step("r-1", "acme-com", 0, "verify")),
            lambda: reader.set_transfer(TransferRecord("acme-com", "sha", "pending", T0)),
            lambda: reader.acquire_lock("b", "o", "r", "h", 60),
            lambda: reader.renew_lock("acme-com", "r-1", 60),
            lambda: reader.release_lock("acme-com", "r-1"),
            lambda: reader.force_unlock("acme-com"),
        ]
        for write in writes:
            with pytest.raises(StateError, match="read-only"):
                write()
        writer.start_run(RunInfo("r-2", T0 + timedelta(1), "alice"))  # seen by the reader
        run = reader.last_run()
        assert run is not None and run.id == "r-2"
        assert writer.ticket_claim("T-1") == "acme-com" and writer.get_lock("acme-com") == lock
    finally:
        reader.close()
        writer.close()


__all__ = ["store", *(name for name in dir() if name.startswith("test_"))]
