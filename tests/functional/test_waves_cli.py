"""`transfer-runner new --from-csv FILE --out DIR` through the CLI, and the CI examples."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from transfer_runner.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
WAVE = EXAMPLES / "waves" / "wave-2026-12.csv"
HEADER = (
    "name,customer_account,domains,reseller_account,reseller_name,users,services,"
    "customer_ticket,reseller_ticket\n"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("TRANSFER_RUNNER_PLATFORM", "TRANSFER_RUNNER_STATE", "TRANSFER_RUNNER_SHARD"):
        monkeypatch.delenv(var, raising=False)


def test_new_writes_a_manifest_per_row_that_validate_accepts(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "transfers", "transfers")
    result = run("new", "--from-csv", str(WAVE), "--out", "transfers")
    assert result.exit_code == 0, result.output
    assert "wrote 5 manifest(s) to transfers" in result.output
    assert sorted(p.name for p in Path("transfers").iterdir()) == [
        "acme-com.yml", "buecherhaus-de.yml", "globex-io.yml", "hooli-xyz.yml", "initech.yml",
        "vandelay-com.yml", "wernham-hogg.yml",
    ]  # fmt: skip
    validated = run("validate", "transfers")
    assert validated.exit_code == 0, validated.output
    assert "7 manifest(s) valid" in validated.output

    again = run("new", "--from-csv", str(WAVE), "--out", "transfers")
    assert again.exit_code == 0, again.output
    assert "5 already up to date" in again.output


def test_new_reports_rows_and_exits_1_without_writing(tmp_path: Path) -> None:
    Path("wave.csv").write_text(
        HEADER
        + "a-com,C-1,a.com,R-1,Reseller,ten,spamstopshere,T-1,T-2\n"
        + "b-com,C-2,a.com,R-1,Reseller,5,spamstopshere,T-3,T-4\n",
        encoding="utf-8",
    )
    result = run("new", "--from-csv", "wave.csv", "--out", "out")
    assert result.exit_code == 1
    assert "wave.csv:row 2: users: 'ten' is not a whole number" in result.output
    assert "Traceback" not in result.output
    assert not Path("out").exists()


def test_new_refuses_to_overwrite_and_overwrite_replaces(tmp_path: Path) -> None:
    Path("wave.csv").write_text(
        HEADER + "a-com,C-1,a.com,R-1,Reseller,10,spamstopshere,T-1,T-2\n", encoding="utf-8"
    )
    assert run("new", "--from-csv", "wave.csv", "--out", "out").exit_code == 0
    Path("wave.csv").write_text(
        HEADER + "a-com,C-1,a.com,R-1,Reseller,11,spamstopshere,T-1,T-2\n", encoding="utf-8"
    )
    refused = run("new", "--from-csv", "wave.csv", "--out", "out")
    assert refused.exit_code == 1
    assert "wave.csv:row 2: name: out/a-com.yml already exists" in refused.output
    assert "users: 10" in Path("out/a-com.yml").read_text(encoding="utf-8")
    replaced = run("new", "--from-csv", "wave.csv", "--out", "out", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert "users: 11" in Path("out/a-com.yml").read_text(encoding="utf-8")


def test_new_with_a_missing_csv_is_a_message_not_a_traceback() -> None:
    result = run("new", "--from-csv", "missing.csv", "--out", "out")
    assert result.exit_code == 1
    assert "missing.csv: cannot read: No such file or directory" in result.output


# -- CI examples ----------------------------------------------------------------------------
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "ci" / name).read_text(encoding="utf-8"))


def _scripts(node: Any) -> list[str]:
    """Every shell script in a workflow: `run:` values (GitHub) and `script:` lists (GitLab)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "after_script", "before_script"):
                found.extend([value] if isinstance(value, str) else list(value))
            else:
                found.extend(_scripts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_scripts(item))
    return found


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_use_only_commands_and_options_that_exist(name: str) -> None:
    text = "\n".join(_scripts(_load(name))).replace("\\\n", " ")
    calls = re.findall(r"transfer-runner (\w+)([^|;&>\n]*)", text)  # up to a shell operator
    assert {command for command, _ in calls} >= {"validate", "plan", "apply", "report"}
    for command_name, args in calls:
        command = cli.commands[command_name]
        options = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
        used = set(re.findall(r"(?<!\S)(--[a-z][-a-z]*)", args))
        assert used <= options, (command_name, used - options)


def test_github_example_plans_on_pull_requests_and_applies_shards_with_oidc() -> None:
    workflow = _load("github-actions.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    plan_text = " ".join(_scripts(jobs["plan"]))
    assert "GITHUB_STEP_SUMMARY" in plan_text and "--format github" in plan_text
    apply = jobs["apply"]
    assert apply["permissions"]["id-token"] == "write"
    assert apply["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    apply_text = " ".join(_scripts(apply))
    for flag in ("--shard ${{ matrix.shard }}/4", "--yes", "--report-json", "--junit"):
        assert flag in apply_text
    uses = {step.get("uses", "").split("@")[0]: step for step in apply["steps"]}
    assert uses["aws-actions/configure-aws-credentials"]["with"]["role-to-assume"]
    assert "actions/upload-artifact" in uses
    assert workflow["env"]["TRANSFER_RUNNER_STATE"].startswith("s3://")
    # the plan is a pull-request comment; each shard's HTML report and the merged wave's kept
    assert "--format markdown" in plan_text and "gh pr comment" in plan_text
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert "--format html" in apply_text and "report-${{ matrix.shard }}.html" in apply_text
    wave = jobs["wave-report"]
    assert wave["needs"] == "apply" and "always()" in wave["if"]
    wave_text = " ".join(_scripts(wave))
    assert '--format html --commit "${{ github.sha }}" --out wave.html' in wave_text


def test_gitlab_example_applies_in_parallel_shards_with_oidc() -> None:
    pipeline = _load("gitlab-ci.yml")
    apply = pipeline["apply"]
    assert apply["parallel"] == 4
    assert "--shard auto" in " ".join(apply["script"])
    assert apply["artifacts"]["reports"]["junit"] == "junit-*.xml"
    oidc = pipeline[apply["extends"]]
    assert oidc["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert "AWS_ROLE_ARN" in apply["variables"]
    assert pipeline["variables"]["TRANSFER_RUNNER_STATE"].startswith("s3://")
    plan_text = " ".join(pipeline["plan"]["script"])
    assert "--format markdown" in plan_text and "/merge_requests/" in plan_text
    assert "report-*.html" in apply["artifacts"]["paths"]
    wave = pipeline["wave-report"]
    assert wave["stage"] == ".post" and wave["needs"] == ["apply"]
    assert "wave.html" in wave["artifacts"]["paths"]
    assert '--commit "$CI_COMMIT_SHA"' in " ".join(wave["script"])


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_hold_no_static_keys(name: str) -> None:
    text = (EXAMPLES / "ci" / name).read_text(encoding="utf-8")
    assert not re.search(r"AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|aws-secret-access-key", text)
    assert not re.search(r"\bAKIA[0-9A-Z]{16}\b", text)
