"""`schema`, `completion` and the schema line `new` writes: what editors, hooks and shells get
from transfer-runner (issue 17, part 4)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from jsonschema import Draft202012Validator

from tests.unit.test_startup_imports import HEAVY, NOT_AT_START, _imported
from transfer_runner.cli import cli
from transfer_runner.cli.editor import SCHEMAS
from transfer_runner.csv_manifests.render import MODELINE_PREFIX
from transfer_runner.resources import resource_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WAVE = EXAMPLES / "waves" / "wave-2026-12.csv"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- schema ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_schema_prints_the_bundled_schema_byte_for_byte(kind: str) -> None:
    result = CliRunner().invoke(cli, ["schema", kind])
    assert result.exit_code == 0, result.output
    bundled = resource_path("schemas", SCHEMAS[kind]).read_bytes()
    assert result.stdout_bytes == bundled
    Draft202012Validator.check_schema(json.loads(bundled))


def test_schema_defaults_to_the_manifest_and_out_writes_a_file(in_tmp: Path) -> None:
    assert run("schema").stdout_bytes == run("schema", "manifest").stdout_bytes
    result = run("schema", "--out", ".schemas/transfer-manifest.json")
    assert result.exit_code == 0 and result.stdout == ""
    assert "wrote .schemas/transfer-manifest.json" in result.stderr
    written = (in_tmp / ".schemas" / "transfer-manifest.json").read_bytes()
    assert written == resource_path("schemas", "manifest.schema.json").read_bytes()
    (in_tmp / ".schemas" / "transfer-manifest.json").write_text("{}")  # an older copy
    assert run("schema", "manifest", "--out", ".schemas/transfer-manifest.json").exit_code == 0
    assert (in_tmp / ".schemas" / "transfer-manifest.json").read_bytes() == written
    assert run("schema", "pdf").exit_code == 2


def test_the_examples_schema_line_names_a_current_copy_of_the_manifest_schema() -> None:
    """Every example manifest's first line resolves to a committed file that is exactly what
    `transfer-runner schema manifest` prints; after a schema change, refresh it with
    `transfer-runner schema manifest --out examples/.schemas/transfer-manifest.json`."""
    printed = run("schema", "manifest").stdout_bytes
    examples = sorted((EXAMPLES / "transfers").glob("*.yml"))
    assert examples
    for example in examples:
        first = example.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(MODELINE_PREFIX), example
        target = (example.parent / first.removeprefix(MODELINE_PREFIX)).resolve()
        assert target.is_file(), f"{example.name}: {target} does not exist"
        assert target.read_bytes() == printed, (
            f"{target} is stale: transfer-runner schema manifest --out {target.relative_to(REPO)}"
        )
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(target)],
            cwd=REPO, capture_output=True, check=False,
        )  # fmt: skip
        assert tracked.returncode == 0 or not (REPO / ".git").exists(), f"{target} not in git"


# -- new: the schema line -------------------------------------------------------------------
def _first_line(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0]


def test_new_names_the_schema_beside_the_manifests_directory_and_says_how_to_write_it(
    in_tmp: Path,
) -> None:
    result = run("new", "--from-csv", str(WAVE), "--out", "transfers")
    assert result.exit_code == 0, result.output
    assert _first_line(in_tmp / "transfers" / "initech.yml") == (
        "# yaml-language-server: $schema=../.schemas/transfer-manifest.json"
    )
    assert (
        "note: .schemas/transfer-manifest.json, which the manifests name for editors, does not "
        "exist: `transfer-runner schema manifest --out .schemas/transfer-manifest.json` writes it"
    ) in result.stderr
    assert run("schema", "manifest", "--out", ".schemas/transfer-manifest.json").exit_code == 0
    again = run("new", "--from-csv", str(WAVE), "--out", "transfers")
    assert "5 already up to date" in again.stdout and "note:" not in again.stderr
    (in_tmp / ".schemas" / "transfer-manifest.json").write_text("{}\n")
    stale = run("new", "--from-csv", str(WAVE), "--out", "transfers")
    assert "is not this version's schema" in stale.stderr


def test_new_schema_path_is_written_relative_to_each_manifest(in_tmp: Path) -> None:
    result = run(
        "new", "--from-csv", str(WAVE), "--out", "wave/2026-12", "--schema", "schemas/m.json"
    )
    assert result.exit_code == 0, result.output
    line = _first_line(in_tmp / "wave" / "2026-12" / "initech.yml")
    assert line == "# yaml-language-server: $schema=../../schemas/m.json"
    absolute = run(
        "new", "--from-csv", str(WAVE), "--out", "other", "--schema", str(in_tmp / "s.json")
    )
    assert absolute.exit_code == 0, absolute.output
    assert _first_line(in_tmp / "other" / "initech.yml").endswith("$schema=../s.json")


def test_new_without_schema_line_and_an_unwritable_line_is_refused(in_tmp: Path) -> None:
    assert run("new", "--from-csv", str(WAVE), "--out", "t", "--no-schema").exit_code == 0
    assert _first_line(in_tmp / "t" / "initech.yml") == "apiVersion: transfer-runner/v1"
    both = run("new", "--from-csv", str(WAVE), "--out", "t", "--no-schema", "--schema", "x")
    assert both.exit_code == 2 and "exclude each other" in both.output
    spaced = run("new", "--from-csv", str(WAVE), "--out", "u", "--schema", "my schemas/m.json")
    assert spaced.exit_code == 1
    assert "holds white space" in spaced.output and "nothing was written" in spaced.output
    assert not (in_tmp / "u").exists()


def test_a_manifest_that_differs_only_in_its_schema_line_is_left_as_it_is(in_tmp: Path) -> None:
    """An applied manifest's bytes are its identity (a changed file is drift), so adding or
    changing the schema line of existing manifests is not `new`'s business."""
    assert run("new", "--from-csv", str(WAVE), "--out", "t", "--no-schema").exit_code == 0
    before = (in_tmp / "t" / "initech.yml").read_bytes()
    with_line = run("new", "--from-csv", str(WAVE), "--out", "t")
    assert with_line.exit_code == 0 and "5 already up to date" in with_line.stdout
    assert (in_tmp / "t" / "initech.yml").read_bytes() == before
    other = run("new", "--from-csv", str(WAVE), "--out", "t", "--schema", "elsewhere.json")
    assert other.exit_code == 0 and "5 already up to date" in other.stdout


