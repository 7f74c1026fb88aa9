"""Preflight from the CLI: each missing or broken setting stops `plan`/`apply` before any write,
with exit 1 and one line that names the setting (never the token)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import CliWorld
from tests.served import Served

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOKEN = "preflight-token-0123456789"
WAIT_S = 120


@pytest.fixture
def world(tmp_path: Path, s3_server: Any) -> CliWorld:
    return CliWorld(tmp_path, s3_server, "pf")


@pytest.fixture
def served(world: CliWorld) -> Iterator[Served]:
    server = Served.start(
        ("sandbox", "serve", "sandbox.db", "--port", "0"),
        world.root, {**world.env, "TRANSFER_RUNNER_SANDBOX_TOKEN": TOKEN}, world.root / "serve.log",
    )  # fmt: skip
    assert server.url, server.log.read_text()
    yield server
    server.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_aws_credentials(env: dict[str, str], root: Path) -> dict[str, str]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    out = {k: v for k, v in env.items() if k not in keys}
    out.update(
        AWS_SHARED_CREDENTIALS_FILE=str(root / "no-credentials"),
        AWS_CONFIG_FILE=str(root / "no-config"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return out


CASES = {
    "no-export-destination": (
        lambda w, s: {k: v for k, v in w.env.items() if k != "TRANSFER_RUNNER_EXPORT_TO"},
        "no export destination is set: pass --export-to s3://BUCKET/PREFIX or set "
        "TRANSFER_RUNNER_EXPORT_TO",
    ),
    "no-aws-credentials": (
        lambda w, s: _no_aws_credentials(w.env, w.root),
        "no AWS credentials found for the export to s3://",
    ),
    "missing-bucket": (
        lambda w, s: {**w.env, "TRANSFER_RUNNER_EXPORT_TO": "s3://no-such-bucket-pf/x"},
        "the export bucket 'no-such-bucket-pf' does not exist",
    ),
    "wrong-platform-token": (
        lambda w, s: {
            **w.env,
            "TRANSFER_RUNNER_PLATFORM": s.url,
            "TRANSFER_RUNNER_PLATFORM_TOKEN": "wrong-token-0123456789",
        },  # fmt: skip
        "[401]",
    ),
    "unreachable-platform": (
        lambda w, s: {**w.env, "TRANSFER_RUNNER_PLATFORM": f"http://127.0.0.1:{_closed_port()}"},
        "connection error",
    ),
    "state-in-a-missing-bucket": (
        lambda w, s: {**w.env, "TRANSFER_RUNNER_STATE": "s3://no-such-state-bucket/s"},
        "no-such-state-bucket",
    ),
}


@pytest.mark.parametrize("command", ["apply", "plan"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_setting_stops_the_run_before_any_write(
    world: CliWorld, served: Served, case: str, command: str
) -> None:
    make_env, expected = CASES[case]
    env = make_env(world, served)
    before = world.writes()
    args = ("apply", "transfers", "--yes") if command == "apply" else ("plan", "transfers")
    done = world.run(*args, env=env)
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 1, (out, err)
    assert expected in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err  # one line, no trace
    assert "wrong-token-0123456789" not in out + err and TOKEN not in out + err
    assert world.writes() == before  # zero platform writes (the sandbox's audit)
    assert (
        not (world.root / "state.db").exists() or world.run("report").returncode == 1
    )  # no run recorded either


def test_the_preflight_passes_and_apply_runs_over_http(world: CliWorld, served: Served) -> None:
    env = {**world.env, "TRANSFER_RUNNER_PLATFORM": served.url,
           "TRANSFER_RUNNER_PLATFORM_TOKEN": TOKEN}  # fmt: skip
    done = world.run("apply", "transfers", "--yes", env=env)
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 0, (out, err)
    assert "2 succeeded" in out


def test_an_apply_with_nothing_to_export_needs_no_destination(world: CliWorld) -> None:
    for name in ("acme-com", "globex-io"):
        path = world.root / "transfers" / f"{name}.yml"
        text = path.read_text()
        for store in ("quarantine", "archive"):
            text = text.replace(f"{store}: migrate", f"{store}: skip")
            text = text.replace(f"{store}: export", f"{store}: skip")
        path.write_text(text)
    env = {k: v for k, v in world.env.items() if k != "TRANSFER_RUNNER_EXPORT_TO"}
    done = world.run("apply", "transfers", "--yes", env=env)
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 0, (out, err)
