"""A directory for CLI subprocess tests: the fixture, manifests, a fresh sandbox, SQLite state
and exports to the session's loopback S3 server, all through environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.functional.conftest import FIXTURE, GLOBEX, manifest

__all__ = ["make_cli_world", "REPO"]

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 120


def make_cli_world(
    root: Path, s3_server: Any, prefix: str, *, globex: bool = True
) -> dict[str, str]:
    """Write acme-com (and globex-io) under `root/transfers`, create `root/sandbox.db`, and
    return the environment that points the CLI at them (nothing inherited from AWS_* or
    TRANSFER_RUNNER_*). `prefix` names the run's export prefix in the bucket."""
    (root / "fixture.yml").write_text(FIXTURE)
    transfers = root / "transfers"
    transfers.mkdir()
    (transfers / "acme-com.yml").write_text(manifest())
    if globex:
        (transfers / "globex-io.yml").write_text(manifest("globex-io", **GLOBEX))
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
