"""A lease whose process is gone is taken over at once, on this machine only, by compare-and-set
on the dead holder's run (I6: never from a live holder, never by two takers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from transfer_runner.engine.leases import holder_gone, this_machine
from transfer_runner.state.base import LockInfo
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.sqlite import SqliteStateStore


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _lock(pid: int | None, machine: str) -> LockInfo:
    now = datetime.now(UTC)
    return LockInfo("acme", "me", "r-1", "h", now, now, pid=pid, machine=machine)


def test_a_dead_process_of_this_machine_is_gone() -> None:
    if not this_machine():
        pytest.skip("this system does not tell its boot id and pid namespace (not Linux)")
    assert holder_gone(_lock(_dead_pid(), this_machine()))


@pytest.mark.parametrize(
    "lock",
    [
        pytest.param(lambda: _lock(os.getpid(), this_machine()), id="this-process"),
        pytest.param(lambda: _lock(os.getppid(), this_machine()), id="a-live-process"),
        pytest.param(lambda: _lock(_dead_pid(), "another-boot/4026531836"), id="another-machine"),
        pytest.param(lambda: _lock(_dead_pid(), ""), id="machine-unknown"),
        pytest.param(lambda: _lock(None, this_machine()), id="pid-unknown"),
    ],
)
def test_anything_less_certain_is_not_gone(lock: Any) -> None:
    assert not holder_gone(lock())


@pytest.fixture(params=["sqlite", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Any]:  # fmt: skip
    if request.param == "sqlite":
        sqlite = SqliteStateStore(tmp_path / "state.db")
        yield sqlite
        sqlite.close()
        return
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="state")
        s3 = S3StateStore("s3://state/team")
        yield s3
        s3.close()


def test_the_lease_records_its_process_and_a_named_dead_run_is_replaced(store: Any) -> None:
    assert store.acquire_lock("acme", "a", "r-dead", "h", 600, pid=4242, machine="m1")
    held = store.get_lock("acme")
    assert (held.pid, held.machine) == (4242, "m1")
    assert not store.acquire_lock("acme", "b", "r-2", "h", 600, pid=7, machine="m1")  # live
    assert not store.acquire_lock(  # the run named is not the holder: a live lease stays
        "acme", "b", "r-2", "h", 600, pid=7, machine="m1", replacing="r-other"
    )
    assert store.acquire_lock("acme", "b", "r-2", "h", 600, pid=7, machine="m1",
                              replacing="r-dead")  # fmt: skip
    assert store.get_lock("acme").run_id == "r-2"
    # A second taker that also saw r-dead finds r-2 there now, and is refused.
    assert not store.acquire_lock("acme", "c", "r-3", "h", 600, replacing="r-dead")
    assert store.renew_lock("acme", "r-2", 600)
    assert store.get_lock("acme").pid == 7
