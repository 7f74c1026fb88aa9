"""`abort` from the CLI, in subprocesses: a dry run, an abort killed (SIGKILL) right after the
platform cancelled the new account, resumed by running it again; a refusal past the point of
no return."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import CliWorld

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

WAIT_S = 120
REASON = "customer withdrew by phone (T-5001)"


@pytest.fixture
def world(tmp_path: Path, s3_server: Any) -> CliWorld:
    return CliWorld(tmp_path, s3_server, "ab", globex=False)


def test_an_abort_killed_mid_way_is_resumed(world: CliWorld) -> None:
    world.ok("apply", "transfers", "--yes", "--tags", "account")  # tickets, the new account
    [new] = [a for a in world.dump()["accounts"] if a["type"] == "resold"]
    assert new["status"] == "active" and new["domains"] == ["gdi.acme.com"]

    dry = world.ok("abort", "acme-com", "transfers", "--reason", REASON, "--dry-run")
    assert f"would: cancel the new account {new['id']}" in dry
    assert "would: detach the temporary domain gdi.acme.com" in dry
    assert "acme-com: would abort" in dry
    assert [a for a in world.dump()["accounts"] if a["id"] == new["id"]] == [new]

    crash = {**world.env, "TRANSFER_RUNNER_CRASH_AT": "platform-after-cancel_account"}
    killed = world.run("abort", "acme-com", "transfers", "--reason", REASON, env=crash)
    assert killed.returncode == -9, (killed.stdout, killed.stderr)
    [half] = [a for a in world.dump()["accounts"] if a["id"] == new["id"]]
    assert half["status"] == "cancelled" and half["domains"] == ["gdi.acme.com"]

    resumed = world.ok("abort", "acme-com", "transfers", "--reason", REASON)
    assert "cancel the new account" not in resumed  # done by the killed run
    assert "done: detach the temporary domain gdi.acme.com" in resumed
    assert "acme-com: aborted" in resumed
    dump = world.dump()
    [gone] = [a for a in dump["accounts"] if a["id"] == new["id"]]
    assert gone["status"] == "cancelled" and gone["domains"] == []
    [direct] = [a for a in dump["accounts"] if a["id"] == "C-1001"]
    assert direct["status"] == "active" and sorted(direct["domains"]) == ["acme.com", "acme.net"]
    status = json.loads(world.ok("status", "--json", "acme-com"))
    assert status[0]["status"] == "aborted" and status[0]["lock"] is None

    applied = world.run("apply", "transfers", "--yes")
    assert applied.returncode == 0, applied.stdout
    assert "[aborted]" in applied.stdout and "aborted by " in applied.stdout


def test_abort_past_the_point_of_no_return_is_refused(world: CliWorld) -> None:
    world.ok("apply", "transfers", "--yes")
    refused = world.run("abort", "acme-com", "transfers", "--reason", REASON)
    assert refused.returncode == 1
    assert refused.stderr.startswith("abort refused: acme-com is completed")
    missing = world.run("abort", "acme-com", "transfers", "--reason", "  ")
    assert missing.returncode == 1 and "abort needs --reason TEXT" in missing.stderr
