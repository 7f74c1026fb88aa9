"""The lease check before every platform write (I6): a read while the lease has time left, a
renewal when it is about to run out, a refusal when another runner holds it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from transfer_runner.engine.task import lease_held
from transfer_runner.state.sqlite import SqliteStateStore


def _expire_in(path: Path, name: str, seconds: float) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE locks SET expires_at = ? WHERE name = ?", (at, name))
        conn.commit()
    finally:
        conn.close()


def test_a_lease_with_time_left_is_read_not_renewed(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        assert store.acquire_lock("acme", "me", "r-1", "h", 600)
        before = store.get_lock("acme")
        run = SimpleNamespace(state=store, run_id="r-1", lock_ttl_s=600)
        assert lease_held(run, "acme")  # type: ignore[arg-type]
        assert store.get_lock("acme") == before
    finally:
        store.close()


def test_a_lease_about_to_expire_is_renewed_before_the_write(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        assert store.acquire_lock("acme", "me", "r-1", "h", 600)
        _expire_in(tmp_path / "state.db", "acme", 5)  # less than a third of 600 s left
        run = SimpleNamespace(state=store, run_id="r-1", lock_ttl_s=600)
        assert lease_held(run, "acme")  # type: ignore[arg-type]
        lock = store.get_lock("acme")
        assert lock is not None and lock.expires_at > datetime.now(UTC) + timedelta(seconds=500)
    finally:
        store.close()


def test_a_lease_taken_over_or_removed_refuses_the_write(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        assert store.acquire_lock("acme", "me", "r-1", "h", 600)
        _expire_in(tmp_path / "state.db", "acme", -1)
        assert store.acquire_lock("acme", "other", "r-2", "h", 600)  # expired: taken over
        mine = SimpleNamespace(state=store, run_id="r-1", lock_ttl_s=600)
        assert not lease_held(mine, "acme")  # type: ignore[arg-type]
        store.force_unlock("acme")
        theirs = SimpleNamespace(state=store, run_id="r-2", lock_ttl_s=600)
        assert not lease_held(theirs, "acme")  # type: ignore[arg-type]
    finally:
        store.close()
