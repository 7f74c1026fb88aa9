"""The pre-commit hook `transfer-runner-validate` (.pre-commit-hooks.yaml), as a transfers
repository uses it: `pre-commit try-repo` installs this repository's committed HEAD into a
fresh virtualenv and runs the hook in a temporary git repository of manifests.

Nothing beyond loopback is reached: pip installs offline from build/wheelhouse/ (`make
install` builds it from requirements/runtime.txt), with no index and no pip configuration."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import GLOBEX, manifest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "build" / "wheelhouse"
HOOK = "transfer-runner-validate"


def _offline_env(tmp_path: Path) -> dict[str, str]:
    if not list(WHEELHOUSE.glob("setuptools-*.whl")) or not list(WHEELHOUSE.glob("click-*.whl")):
        pytest.fail(f"{WHEELHOUSE} is missing or incomplete: run `make install`, which builds it")
    if importlib.util.find_spec("pre_commit") is None:
        pytest.fail("pre-commit is not installed: it is in the [test] extra (make install)")
    ours = ("PIP_", "PRE_COMMIT", "VIRTUALENV_", "TRANSFER_RUNNER_", "GIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_CONFIG_FILE=os.devnull,  # no index, find-links or constraints from the machine
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        VIRTUALENV_NO_DOWNLOAD="1",
        VIRTUALENV_NO_PERIODIC_UPDATE="1",
    )
    return env


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _try_repo(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` of this repository's HEAD (what is committed: the hook file and
    the package), running only the hook, on every file of `repo`."""
    head = _git(REPO, "rev-parse", "HEAD")
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), HOOK, "--ref", head,
         "--all-files", "--color", "never"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_the_hook_passes_valid_manifests_and_fails_an_invalid_one(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    repo = tmp_path / "transfers-repo"
    (repo / "transfers").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "transfers" / "acme-com.yml").write_text(manifest(), encoding="utf-8")
    (repo / "README.md").write_text("not a manifest\n", encoding="utf-8")
    _git(repo, "add", ".")

    valid = _try_repo(repo, env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "transfer-runner validate" in valid.stdout and "Passed" in valid.stdout

    broken = manifest("globex-io", **{**GLOBEX, "users": "forty"})
    (repo / "transfers" / "globex-io.yml").write_text(broken, encoding="utf-8")
    _git(repo, "add", ".")
    invalid = _try_repo(repo, env)
    assert invalid.returncode == 1, invalid.stdout + invalid.stderr
    assert "Failed" in invalid.stdout
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "users: forty" in text)
    assert f"transfers/globex-io.yml:{line}:" in invalid.stdout
    assert "spec.subscription.users" in invalid.stdout
