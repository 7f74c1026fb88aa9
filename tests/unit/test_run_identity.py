"""The commit a run records: the explicit variable, else git, else the CI's variable; a
container without `.git` still records what it applies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transfer_runner import run_identity

SHA_A, SHA_B = "a" * 40, "b" * 40


@pytest.fixture
def no_commit_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in run_identity.COMMIT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _repo(path: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    return git("rev-parse", "HEAD")


def test_outside_git_the_ci_variable_names_the_commit(
    tmp_path: Path, no_commit_env: pytest.MonkeyPatch
) -> None:
    no_commit_env.chdir(tmp_path)
    no_commit_env.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert run_identity.git_commit() is None
    no_commit_env.setenv("CI_COMMIT_SHA", SHA_B)
    assert run_identity.git_commit() == SHA_B
    no_commit_env.setenv("TRANSFER_RUNNER_GIT_COMMIT", SHA_A)
    assert run_identity.git_commit() == SHA_A


def test_git_wins_over_the_ci_variable_and_the_explicit_one_over_git(
    tmp_path: Path, no_commit_env: pytest.MonkeyPatch
) -> None:
    head = _repo(tmp_path)
    no_commit_env.chdir(tmp_path)
    no_commit_env.setenv("GITHUB_SHA", SHA_B)
    assert run_identity.git_commit() == head
    no_commit_env.setenv("TRANSFER_RUNNER_GIT_COMMIT", SHA_A)
    assert run_identity.git_commit() == SHA_A
