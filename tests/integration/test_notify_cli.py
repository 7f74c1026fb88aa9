"""End to end: `apply` POSTs its summary to TRANSFER_RUNNER_NOTIFY_URL, never shows the URL,
and a webhook that fails changes nothing but a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.builders import GLOBEX, manifest
from tests.cli_world import CliWorld
from tests.webhook import SECRET, Hook

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_apply_notifies_the_webhook_once_with_the_wave(tmp_path: Path, s3_server: Any) -> None:
    world = CliWorld(tmp_path, s3_server, "notify")
    bad = manifest("globex-io", **{**GLOBEX, "reseller_name": "Someone Else Ltd"})
    (tmp_path / "transfers" / "globex-io.yml").write_text(bad, encoding="utf-8")
    hook = Hook([])
    try:
        env = {**world.env, "TRANSFER_RUNNER_NOTIFY_URL": hook.url}
        done = world.run("apply", "transfers", "--yes", env=env)
    finally:
        hook.close()
    assert done.returncode == 1, done.stderr  # globex-io failed, as without a webhook
    [body] = hook.bodies
    assert body["totals"]["transfers_succeeded"] == 1 and body["attention_count"] == 1
    assert body["attention"][0]["name"] == "globex-io"
    assert "needs attention: globex-io" in body["text"]
    assert SECRET not in done.stdout + done.stderr


def test_a_failing_webhook_only_warns(tmp_path: Path, s3_server: Any) -> None:
    world = CliWorld(tmp_path, s3_server, "notify-down", globex=False)
    hook = Hook([500, 500, 500])
    try:
        env = {**world.env, "TRANSFER_RUNNER_NOTIFY_URL": hook.url}
        done = world.run("apply", "transfers", "--yes", env=env)
    finally:
        hook.close()
    assert done.returncode == 0, done.stderr
    assert len(hook.bodies) == 3
    assert "warning: notification not sent: the webhook answered 500" in done.stderr
    assert SECRET not in done.stdout + done.stderr
