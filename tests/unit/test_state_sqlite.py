"""The SQLite state store: round trips, append-only events, locks, ticket claims, read-only."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.state.base import RunInfo, StepRecord, TransferRecord
from transfer_runner.state.open import DEFAULT_STATE_URL, open_state
from transfer_runner.state.sqlite import SCHEMA_VERSION, SqliteStateStore

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStateStore(tmp_path / "nested" / "dir" / "state.db")
    yield s
    s.close()


def _step(run: str, transfer: str, index: int, name: str, status: str = "changed", **kw):
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


# -- round trips -------------------------------------------------------------------------
def test_creates_parent_directory_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    SqliteStateStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        latest = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        assert latest == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"runs", "transfers", "steps", "events", "locks", "ticket_claims"} <= tables


def test_run_round_trip_and_last_run(store: SqliteStateStore) -> None:
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
    assert done is not None
    assert done.finished_at == T0 + timedelta(hours=1, minutes=5)
    assert done.finished_at.tzinfo is not None
    assert done.totals == {"transfers": 3, "failed": 1}


def test_duplicate_run_and_unknown_finish_are_state_errors(store: SqliteStateStore) -> None:
    store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="already exists"):
        store.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="no run r-9"):
        store.finish_run("r-9", T0, {})


def test_naive_datetime_is_refused(store: SqliteStateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_run(RunInfo("r-1", datetime(2026, 1, 1), "alice"))
    assert store.get_run("r-1") is None


def test_times_are_returned_in_utc(store: SqliteStateStore) -> None:
    paris = datetime(2026, 11, 18, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    store.start_run(RunInfo("r-1", paris, "alice"))
    run = store.get_run("r-1")
    assert (
        run is not None and run.started_at == paris and run.started_at.utcoffset() == timedelta(0)
    )


def test_transfer_round_trip_and_update(store: SqliteStateStore) -> None:
    store.set_transfer(TransferRecord("b-com", "sha-b", "running", T0, "r-1"))
    store.set_transfer(TransferRecord("a-com", "sha-a", "pending", T0))
    store.set_transfer(TransferRecord("b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"))
    assert store.get_transfer("b-com") == TransferRecord(
        "b-com", "sha-b2", "succeeded", T0 + timedelta(1), "r-2"
    )
    assert [t.name for t in store.list_transfers()] == ["a-com", "b-com"]
    assert store.get_transfer("zzz") is None


def test_steps_round_trip_outputs_as_json(store: SqliteStateStore) -> None:
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


def test_latest_steps_is_last_record_per_task_across_runs(store: SqliteStateStore) -> None:
    store.record_step(_step("r-1", "acme-com", 0, "verify", "ok"))
    store.record_step(_step("r-1", "acme-com", 1, "charge", "failed", message="declined"))
    store.record_step(_step("r-2", "acme-com", 1, "charge", "changed", outputs={"id": "ch-1"}))
    store.record_step(_step("r-2", "other", 1, "charge", "failed"))
    latest = store.latest_steps("acme-com")
    assert set(latest) == {"verify", "charge"}
    assert latest["charge"].run_id == "r-2" and latest["charge"].outputs == {"id": "ch-1"}
    assert latest["verify"].run_id == "r-1"
    assert store.latest_steps("nobody") == {}


def test_unserialisable_output_fails_and_records_nothing(store: SqliteStateStore) -> None:
    with pytest.raises(TypeError, match="cannot store a object"):
        store.record_step(_step("r-1", "acme-com", 0, "x", outputs={"bad": object()}))
    assert store.run_steps("r-1") == [] and store.events() == []


# -- events --------------------------------------------------------------------------------
def test_events_in_order_with_step_events(store: SqliteStateStore) -> None:
    store.append_event("r-1", "acme-com", "transfer_started", {"path": "t/acme.yml"})
    store.record_step(_step("r-1", "acme-com", 0, "verify", "ok", message="fine"))
    store.append_event("r-1", None, "run_note", {"n": Decimal("1.5")})
    store.append_event("r-1", "acme-com", "transfer_finished", {"status": "unchanged"})
    events = store.events()
    assert [e["kind"] for e in events] == [
        "transfer_started",
        "step",
        "run_note",
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


@pytest.mark.parametrize(
    "sql", ["UPDATE events SET kind = 'forged'", "DELETE FROM events", "DELETE FROM events WHERE 1"]
)
def test_events_are_append_only(tmp_path: Path, sql: str) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    store.append_event("r-1", "acme-com", "locked", {"holder": "x"})
    store.close()
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
        conn.rollback()
        assert conn.execute("SELECT kind FROM events").fetchall() == [("locked",)]
    finally:
        conn.close()


# -- ticket claims -------------------------------------------------------------------------
def test_claim_ticket_first_claim_wins(store: SqliteStateStore) -> None:
    assert store.ticket_claim("T-5001") is None
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.claim_ticket("T-5001", "other-com") == "acme-com"
    assert store.claim_ticket("T-5001", "acme-com") == "acme-com"
    assert store.ticket_claim("T-5001") == "acme-com"
    assert store.claim_ticket("T-5002", "other-com") == "other-com"


def test_claim_ticket_race_between_threads(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    holders: list[str] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        holders.append(store.claim_ticket("T-1", f"t-{i}"))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(holders) == 8 and len(set(holders)) == 1
        assert store.ticket_claim("T-1") == holders[0]
    finally:
        store.close()


# -- locks ---------------------------------------------------------------------------------
def test_lock_acquire_contention_renew_release(store: SqliteStateStore) -> None:
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


def test_expired_lock_is_taken_over(store: SqliteStateStore) -> None:
    assert store.acquire_lock("acme-com", "dead", "r-dead", "gone", -1)
    assert store.acquire_lock("acme-com", "bob", "r-2", "h2", 600)
    lock = store.get_lock("acme-com")
    assert lock is not None and lock.run_id == "r-2"
    assert not store.renew_lock("acme-com", "r-dead", 600)  # the old holder lost it


def test_same_run_reacquires_its_own_lock(store: SqliteStateStore) -> None:
    assert store.acquire_lock("acme-com", "alice", "r-1", "h1", 600)
    assert store.acquire_lock("acme-com", "alice", "r-1", "h1", 600)


def test_force_unlock(store: SqliteStateStore) -> None:
    assert store.force_unlock("acme-com") is None
    store.acquire_lock("acme-com", "ci-job-7", "r-7", "runner-3", 600)
    removed = store.force_unlock("acme-com")
    assert removed is not None and (removed.owner, removed.run_id) == ("ci-job-7", "r-7")
    assert store.get_lock("acme-com") is None
    assert store.acquire_lock("acme-com", "alice", "r-8", "h1", 600)


def _race(path: str, run_id: str, start: Any, out: Any) -> None:
    store = SqliteStateStore(path)
    start.wait()
    won = store.acquire_lock("acme-com", f"owner-{run_id}", run_id, "host", 600)
    out.put((run_id, won))
    store.close()


def test_two_processes_race_for_one_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, f"r-{i}", start, out)) for i in range(4)]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    winners = [run for run, won in results.items() if won]
    assert len(winners) == 1
    store = SqliteStateStore(path, read_only=True)
    try:
        lock = store.get_lock("acme-com")
        assert lock is not None and lock.run_id == winners[0]
    finally:
        store.close()


# -- read-only -----------------------------------------------------------------------------
def test_read_only_missing_file_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "state.db"
    store = SqliteStateStore(path, read_only=True)
    try:
        assert store.last_run() is None
        assert store.get_run("r-1") is None
        assert store.list_transfers() == []
        assert store.latest_steps("acme-com") == {}
        assert store.run_steps("r-1") == []
        assert store.events() == []
        assert store.get_lock("acme-com") is None
        assert store.ticket_claim("T-1") is None
        with pytest.raises(StateError, match="read-only"):
            store.append_event("r-1", None, "x", {})
        with pytest.raises(StateError, match="read-only"):
            store.acquire_lock("acme-com", "o", "r", "h", 60)
    finally:
        store.close()
    assert list(tmp_path.iterdir()) == []


def test_read_only_existing_file_reads_but_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    writer = SqliteStateStore(path)
    writer.start_run(RunInfo("r-1", T0, "alice"))
    writer.claim_ticket("T-1", "acme-com")
    reader = SqliteStateStore(path, read_only=True)
    try:
        run = reader.last_run()
        assert run is not None and run.id == "r-1"
        assert reader.ticket_claim("T-1") == "acme-com"
        with pytest.raises(StateError, match="read-only"):
            reader.claim_ticket("T-2", "acme-com")
        writer.start_run(RunInfo("r-2", T0 + timedelta(1), "alice"))  # visible to the reader
        run = reader.last_run()
        assert run is not None and run.id == "r-2"
    finally:
        reader.close()
        writer.close()


def test_not_a_database_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="state.db"):
        SqliteStateStore(path)
    with pytest.raises(StateError, match="state.db"):
        SqliteStateStore(path, read_only=True)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for read_only in (False, True):
        with pytest.raises(StateError, match="newer than this transfer-runner"):
            SqliteStateStore(path, read_only=read_only)


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.get_lock("x")


def test_threads_each_get_a_connection_and_all_writes_land(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")

    def work(i: int) -> None:
        for j in range(10):
            store.record_step(_step(f"r-{i}", f"t-{i}", j, f"s-{j}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(store.events()) == 60
        assert all(len(store.run_steps(f"r-{i}")) == 10 for i in range(6))
    finally:
        store.close()


def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        for i in range(20):
            t = threading.Thread(target=store.acquire_lock, args=(f"t-{i}", "o", "r", "h", 60))
            t.start()
            t.join()
        assert len(store._all) <= 2  # this thread's, and at most the last ended thread's
        assert all(store.get_lock(f"t-{i}") is not None for i in range(20))
    finally:
        store.close()


# -- open_state ------------------------------------------------------------------------------
def test_open_state_forms(tmp_path: Path) -> None:
    assert DEFAULT_STATE_URL == "sqlite:.transfer-runner/state.db"
    for url in (f"sqlite:{tmp_path}/a.db", str(tmp_path / "b.db")):
        store = open_state(url)
        assert isinstance(store, SqliteStateStore)
        store.close()
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    ro = open_state(f"sqlite:{tmp_path}/c.db", read_only=True)
    assert isinstance(ro, SqliteStateStore) and ro.read_only
    ro.close()
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("S3://bucket/prefix", "must look like s3://BUCKET/PREFIX"),
        ("postgres://db/x", "sqlite:PATH"),
        ("", "sqlite:PATH"),
        ("sqlite:", "no path"),
    ],
)
def test_open_state_rejects(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_state(url)
