"""What the CLI imports to start: `--help`, `--version` and tab completion load neither the
engine's libraries nor the commands' modules; `validate` does not load boto3 (issue 17)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "jsonschema", "jinja2", "yaml", "zstandard", "rich", "werkzeug",
         "waitress", "transfer_runner.commands", "transfer_runner.engine.runner")  # fmt: skip
MANIFEST = REPO / "examples" / "transfers" / "acme-com.yml"


def _imported(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules `python -X importtime -m transfer_runner ARGS` imports."""
    run_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "transfer_runner", *args],
        capture_output=True, text=True, env=run_env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M))


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("apply", "--help")])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    imported = _imported(*args)
    assert "click" in imported  # the measurement works
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_tab_completion_imports_nothing_heavy() -> None:
    env = {"_TRANSFER_RUNNER_COMPLETE": "bash_complete", "COMP_WORDS": "transfer-runner rep",
           "COMP_CWORD": "1"}  # fmt: skip
    imported = _imported(env=env)
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_validate_does_not_import_boto3() -> None:
    imported = _imported("validate", str(MANIFEST))
    assert "yaml" in imported  # it did read the manifest
    assert not imported & {"boto3", "botocore", "jinja2", "rich", "werkzeug", "waitress"}
