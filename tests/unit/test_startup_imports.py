"""What the CLI imports to start: `--help` and `validate` of valid manifests do not pay for the
engine's libraries (boto3, Jinja2, zstandard), nor jsonschema, which only a failing manifest
needs; `--help`, `--version` and tab completion load not even the commands or YAML. Each case
runs in a fresh interpreter, since this process has imported everything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import manifest

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"boto3", "botocore", "s3transfer", "jinja2", "zstandard", "jsonschema", "urllib3"}
PROBE = """
import json, sys
from transfer_runner.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def _top_level_modules(tmp_path: Path, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120,
    )  # fmt: skip
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["apply", "--help"]])
def test_help_imports_none_of_the_heavy_libraries(tmp_path: Path, args: list[str]) -> None:
    assert _top_level_modules(tmp_path, *args) & HEAVY == set()


def test_validate_of_valid_manifests_imports_none_of_them(tmp_path: Path) -> None:
    (tmp_path / "acme-com.yml").write_text(manifest(), encoding="utf-8")
    assert _top_level_modules(tmp_path, "validate", "acme-com.yml") & HEAVY == set()


def test_an_invalid_manifest_brings_jsonschema_in_to_locate_its_errors(tmp_path: Path) -> None:
    (tmp_path / "acme-com.yml").write_text(manifest(users="forty"), encoding="utf-8")
    loaded = _top_level_modules(tmp_path, "validate", "acme-com.yml")
    assert "jsonschema" in loaded and not loaded & (HEAVY - {"jsonschema"})


# The commands and what only they need come when a command runs (`cli.lazy.LazyModule`):
# --help, --version and tab completion load none of it.
NOT_AT_START = {"yaml", "rich", "werkzeug", "waitress", "transfer_runner.commands",
                "transfer_runner.engine.runner", "transfer_runner.manifest.loader"}  # fmt: skip


def _imported(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """Every module (dotted names too) `python -X importtime -m transfer_runner ARGS` imports."""
    run_env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "transfer_runner", *args],
        capture_output=True, text=True, env=run_env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M))


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("apply", "--help")])
def test_help_loads_neither_the_commands_nor_yaml(args: tuple[str, ...]) -> None:
    imported = _imported(*args)
    assert "click" in imported  # the measurement works
    assert not imported & (NOT_AT_START | HEAVY), sorted(imported & (NOT_AT_START | HEAVY))


def test_tab_completion_loads_neither() -> None:
    env = {"_TRANSFER_RUNNER_COMPLETE": "bash_complete", "COMP_WORDS": "transfer-runner rep",
           "COMP_CWORD": "1"}  # fmt: skip
    imported = _imported(env=env)
    assert "click" in imported
    assert not imported & (NOT_AT_START | HEAVY), sorted(imported & (NOT_AT_START | HEAVY))
