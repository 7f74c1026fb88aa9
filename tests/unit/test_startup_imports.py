"""What the CLI imports to start: `--help` and `validate` of valid manifests do not pay for the
engine's libraries (boto3, Jinja2, zstandard), nor jsonschema, which only a failing manifest
needs. Each case runs in a fresh interpreter, since this process has imported everything."""

from __future__ import annotations

import json
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
