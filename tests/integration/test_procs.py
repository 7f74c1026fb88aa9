"""`apply --procs 2` through the CLI: two worker processes run the wave at once (both paused
inside a step, each holding its transfer's lease), one recap and one report come out, each
transfer is applied once; a signal stops every worker gracefully; a dead worker fails what
had not finished, and the next run takes its leases over at once and completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import cli_ok as _cli
from tests.cli_world import make_cli_world
from tests.paused_child import WAIT_S, Child
from transfer_runner.apply_processes import auto_procs, worker_bulk
from transfer_runner.command_types import BulkOptions

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

APPLY = ("transfers", "--yes", "--procs", "2", "--report-json", "report.json")


@pytest.fixture(params=["sqlite", "s3"])
def world(request: pytest.FixtureRequest, tmp_path: Path, s3_server: Any) -> dict[str, str]:
    """acme-com and globex-io on a fresh sandbox, with SQLite or S3 state."""
    env = make_cli_world(tmp_path, s3_server, "procs")
    if request.param == "s3":
        # beside the exports, never under them (the runner refuses prefixes that overlap)
        env["TRANSFER_RUNNER_STATE"] = env["TRANSFER_RUNNER_EXPORT_TO"] + "-state"
    return env


def _dump(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(_cli(tmp_path, env, "sandbox", "dump", "sandbox.db")))


def _leases(tmp_path: Path, env: dict[str, str]) -> dict[str, int]:
    status = json.loads(_cli(tmp_path, env, "status", "--json"))
    return {s["name"]: s["lock"]["pid"] for s in status if s["lock"]}


def test_two_processes_run_the_wave_and_each_transfer_once(
    tmp_path: Path, world: dict[str, str]
) -> None:
    child = Child(tmp_path, world, "before-step-3#1", *APPLY, "--forks", "1")
    assert child.reached(count=2) == "before-step-3"  # both at once: two processes
    leases = _leases(tmp_path, world)
    assert set(leases) == {"acme-com", "globex-io"}
    assert set(leases.values()) == set(child.paused)  # each lease is its worker's
    assert child.proc.pid not in leases.values()  # not the CLI's own process
    for pid in list(child.paused):
        child.resume(pid)
    code, out, err = child.finish()

    assert code == 0, (out, err)
    assert out.count("RECAP **") == 1 and "2 succeeded" in out, out
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(t["name"] for t in report["transfers"]) == ["acme-com", "globex-io"]
    assert all(len(t["steps"]) == 15 for t in report["transfers"])
    world_after = _dump(tmp_path, world)
    assert len([a for a in world_after["accounts"] if a["type"] == "resold"]) == 2
    assert sorted(c["idempotency_key"] for c in world_after["charges"]) == [
        "transfer-fee:acme-com", "transfer-fee:globex-io"
    ]  # fmt: skip
    assert _leases(tmp_path, world) == {}
    assert "2 unchanged" in _cli(tmp_path, world, "apply", *APPLY)
    assert _dump(tmp_path, world)["charges"] == world_after["charges"]


def test_a_ctrl_c_to_the_process_group_stops_every_worker_once(
    tmp_path: Path, world: dict[str, str]
) -> None:
    """A terminal signals the CLI and its workers; the workers leave the stop to the CLI, so
    the running steps finish and are recorded: not "stopped at once"."""
    child = Child(tmp_path, world, "before-step-3#1", *APPLY, "--forks", "1", group=True)
    child.reached(count=2)
    os.killpg(child.proc.pid, signal.SIGINT)
    child.stderr_until("SIGINT: stopping")
    for pid in list(child.paused):
        child.resume(pid)
    code, out, err = child.finish()

    assert code == 130, (out, err)
    assert "stopped at once" not in err
    assert "stopped by SIGINT: 2 interrupted, 0 not started" in out, out
    report = json.loads((tmp_path / "report.json").read_text())
    for transfer in report["transfers"]:
        assert transfer["status"] == "interrupted"
        assert [s["status"] for s in transfer["steps"]][-1] == "changed"  # step 3 finished
    assert _leases(tmp_path, world) == {}
    assert "2 succeeded" in _cli(tmp_path, world, "apply", *APPLY)


def test_a_dead_worker_fails_its_transfers_and_the_next_run_takes_over_at_once(
    tmp_path: Path, world: dict[str, str]
) -> None:
    child = Child(tmp_path, world, "before-step-3#1", *APPLY, "--forks", "1")
    child.reached(count=2)
    os.kill(child.paused[0], signal.SIGKILL)  # the pool then stops the other worker too
    code, out, err = child.finish()

    assert code == 1, (out, err)
    report = json.loads((tmp_path / "report.json").read_text())
    assert {t["status"] for t in report["transfers"]} == {"failed"}
    assert "worker process died" in out
    leases = _leases(tmp_path, world)
    assert set(leases.values()) <= set(child.paused)  # held by processes that are gone
    resumed = _cli(tmp_path, world, "apply", *APPLY)  # no wait for the 900 s leases
    assert "2 succeeded" in resumed, resumed
    world_after = _dump(tmp_path, world)
    assert len([a for a in world_after["accounts"] if a["type"] == "resold"]) == 2
    assert len(world_after["charges"]) == 2


def test_auto_is_one_process_per_core_and_no_more_than_the_forks_need() -> None:
    cores = len(os.sched_getaffinity(0))
    assert auto_procs(transfers=1000, forks=8) == cores
    assert auto_procs(transfers=5, forks=8) == 1  # one process keeps all 5 running
    assert auto_procs(transfers=9, forks=8) == min(cores, 2)


def test_the_platform_throttle_is_shared_between_the_workers() -> None:
    bulk = BulkOptions(max_platform_calls_per_second=10.0, max_platform_concurrency=5)
    each = worker_bulk(bulk, 4)
    assert each.max_platform_calls_per_second == 2.5 and each.max_platform_concurrency == 1
    assert worker_bulk(BulkOptions(), 4) == BulkOptions()


@pytest.mark.parametrize("value", ["0", "-1", "two", "257"])
def test_a_bad_procs_value_is_a_usage_error(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "transfer_runner", "apply", "x", "--yes", "--procs", value],
        cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert done.returncode == 1 and "Invalid value for '--procs'" in done.stderr, done.stderr
