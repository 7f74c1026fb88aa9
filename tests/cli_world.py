"""A directory for CLI subprocess tests: the fixture, manifests, a fresh sandbox, SQLite state
and exports to the session's loopback S3 server, all through environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.builders import write_manifests

__all__ = ["CliWorld", "cli_ok", "make_cli_world", "REPO"]

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 120


def make_cli_world(
    root: Path, s3_server: Any, prefix: str, *, globex: bool = True
) -> dict[str, str]:
    """Write acme-com (and globex-io) under `root/transfers`, create `root/sandbox.db`, and
    return the environment that points the CLI at them (nothing inherited from AWS_* or
    TRANSFER_RUNNER_*). `prefix` names the run's export prefix in the bucket."""
    write_manifests(root, globex=globex)
    ours = ("AWS_", "TRANSFER_RUNNER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(s3_server.env())
    env.update(
        TRANSFER_RUNNER_PLATFORM=f"sandbox:{root / 'sandbox.db'}",
        TRANSFER_RUNNER_STATE=f"sqlite:{root / 'state.db'}",
        TRANSFER_RUNNER_EXPORT_TO=f"s3://{s3_server.bucket}/{prefix}-{root.name[-12:]}".lower(),
        PYTHONPATH=str(REPO),
    )
    subprocess.run(
        [sys.executable, "-m", "transfer_runner", "sandbox", "init", "sandbox.db", "--fixture",
         "fixture.yml"], cwd=root, env=env, check=True, capture_output=True, timeout=WAIT_S,
    )  # fmt: skip
    return env


def cli_ok(cwd: Path, env: dict[str, str], *args: str) -> str:
    """`transfer-runner ARGS` in `cwd` with `env`: its standard output; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", "transfer_runner", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


class CliWorld:
    """`make_cli_world` under `root`, and the CLI run on it in a subprocess."""

    def __init__(self, root: Path, s3_server: Any, prefix: str, *, globex: bool = True) -> None:
        self.root = root
        self.env = make_cli_world(root, s3_server, prefix, globex=globex)

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`transfer-runner ARGS` in `root`, with the world's environment (or `env`)."""
        return subprocess.run(
            [sys.executable, "-m", "transfer_runner", *args], cwd=self.root,
            env=self.env if env is None else env, capture_output=True, text=True, timeout=WAIT_S,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        """Its standard output; the command must exit 0."""
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def dump(self) -> dict[str, Any]:
        """The sandbox's whole state (`sandbox dump`)."""
        return dict(json.loads(self.ok("sandbox", "dump", "sandbox.db")))

    def writes(self) -> int:
        """Platform writes so far (the sandbox's audit log)."""
        from transfer_runner.platforms.sandbox.platform import SandboxPlatform

        with SandboxPlatform(self.root / "sandbox.db") as platform:
            return platform.write_calls()
