"""I6 across processes: two `apply` runs on the same manifests and the same S3 state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_manifests

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _env(tmp_path: Path, s3_server: Any, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSFER_RUNNER_"))}
    env.update(s3_server.env())
    env.update(
        TRANSFER_RUNNER_PLATFORM=f"sandbox:{tmp_path / 'sandbox.db'}",
        TRANSFER_RUNNER_STATE=f"s3://{s3_server.bucket}/{prefix}/state",
        TRANSFER_RUNNER_EXPORT_TO=f"s3://{s3_server.bucket}/{prefix}/exports",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "transfer_runner", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("shards", [None, ("1/1", "1/1")], ids=["same-run", "overlapping-shards"])
def test_two_runners_execute_each_transfer_once(tmp_path: Path, s3_server: Any, shards) -> None:
    write_manifests(tmp_path, globex=True)
    env = _env(tmp_path, s3_server, f"race-{tmp_path.name[-10:]}".lower().replace("_", "-"))
    init = _run(tmp_path, env, "sandbox", "init", "sandbox.db", "--fixture", "fixture.yml")
    assert init.wait(60) == 0, init.stderr.read() if init.stderr else ""

    extra = [["--shard", s] for s in shards] if shards else [[], []]
    runners = [
        _run(
            tmp_path,
            env,
            "apply",
            "transfers",
            "--yes",
            "--retry-file",
            f"retry-{i}",
            "--report-json",
            f"report-{i}.json",
            *extra[i],
        )  # fmt: skip
        for i in range(2)
    ]
    outputs = [r.communicate(timeout=300) for r in runners]
    codes = [r.returncode for r in runners]
    assert all(code in (0, 3) for code in codes), (codes, outputs)

    statuses: dict[str, list[str]] = {}
    for i in range(2):
        report = json.loads((tmp_path / f"report-{i}.json").read_text())
        for t in report["transfers"]:
            statuses.setdefault(t["name"], []).append(t["status"])
    for name, seen in statuses.items():
        assert seen.count("succeeded") == 1, (name, seen)  # executed by exactly one runner
        assert set(seen) <= {"succeeded", "locked", "unchanged"}, (name, seen)

    dump = subprocess.run(
        [sys.executable, "-m", "transfer_runner", "sandbox", "dump", "sandbox.db"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    world = json.loads(dump.stdout)
    assert len([a for a in world["accounts"] if a["type"] == "resold"]) == 2
    assert sorted(c["idempotency_key"] for c in world["charges"]) == [
        "transfer-fee:acme-com", "transfer-fee:globex-io"
    ]  # fmt: skip
    assert len(world["credits"]) == 2


def test_a_crashed_runners_lock_is_taken_over_only_after_its_lease(
    tmp_path: Path, s3_server: Any
) -> None:
    """Runner A, on another machine, is SIGKILLed mid-export holding acme-com's lock (lease
    6 s). Runner B, started at once, finds the lock live: exit 3, no platform write. Runner C,
    after the lease has expired, takes the lock over and completes the transfer: one account,
    one fee. (A holder on this machine whose process is gone is taken over at once:
    tests/integration/test_graceful_stop.py.)"""
    write_manifests(tmp_path)
    prefix = f"stale-{tmp_path.name[-10:]}".lower().replace("_", "-")
    env = _env(tmp_path, s3_server, prefix)
    init = _run(tmp_path, env, "sandbox", "init", "sandbox.db", "--fixture", "fixture.yml")
    assert init.wait(60) == 0
    apply = ["apply", "transfers", "--yes", "--lock-ttl", "6"]

    crashing = _run(tmp_path, {**env, "TRANSFER_RUNNER_CRASH_AT": "export-after-part-1"}, *apply)
    crashing.communicate(timeout=120)
    assert crashing.returncode == -9  # killed holding the lock: no release, no cleanup
    killed_at = time.monotonic()
    _as_if_held_elsewhere(s3_server, f"{prefix}/state/transfers/acme-com.json")
    accounts = _dump(tmp_path, env)["accounts"]

    blocked = _run(tmp_path, env, *apply)
    out, err = blocked.communicate(timeout=120)
    assert time.monotonic() - killed_at < 6, "the check must run while the lease is live"
    assert blocked.returncode == 3, (out, err)
    assert "locked" in out
    assert _dump(tmp_path, env)["accounts"] == accounts  # the loser wrote nothing

    time.sleep(max(0.0, 6.5 - (time.monotonic() - killed_at)))
    taking_over = _run(tmp_path, env, *apply)
    out, err = taking_over.communicate(timeout=300)
    assert taking_over.returncode == 0, (out, err)
    world = _dump(tmp_path, env)
    assert len([a for a in world["accounts"] if a["type"] == "resold"]) == 1
    assert [c["idempotency_key"] for c in world["charges"]] == ["transfer-fee:acme-com"]
    assert len(world["credits"]) == 1


def _as_if_held_elsewhere(s3_server: Any, key: str) -> None:
    """Rewrite the lease as another machine's (its process cannot be looked up from here)."""
    s3 = s3_server.client()
    transfer = json.loads(s3.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())
    transfer["lock"]["machine"] = "another-boot-id/4026531836"
    s3.put_object(Bucket=s3_server.bucket, Key=key, Body=json.dumps(transfer).encode())


def _dump(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    dump = subprocess.run(
        [sys.executable, "-m", "transfer_runner", "sandbox", "dump", "sandbox.db"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(dump.stdout)
