"""`transfer-runner migrate-state` through the CLI against a real S3 server: an S3 state of the
old layout is refused by `status`, moved, then read; a second run does nothing; a SQLite state
is not something to migrate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_state_s3_migrate import old_layout

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transfer_runner", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_an_old_s3_state_is_moved_from_the_cli(tmp_path: Path, s3_server: Any, s3_env: str) -> None:
    old_layout(s3_server.client(), datetime.now(UTC) - timedelta(minutes=1),
               (s3_server.bucket, f"{s3_env}/state/"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSFER_RUNNER_"))}
    env.update(s3_server.env(), PYTHONPATH=str(ROOT))
    state = ("--state", f"s3://{s3_server.bucket}/{s3_env}/state")

    refused = _cli(env, tmp_path, *state, "status")
    assert refused.returncode == 1 and "migrate-state" in refused.stderr, refused.stderr

    moved = _cli(env, tmp_path, *state, "migrate-state")
    assert moved.returncode == 0, moved.stderr
    assert "moved 1 transfers (3 step records, 1 events)" in moved.stdout, moved.stdout
    status = _cli(env, tmp_path, *state, "status", "--json")
    assert status.returncode == 0, status.stderr
    [view] = json.loads(status.stdout)
    assert (view["name"], view["status"]) == ("acme-com", "failed")

    again = _cli(env, tmp_path, *state, "migrate-state")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout

    sqlite = _cli(env, tmp_path, "--state", f"sqlite:{tmp_path / 's.db'}", "migrate-state")
    assert sqlite.returncode == 1 and "moves an S3 state" in sqlite.stderr, sqlite.stderr
