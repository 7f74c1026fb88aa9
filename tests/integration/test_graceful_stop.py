"""Stopping `apply` with a signal, in a subprocess, at a known moment.

The run is paused inside a step by the pause hook (`transfer_runner.kill_points`), signalled there,
then let go: what it does next is decided by the signal alone, never by timing.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import cli_ok as _cli
from tests.cli_world import make_cli_world
from tests.paused_child import Child

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def world(tmp_path: Path, s3_server: Any) -> dict[str, str]:
    """Two transfers (acme-com, then globex-io) on a fresh sandbox with SQLite state."""
    return make_cli_world(tmp_path, s3_server, "stop")


APPLY = ("transfers", "--yes", "--report-json", "report.json", "--junit", "junit.xml")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_first_signal_finishes_the_running_step_and_stops_the_wave(
    tmp_path: Path, world: dict[str, str], sig: int
) -> None:
    child = Child(tmp_path, world, "before-step-3#1", *APPLY)
    assert child.reached() == "before-step-3"  # acme-com is about to create its new account
    child.proc.send_signal(sig)
    child.stderr_until(f"{signal.Signals(sig).name}: stopping")  # handled before the step ends
    child.resume()
    code, out, err = child.finish()

    assert code == 128 + sig, (out, err)
    assert "[interrupted]" in out and "[not_started]" in out
    assert f"stopped by {signal.Signals(sig).name}: 1 interrupted, 1 not started" in out
    report = json.loads((tmp_path / "report.json").read_text())
    by_name = {t["name"]: t for t in report["transfers"]}
    assert by_name["acme-com"]["status"] == "interrupted"
    steps = by_name["acme-com"]["steps"]  # the paused step finished and was recorded
    assert len(steps) == 3 and steps[-1]["name"].startswith("Ensure the new account")
    assert steps[-1]["status"] == "changed"
    assert by_name["globex-io"]["status"] == "not_started"
    assert report["totals"]["transfers_not_started"] == 1
    assert "not started" in (tmp_path / "junit.xml").read_text()
    assert (tmp_path / "transfer-runner.retry").read_text().split() == ["acme-com", "globex-io"]

    status = json.loads(_cli(tmp_path, world, "status", "--json"))
    assert [(s["name"], s["status"], s["lock"]) for s in status] == [("acme-com", "pending", None)]
    recorded = _cli(tmp_path, world, "report")
    assert "interrupted" in recorded and "not_started" in recorded

    resumed = _cli(tmp_path, world, "apply", "transfers", "--yes", "--limit",
                   "@transfer-runner.retry")  # fmt: skip
    assert "2 succeeded" in resumed
    world_after = json.loads(_cli(tmp_path, world, "sandbox", "dump", "sandbox.db"))
    assert len([a for a in world_after["accounts"] if a["type"] == "resold"]) == 2
    assert sorted(c["idempotency_key"] for c in world_after["charges"]) == [
        "transfer-fee:acme-com", "transfer-fee:globex-io"
    ]  # fmt: skip


def test_a_second_signal_stops_at_once(tmp_path: Path, world: dict[str, str]) -> None:
    child = Child(tmp_path, world, "before-step-3#1", *APPLY)
    child.reached()
    child.proc.send_signal(signal.SIGTERM)
    child.stderr_until("SIGTERM: stopping")  # handled: a second one now is not merged into it
    child.proc.send_signal(signal.SIGTERM)  # the step is still paused: nothing can finish it
    code, out, err = child.finish()
    assert code == 143, (out, err)
    assert "stopped at once (SIGTERM again)" in err
    world_after = json.loads(_cli(tmp_path, world, "sandbox", "dump", "sandbox.db"))
    assert [a for a in world_after["accounts"] if a["type"] == "resold"] == []

    # The dead process still holds acme-com's lease (900 s); a run on this machine sees the
    # process gone and takes the lease over at once, instead of reporting it locked.
    status = json.loads(_cli(tmp_path, world, "status", "--json"))
    lock = next(s["lock"] for s in status if s["name"] == "acme-com")
    assert lock is not None and lock["pid"] == child.proc.pid and lock["holder_gone"] is True
    assert "its process is gone" in _cli(tmp_path, world, "status")
    resumed = _cli(tmp_path, world, "apply", "transfers", "--yes")
    assert "2 succeeded" in resumed
    world_after = json.loads(_cli(tmp_path, world, "sandbox", "dump", "sandbox.db"))
    assert len([a for a in world_after["accounts"] if a["type"] == "resold"]) == 2
    assert len(world_after["charges"]) == 2


def test_the_grace_period_bounds_the_wait_for_running_steps(
    tmp_path: Path, world: dict[str, str]
) -> None:
    child = Child(tmp_path, world, "before-step-3#1", *APPLY, "--grace", "0")
    child.reached()
    child.proc.send_signal(signal.SIGTERM)  # the paused step never finishes: grace runs out
    code, out, err = child.finish()
    assert code == 143, (out, err)
    assert "stopped at once (the grace period of 0 s is over)" in err
