"""The config file and logging, end to end: the CLI in a subprocess, the sandbox platform and
the loopback S3 server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import CliWorld

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _moved_to_file(world: CliWorld) -> None:
    """Move the world's platform, state and export settings from the environment into
    `transfer-runner.toml` in its directory."""
    keys = {"platform": "PLATFORM", "state": "STATE", "export-to": "EXPORT_TO"}
    lines = [f'{key} = "{world.env.pop(f"TRANSFER_RUNNER_{var}")}"' for key, var in keys.items()]
    (world.root / "transfer-runner.toml").write_text("\n".join(lines) + "\n")


def test_apply_takes_its_settings_from_the_config_file(tmp_path: Path, s3_server: Any) -> None:
    world = CliWorld(tmp_path, s3_server, "cfg", globex=False)
    state_db = world.env["TRANSFER_RUNNER_STATE"].removeprefix("sqlite:")
    _moved_to_file(world)
    shown = json.loads(world.ok("config", "show", "--format", "json"))
    assert shown["config_file"] == str(world.root / "transfer-runner.toml")
    assert shown["sources"]["state"] == f"file {world.root / 'transfer-runner.toml'}"
    assert shown["sources"]["compression"] == "default"
    world.ok("apply", "transfers", "--yes")
    assert Path(state_db).is_file()
    assert "acme-com" in world.ok("status")
    # a flag still wins over the file: another state, where nothing has run
    other = world.ok("--state", f"sqlite:{tmp_path / 'other.db'}", "status")
    assert "acme-com" not in other or "completed" not in other


def test_config_show_masks_secrets_and_names_their_variables(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CliWorld(tmp_path, s3_server, "cfgshow", globex=False)
    world.env["TRANSFER_RUNNER_PLATFORM_TOKEN"] = "tok-7f3a9c-never-shown"
    world.env["TRANSFER_RUNNER_PLATFORM"] = "https://ops:pa55word@panel.example/api"
    text = world.ok("config", "show")
    assert "tok-7f3a9c-never-shown" not in text and "pa55word" not in text
    assert "TRANSFER_RUNNER_PLATFORM_TOKEN: set" in text
    assert "https://ops:****@panel.example/api  (env TRANSFER_RUNNER_PLATFORM)" in text
    assert world.env["AWS_SECRET_ACCESS_KEY"] not in text


def test_debug_logs_the_runners_decisions_to_a_private_file_and_trace_adds_botocore(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CliWorld(tmp_path, s3_server, "logs", globex=False)
    done = world.run(
        "--log-level", "debug", "--log-file", "debug.log", "apply", "transfers", "--yes"
    )
    assert done.returncode == 0, done.stderr
    debug = (world.root / "debug.log").read_text()
    assert stat.S_IMODE(os.stat(world.root / "debug.log").st_mode) == 0o600
    assert "acme-com: Verify the customer's authorization ticket: check found changes" in debug
    assert "export: PUT s3://" in debug
    assert "botocore" not in debug and "urllib3" not in debug
    assert " DEBUG " not in done.stderr  # logs went to the file, not to the terminal
    done = world.run("--log-level", "trace", "--log-format", "json", "--log-file", "trace.log",
                     "apply", "transfers", "--yes", "--recheck")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (world.root / "trace.log").read_text().splitlines()]
    loggers = {line["logger"].partition(".")[0] for line in lines}
    assert {"transfer_runner", "botocore"} <= loggers
    assert any("nothing to do" in line["message"] for line in lines)
    whole = (world.root / "trace.log").read_text()
    assert world.env["AWS_SECRET_ACCESS_KEY"] not in whole
    assert "****" in whole  # botocore's Authorization headers, masked


def test_a_global_option_after_the_command_is_told_where_it_goes(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CliWorld(tmp_path, s3_server, "hint", globex=False)
    done = world.run("plan", "transfers", "--state", "sqlite:x.db")
    assert done.returncode == 1
    assert "--state is a global option" in done.stderr
    assert "transfer-runner --state ... plan ..." in done.stderr
    assert "Traceback" not in done.stderr
