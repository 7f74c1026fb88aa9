"""Files that name customers are readable by their owner only, whatever the umask (issue 18
part 4): the SQLite state and its WAL, the sandbox, reports, JUnit, saved plans, the retry
file, logs and `report --out`. The CLI runs in a subprocess under umask 022."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import WAIT_S, CliWorld

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _run(world: CliWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transfer_runner", *args], cwd=world.root, env=world.env,
        capture_output=True, text=True, timeout=WAIT_S, preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_the_runner_writes_is_private_under_a_permissive_umask(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CliWorld(tmp_path, s3_server, "private", globex=False)
    state = tmp_path / "private-state" / "state.db"
    world.env["TRANSFER_RUNNER_STATE"] = f"sqlite:{state}"
    plan = _run(world, "plan", "transfers", "--out", "plan.json")
    assert plan.returncode == 2, plan.stderr
    done = _run(world, "--log-file", "run.log", "--log-level", "info", "apply", "plan.json",
                "--yes", "--report-json", "report.json", "--junit", "junit.xml")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _run(world, "report", "--format", "html", "--out", "report.html").returncode == 0
    written = [state, Path(f"{state}-wal"), Path(f"{state}-shm")] + [
        tmp_path / name
        for name in ("plan.json", "run.log", "report.json", "junit.xml", "report.html")
    ]
    for path in written:
        assert path.exists(), path
        assert _mode(path) == 0o600, f"{path.name}: {oct(_mode(path))}"
    assert _mode(state.parent) == 0o700


def test_the_retry_file_and_a_new_sandbox_are_private(tmp_path: Path, s3_server: Any) -> None:
    world = CliWorld(tmp_path, s3_server, "retry", globex=False)
    (tmp_path / "transfers" / "acme-com.yml").write_text(
        (tmp_path / "transfers" / "acme-com.yml")
        .read_text()
        .replace("T-5001", "T-9999")  # no such ticket: the transfer fails
    )
    done = _run(world, "apply", "transfers", "--yes")
    assert done.returncode == 1
    assert _mode(tmp_path / "transfer-runner.retry") == 0o600
    fresh = _run(world, "sandbox", "init", "fresh.db", "--fixture", "fixture.yml")
    assert fresh.returncode == 0, fresh.stderr
    assert _mode(tmp_path / "fresh.db") == 0o600
