"""The SQLite state store: its file, schema, append-only events, connections per thread,
processes racing and read-only opening. The StateStore semantics every backend shares are in
tests/contracts/state_store.py (run on SQLite by tests/unit/test_state_contract.py)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.state.open import DEFAULT_STATE_URL, open_state
from transfer_runner.state.sqlite import SCHEMA_VERSION, SqliteStateStore


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStateStore(tmp_path / "nested" / "dir" / "state.db")
    yield s
    s.close()


# -- the file ------------------------------------------------------------------------------
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


# -- events --------------------------------------------------------------------------------
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


# -- locks ---------------------------------------------------------------------------------
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
