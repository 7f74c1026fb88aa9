"""`transfer-runner new --from-csv FILE --out DIR` through the CLI, and the CI examples."""

from __future__ import annotations

import re
import shlex
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
# transfer-runner is on no package index: each job installs it from the tool's checkout, every
# dependency from its hash-checked lock, exactly so.
INSTALL = (
    "python -m pip install --require-hashes --no-deps -r requirements/runtime.txt"
    " && python -m pip install --no-deps --no-build-isolation ."
)
# `transfer-runner COMMAND ARGS` where a shell command starts, up to a shell operator (a
# redirection's `2>` left out)
CALL = re.compile(
    r"(?:^|[;&|({]|\$\(|\b(?:then|do|else)\b)[ \t]*"
    r"transfer-runner ([a-z][-a-z]*)([^|;&>\n]*?)(?:\s\d)?(?=[|;&>\n]|$)",
    re.MULTILINE,
)


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


def _calls(node: Any) -> list[tuple[str, dict[str, Any]]]:
    """Each transfer-runner command in the scripts, parsed by the real CLI as it would run it
    (an unknown option, a missing value or a bad choice raises): its name and parameters. A CI
    expression `${{ ... }}` reads as 1; shell variables stay as they are written."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "1", "\n".join(_scripts(node)).replace("\\\n", " "))
    calls = []
    for match in CALL.finditer(text):
        name, args = match.group(1), shlex.split(match.group(2))
        with cli.commands[name].make_context(name, args) as ctx:
            calls.append((name, dict(ctx.params)))
    return calls


def _one(node: Any, command: str) -> dict[str, Any]:
    found = [params for name, params in _calls(node) if name == command]
    assert len(found) == 1, (command, found)
    return found[0]


def _loop_shards(script_node: Any) -> list[int]:
    """The shards a saved-plan job's loop plans: `for shard in 1 2 3 4`."""
    (loop,) = re.findall(r"for shard in ([\d ]+);", "\n".join(_scripts(script_node)))
    return [int(n) for n in loop.split()]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_use_only_commands_and_options_that_exist(name: str) -> None:
    calls = _calls(_load(name))
    assert {command for command, _ in calls} >= {"validate", "plan", "apply", "report"}
    assert all(params["yes"] for command, params in calls if command == "apply")


def test_the_examples_check_refuses_an_unknown_option_or_a_missing_value() -> None:
    with pytest.raises(click.NoSuchOption):
        _calls({"run": "transfer-runner apply plan-1.json --yes --shards 1/4 > out.txt"})
    with pytest.raises(click.BadParameter):
        _calls({"script": ["transfer-runner plan transfers --format yaml || code=$?"]})
    with pytest.raises(click.BadOptionUsage):
        _calls({"run": "set -e; transfer-runner plan transfers --out"})


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_install_from_the_checkout_with_the_hash_checked_lock(name: str) -> None:
    text = "\n".join(_scripts(_load(name)))
    installs = re.findall(r"^.*\bpip3? install\b.*$", text, flags=re.MULTILINE)
    assert installs and all(line.strip() == INSTALL for line in installs), installs
    assert text.count("pip install") == 2 * len(installs)  # none but those two commands
    raw = (EXAMPLES / "ci" / name).read_text(encoding="utf-8")
    assert not re.search(r"pip3? install[^\n]*\btransfer-runner\b", raw)  # never from an index


def _github_steps_before_first_call(job: dict[str, Any]) -> list[dict[str, Any]] | None:
    for i, step in enumerate(job["steps"]):
        if CALL.search(step.get("run", "")):
            return job["steps"][:i]
    return None


def test_github_example_installs_the_tool_at_a_pinned_commit_in_every_job() -> None:
    workflow = _load("github-actions.yml")
    env = workflow["env"]
    assert re.fullmatch(r"[0-9a-f]{40}", env["TRANSFER_RUNNER_COMMIT"])  # a commit, not a tag
    jobs_that_run = 0
    for job in workflow["jobs"].values():
        before = _github_steps_before_first_call(job)
        if before is None:
            continue
        jobs_that_run += 1
        checkouts = [s["with"] for s in before if s.get("uses", "").startswith("actions/checkout")
                     and "repository" in s.get("with", {})]  # fmt: skip
        assert checkouts == [{
            "repository": "${{ env.TRANSFER_RUNNER_REPOSITORY }}",
            "ref": "${{ env.TRANSFER_RUNNER_COMMIT }}",
            "path": "transfer-runner",
            "persist-credentials": False,
        }]  # fmt: skip
        installs = [s for s in before if INSTALL in s.get("run", "")]
        assert [s.get("working-directory") for s in installs] == ["transfer-runner"]
    assert jobs_that_run == len(workflow["jobs"])


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
    for flag in ("plan-${{ matrix.shard }}.json", "--yes", "--report-json", "--junit"):
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


