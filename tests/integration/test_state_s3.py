"""The S3 state store against a real S3 server on loopback (SeaweedFS, or moto's server):
conditional writes honoured, lock and ticket races between processes and threads, stale-lock
takeover only after expiry, and a whole apply (then an unchanged re-apply) on S3 state."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_world
from transfer_runner import commands
from transfer_runner.config import Settings
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
from transfer_runner.state.open import open_state
from transfer_runner.state.s3 import S3StateStore

pytestmark = pytest.mark.integration


def _url(server: Any, prefix: str) -> str:
    return f"s3://{server.bucket}/{prefix}/state"


def test_the_server_honours_conditional_writes(s3_server: Any, s3_env: str) -> None:
    assert s3_server.supports_conditional_writes()
    store = S3StateStore(_url(s3_server, s3_env))
    try:
        assert store.acquire_lock("acme", "alice", "r-1", "h1", 600)
        other = S3StateStore(_url(s3_server, s3_env))
        assert other.force_unlock("acme") is not None
        assert not store.renew_lock("acme", "r-1", 600)  # If-Match on our ETag: refused
        assert store.acquire_lock("acme", "alice", "r-2", "h1", 600)
        store.release_lock("acme", "r-2")
        assert store.get_lock("acme") is None and other.get_lock("acme") is None
        other.close()
    finally:
        store.close()


def _race_for_lock(url: str, run_id: str, start: Any, out: Any) -> None:
    store = S3StateStore(url)
    try:
        start.wait()
        out.put((run_id, store.acquire_lock("acme-com", f"owner-{run_id}", run_id, "h", 600)))
    finally:
        store.close()


def test_processes_race_for_one_lock_and_exactly_one_wins(s3_server: Any, s3_env: str) -> None:
    url = _url(s3_server, s3_env)
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded pytest
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race_for_lock, args=(url, f"r-{i}", start, out)) for i in range(4)]
    for p in procs:
        p.start()
    start.set()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    winners = [run for run, won in results.items() if won]
    assert len(winners) == 1
    store = S3StateStore(url, read_only=True)
    try:
        lock = store.get_lock("acme-com")
        assert lock is not None and lock.run_id == winners[0]
    finally:
        store.close()


def test_a_stale_lock_is_taken_over_only_after_its_lease_expired(
    s3_server: Any, s3_env: str
) -> None:
    url = _url(s3_server, s3_env)
    first, second = S3StateStore(url), S3StateStore(url)
    try:
        assert first.acquire_lock("acme", "crashing", "r-1", "h1", 1.5)
        held = first.get_lock("acme")
        assert held is not None
        assert not second.acquire_lock("acme", "bob", "r-2", "h2", 600)  # still live
        while time.time() <= held.expires_at.timestamp():
            time.sleep(0.1)
        assert second.acquire_lock("acme", "bob", "r-2", "h2", 600)
        assert not first.renew_lock("acme", "r-1", 600)  # the crashed runner lost its lease
        first.release_lock("acme", "r-1")  # not ours any more: no-op
        lock = second.get_lock("acme")
        assert lock is not None and lock.run_id == "r-2"
    finally:
        first.close()
        second.close()


def _world(root: Path, server: Any, prefix: str) -> tuple[Settings, Path]:
    transfers = write_world(root, globex=True).manifests
    settings = Settings(
        platform=f"sandbox:{root / 'sandbox.db'}",
        state=_url(server, prefix),
        export_to=f"s3://{server.bucket}/{prefix}/exports",
        part_size_mib=1,
    )
    return settings, transfers


def _platform_writes(settings: Settings) -> int:
    platform = SandboxPlatform(settings.platform.removeprefix("sandbox:"))
    try:
        return platform.write_calls()
    finally:
        platform.close()


def test_apply_on_s3_state_then_an_unchanged_reapply(
    tmp_path: Path, s3_server: Any, s3_env: str
) -> None:
    settings, transfers = _world(tmp_path, s3_server, s3_env)
    first = commands.apply(settings, commands.Selection([str(transfers)]))
    assert {t.name: t.status for t in first.transfers} == {
        "acme-com": "succeeded",
        "globex-io": "succeeded",
    }
    writes = _platform_writes(settings)
    assert writes > 0

    again = commands.apply(settings, commands.Selection([str(transfers)]))
    assert {t.status for t in again.transfers} == {"unchanged"}
    assert _platform_writes(settings) == writes  # the re-apply wrote nothing to the platform

    state = open_state(settings.state, read_only=True)
    try:
        assert {t.name: t.status for t in state.list_transfers()} == {
            "acme-com": "succeeded",
            "globex-io": "succeeded",
        }
        assert state.get_lock("acme-com") is None and state.get_lock("globex-io") is None
        last = state.last_run()
        assert last is not None and last.id == again.run_id and last.finished_at is not None
        assert len(state.run_steps(first.run_id)) == sum(len(t.steps) for t in first.transfers)
        assert state.ticket_claim("T-5001") == "acme-com"
    finally:
        state.close()
    report = commands.report(settings)
    assert report.run_id == again.run_id
    assert {t.name: t.status for t in report.transfers} == {
        "acme-com": "unchanged",
        "globex-io": "unchanged",
    }


def test_a_transfer_locked_on_s3_is_skipped_then_unlocked(
    tmp_path: Path, s3_server: Any, s3_env: str
) -> None:
    settings, transfers = _world(tmp_path, s3_server, s3_env)
    other = S3StateStore(settings.state)
    try:
        assert other.acquire_lock("acme-com", "ci-job-7", "r-other", "runner-3", 600)
    finally:
        other.close()
    report = commands.apply(settings, commands.Selection([str(transfers / "acme-com.yml")]))
    [result] = report.transfers
    assert result.status == "locked" and "ci-job-7" in result.message
    assert _platform_writes(settings) == 0
    assert commands.unlock(settings, "acme-com").owner == "ci-job-7"
    assert commands.apply(
        settings, commands.Selection([str(transfers / "acme-com.yml")])
    ).transfers[0].status == ("succeeded")
