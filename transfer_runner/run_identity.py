"""Who and where a run is: its id, the user, the host, the CI job (with its URL and the
approver) and the git commit of the manifests, as recorded with every run."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["ci_job", "git_commit", "host", "new_run_id", "user"]


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: `r-20261129T041500Z-1a2b3c`."""
    now = now or datetime.now(UTC)
    return f"r-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def host() -> str:
    return socket.gethostname()


def ci_job(env: Mapping[str, str] | None = None) -> str | None:
    """The CI job, its URL and the approver, as the environment provides them."""
    env = os.environ if env is None else env
    parts = [f"{var}={env[var]}" for var in ("GITHUB_RUN_ID", "CI_JOB_ID", "AWS_BATCH_JOB_ID",
                                               "BUILD_ID") if env.get(var)]  # fmt: skip
    url = env.get("CI_JOB_URL") or env.get("TRANSFER_RUNNER_RUN_URL")
    if not url and env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    if url:
        parts.append(f"url={url}")
    if env.get("TRANSFER_RUNNER_APPROVER"):
        parts.append(f"approver={env['TRANSFER_RUNNER_APPROVER']}")
    return " ".join(parts) or None


# CI systems name the commit they build; a container (Kubernetes, AWS Batch) has no `.git`
# and is told it by its image or job definition.
COMMIT_ENV_VARS = ("TRANSFER_RUNNER_GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA")


def git_commit() -> str | None:
    """The commit the manifests come from: `TRANSFER_RUNNER_GIT_COMMIT`, else `git rev-parse
    HEAD` in the working directory, else the CI's own variable (GitHub, GitLab)."""
    if os.environ.get(COMMIT_ENV_VARS[0]):
        return os.environ[COMMIT_ENV_VARS[0]].strip()
    found = _git_head()
    if found:
        return found
    return next((os.environ[v].strip() for v in COMMIT_ENV_VARS[1:] if os.environ.get(v)), None)


def _git_head() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
