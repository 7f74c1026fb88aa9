"""Interactive `apply` on a terminal (a pseudo-terminal): the confirmation shows exactly what
will run (the shard, the limit), and `apply PLAN` asks about that saved plan."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import make_cli_world
from transfer_runner.platforms.sandbox import SandboxPlatform
from transfer_runner.sharding import shard_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

WAIT_S = 120.0  # a bound on waiting for the child, never a synchronisation
PROMPT = b"[y/N]: "


def in_terminal(tmp_path: Path, env: dict[str, str], answer: str, *args: str) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal; answer its prompt; (exit code, all it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "transfer_runner", *args], cwd=tmp_path, env=env,
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()
    answered = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], WAIT_S)
            if not ready:
                proc.kill()
                pytest.fail(f"no output for {WAIT_S} s:\n{seen.decode(errors='replace')}")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and seen.endswith(PROMPT):
                os.write(master, answer.encode() + b"\n")
                answered = True
    finally:
        os.close(master)
    return proc.wait(WAIT_S), seen.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def world(tmp_path: Path, s3_server: Any) -> dict[str, str]:
    return make_cli_world(tmp_path, s3_server, "ask")


def _writes(tmp_path: Path) -> int:
    with SandboxPlatform(tmp_path / "sandbox.db") as platform:
        return platform.write_calls()


def test_the_prompt_shows_the_shard_that_runs_and_no_answers_no(
    tmp_path: Path, world: dict[str, str]
) -> None:
    index = shard_of("acme-com", 2)
    assert shard_of("globex-io", 2) != index, "the two fixture names share a shard"
    before = _writes(tmp_path)
    code, out = in_terminal(tmp_path, world, "n", "apply", "transfers", "--shard", f"{index}/2")
    assert code == 1, out
    shown, _, after = out.partition("Apply these changes")
    assert "acme-com (transfers/acme-com.yml): pending" in shown
    assert "globex-io" not in shown  # the other shard's transfer is not what runs here
    assert "(1 of 1 selected transfers)?" in after and "aborted" in after
    assert _writes(tmp_path) == before


def test_apply_of_a_saved_plan_asks_about_that_plan(tmp_path: Path, world: dict[str, str]) -> None:
    saved = subprocess.run(
        [sys.executable, "-m", "transfer_runner", "plan", "transfers", "--limit", "globex-io",
         "--out", "plan.json"], cwd=tmp_path, env=world, capture_output=True, text=True,
        timeout=WAIT_S,
    )  # fmt: skip
    assert saved.returncode == 2, saved.stderr  # changes pending
    code, out = in_terminal(tmp_path, world, "y", "apply", "plan.json")
    assert code == 0, out
    shown, _, after = out.partition("Apply this saved plan (1 transfer)?")
    assert shown.startswith("saved plan plan.json (run r-")
    assert "globex-io (transfers/globex-io.yml): pending" in shown
    assert "acme-com" not in shown
    assert "1 succeeded" in after