def test_manifests_with_the_schema_line_validate_with_errors_on_their_own_lines(
    in_tmp: Path,
) -> None:
    """The line is a YAML comment: the loader, the schema check and the positions of errors
    take it as one more line."""
    shutil.copytree(EXAMPLES / "transfers", "transfers")
    assert run("validate", "transfers").exit_code == 0
    text = (in_tmp / "transfers" / "acme-com.yml").read_text(encoding="utf-8")
    (in_tmp / "transfers" / "acme-com.yml").write_text(
        text.replace("users: 40", "users: forty"), encoding="utf-8"
    )
    line = text.splitlines().index("    users: 40") + 1
    result = run("validate", "transfers")
    assert result.exit_code == 1
    assert f"transfers/acme-com.yml:{line}:12: spec.subscription.users:" in result.output


# -- completion -----------------------------------------------------------------------------
def test_bash_completion_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed for this test"
    script = run("completion", "bash").stdout
    assert "_TRANSFER_RUNNER_COMPLETE=bash_complete" in script
    checked = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("zsh", "#compdef transfer-runner"),
        ("fish", "complete --no-files --command transfer-runner"),
    ],
)
def test_zsh_and_fish_scripts(shell: str, marker: str) -> None:
    result = run("completion", shell)
    assert result.exit_code == 0 and marker in result.stdout
    assert f"_TRANSFER_RUNNER_COMPLETE={shell}_complete" in result.stdout


def _complete(words: str) -> list[str]:
    """What `transfer-runner` answers bash's completion function for COMP_WORDS=`words`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRANSFER_RUNNER_")},
        "_TRANSFER_RUNNER_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-m", "transfer_runner"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_completing_a_command_name_offers_it() -> None:
    assert _complete("transfer-runner ap") == ["plain,apply"]
    assert "plain,--format" in _complete("transfer-runner validate --fo")
    assert _complete("transfer-runner schema ") == [
        f"plain,{kind}" for kind in SCHEMAS
    ]  # the kinds, in order


def test_the_script_runs_in_bash_and_completes_apply(tmp_path: Path) -> None:
    """The real bash function, sourced, asks the program and fills COMPREPLY."""
    bash = shutil.which("bash")
    assert bash
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "transfer-runner"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m transfer_runner "$@"\n')
    program.chmod(0o755)
    script = run("completion", "bash").stdout
    probe = (
        f"{script}\n"
        "COMP_WORDS=(transfer-runner ap); COMP_CWORD=1\n"  # as bash sets them, and its
        # arguments: the command, the word being completed, the word before it
        "_transfer_runner_completion transfer-runner ap transfer-runner\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [bash, "--norc", "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["apply"]


@pytest.mark.parametrize("args", [("completion", "bash"), ("schema", "manifest")])
def test_the_editor_commands_load_nothing_heavy(args: tuple[str, ...]) -> None:
    imported = _imported(*args)
    assert "click" in imported
    assert not imported & (NOT_AT_START | HEAVY), sorted(imported & (NOT_AT_START | HEAVY))