def test_github_example_applies_on_push_exactly_the_plan_saved_before_the_approval() -> None:
    workflow = _load("github-actions.yml")
    jobs = workflow["jobs"]
    saved, apply = jobs["saved-plan"], jobs["apply"]
    for job in (saved, apply):
        assert "github.event_name == 'push'" in job["if"] and "refs/heads/main" in job["if"]
    # saved-plan: read-only (the plan role), a plan file per shard of the apply matrix
    roles = [s["with"]["role-to-assume"] for s in saved["steps"] if "role-to-assume" in s.get(
        "with", {})]  # fmt: skip
    assert roles and all(role.endswith("role/transfer-runner-plan") for role in roles)
    assert "environment" not in saved
    plan = _one(saved, "plan")
    assert plan["paths"] == ("transfers",)
    assert (plan["shard"], plan["out"]) == ("$shard/4", "plan-$shard.json")
    assert _loop_shards(saved) == apply["strategy"]["matrix"]["shard"]
    upload = next(s for s in saved["steps"] if s.get("uses", "").startswith("actions/upload-"))
    assert upload["with"]["path"] == "plan-*.json"
    assert upload["with"]["if-no-files-found"] == "error"
    # apply: after the saved plan and its approval, each shard applies its own plan file
    assert apply["needs"] == "saved-plan" and apply["environment"] == "transfers"
    steps = apply["steps"]
    download = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith(
        "actions/download-artifact"))  # fmt: skip
    assert steps[download]["with"]["name"] == upload["with"]["name"]
    first_call = next(i for i, s in enumerate(steps) if CALL.search(s.get("run", "")))
    assert download < first_call
    applied = _one(apply, "apply")
    assert applied["paths"] == (plan["out"].replace("$shard", "1"),)  # ${{ matrix.shard }}: 1
    assert applied["shard"] is None  # the plan file holds the shard's transfers
    assert workflow["concurrency"]["group"]  # one run at a time on main: no plan goes stale


def test_gitlab_example_installs_the_tool_from_its_pinned_submodule() -> None:
    pipeline = _load("gitlab-ci.yml")
    assert pipeline["variables"]["GIT_SUBMODULE_STRATEGY"] in ("normal", "recursive")
    assert pipeline["variables"]["GIT_SUBMODULE_PATHS"] == "transfer-runner"
    install = pipeline["default"]["before_script"]
    assert install[install.index("cd transfer-runner") + 1] == INSTALL
    for name, job in pipeline.items():  # a job that replaces before_script runs no tool
        if isinstance(job, dict) and "before_script" in job and name != "default":
            assert not _calls(job), name


def test_gitlab_example_applies_in_parallel_shards_with_oidc() -> None:
    pipeline = _load("gitlab-ci.yml")
    apply = pipeline["apply"]
    assert apply["parallel"] == 4
    assert apply["artifacts"]["reports"]["junit"] == "junit-*.xml"
    oidc = pipeline[".aws-oidc"]
    assert ".aws-oidc" in apply["extends"]
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


def test_gitlab_example_applies_exactly_the_plans_saved_before_the_approval() -> None:
    pipeline = _load("gitlab-ci.yml")
    saved, approve, apply = pipeline["saved-plan"], pipeline["approve"], pipeline["apply"]
    default_branch = pipeline[".default-branch"]["rules"][0]["if"]
    assert default_branch == "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
    assert ".default-branch" in saved["extends"] and ".default-branch" in apply["extends"]
    assert saved["variables"]["AWS_ROLE_ARN"].endswith("role/transfer-runner-plan")
    plan = _one(saved, "plan")
    assert plan["paths"] == ("transfers",)
    assert (plan["shard"], plan["out"]) == ("$shard/4", "plan-$shard.json")
    shards = _loop_shards(saved)
    assert shards == list(range(1, apply["parallel"] + 1))
    assert {f"plan-{n}.json" for n in shards} <= set(saved["artifacts"]["paths"])
    # a manual job of the protected environment gates the apply jobs
    (rule,) = approve["rules"]
    assert rule["if"] == default_branch and rule["when"] == "manual"
    assert approve["allow_failure"] is False and approve["environment"]["name"] == "transfers"
    assert approve["needs"] == ["saved-plan"]
    assert "TRANSFER_RUNNER_APPROVER=" in " ".join(approve["script"])
    assert set(apply["needs"]) == {"saved-plan", "approve"}
    applied = _one(apply, "apply")
    assert applied["paths"] == (plan["out"].replace("$shard", "$CI_NODE_INDEX"),)
    assert applied["shard"] is None  # the plan file holds the shard's transfers
    assert apply["variables"]["AWS_ROLE_ARN"].endswith("role/transfer-runner-apply")


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_hold_no_static_keys(name: str) -> None:
    text = (EXAMPLES / "ci" / name).read_text(encoding="utf-8")
    assert not re.search(r"AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|aws-secret-access-key", text)
    assert not re.search(r"\bAKIA[0-9A-Z]{16}\b", text)
