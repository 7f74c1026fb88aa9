"""The container image and the cluster examples (examples/cluster/).

The Dockerfile installs only from the hash-checked lock and runs transfer-runner as a non-root
user; its build context holds what the build needs and nothing else. The Kubernetes manifests
validate against the Kubernetes JSON Schema (kubernetes-validate bundles it) and the AWS Batch
inputs against the Batch API's model (botocore bundles it), both offline. The commands they run
parse with the real CLI, and `--shard auto/N` gives each of their N workers its own shard.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from transfer_runner.cli import cli
from transfer_runner.errors import ConfigError
from transfer_runner.sharding import parse_shard

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "examples" / "cluster"
DOCKERFILE = ROOT / "Dockerfile"
INSTALL_DEPENDENCIES = (
    "python -m pip install --require-hashes --no-deps -r requirements/runtime.txt"
)
INSTALL_PACKAGE = "python -m pip install --no-deps --no-build-isolation ."
# The oldest Kubernetes whose Job has every field the example uses as GA (backoffLimitPerIndex)
OLDEST_KUBERNETES = "1.33"
INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE", re.I)


def _cli(args: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The image's arguments (its entrypoint is transfer-runner) parsed by the real CLI as it
    would run them: an unknown option, a missing value or a bad choice raises. The command's
    name and its parameters."""
    name, *rest = args
    assert name in cli.commands, name
    with cli.commands[name].make_context(name, list(rest)) as ctx:
        return name, dict(ctx.params)


def _shard_count(spec: str) -> int:
    head, _, count = spec.partition("/")
    assert head == "auto" and count.isdigit(), spec
    return int(count)


# -- Kubernetes -----------------------------------------------------------------------------
def _yaml_files() -> list[Path]:
    return sorted(p for p in CLUSTER.iterdir() if p.suffix in (".yml", ".yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _kubernetes() -> dict[str, dict[str, Any]]:
    docs = _documents(CLUSTER / "kubernetes-indexed-job.yml")
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs) and set(by_kind) == {"ServiceAccount", "Job"}
    return by_kind


def _container(job: Mapping[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_every_yaml_document_of_the_cluster_examples_parses() -> None:
    files = _yaml_files()
    assert [p.name for p in files] == ["kubernetes-indexed-job.yml"]
    for path in files:
        docs = _documents(path)
        assert docs, path
        assert all(isinstance(doc, dict) and doc.get("apiVersion") for doc in docs), path


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
def test_the_kubernetes_manifests_validate_against_the_kubernetes_schema(version: str) -> None:
    import kubernetes_validate  # the schemas of every Kubernetes version, in the package

    version = kubernetes_validate.latest_version() if version == "latest" else version
    for path in _yaml_files():
        for doc in _documents(path):
            # strict: a misspelt or misplaced field is an error, not ignored
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_kubernetes_schema_check_refuses_a_misspelt_field() -> None:
    import kubernetes_validate

    job = copy.deepcopy(_kubernetes()["Job"])
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFS"):
        kubernetes_validate.validate(job, OLDEST_KUBERNETES, strict=True)


def test_the_job_is_indexed_with_one_pod_per_shard() -> None:
    job = _kubernetes()["Job"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert "backoffLimitPerIndex" in spec or "backoffLimit" in spec
    name, params = _cli(_container(job)["args"])
    assert name == "apply"
    assert spec["completions"] == spec["parallelism"] == _shard_count(params["shard"]) == 4
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_the_job_applies_the_manifests_of_its_image_with_auto_shards() -> None:
    container = _container(_kubernetes()["Job"])
    assert "command" not in container  # the image's entrypoint: transfer-runner
    name, params = _cli(container["args"])
    assert name == "apply" and params["yes"]
    assert params["paths"] == (_manifests_in_the_image(),)
    assert params["shard"] == "auto/4"
    assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"])  # the reviewed build


def test_the_job_takes_state_exports_and_token_from_the_environment_and_aws_from_irsa() -> None:
    kinds = _kubernetes()
    account, job = kinds["ServiceAccount"], kinds["Job"]
    env = {e["name"]: e for e in _container(job)["env"]}
    assert env["TRANSFER_RUNNER_STATE"]["value"].startswith("s3://")
    assert env["TRANSFER_RUNNER_EXPORT_TO"]["value"].startswith("s3://")
    token = env["TRANSFER_RUNNER_PLATFORM_TOKEN"]
    assert "value" not in token and token["valueFrom"]["secretKeyRef"]["name"]
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    # nothing that `--shard auto` reads before JOB_COMPLETION_INDEX
    assert not {"TRANSFER_RUNNER_SHARD", "CI_NODE_INDEX"} & set(env)
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert job["metadata"]["namespace"] == account["metadata"]["namespace"]


def test_the_job_runs_as_the_images_user_on_a_read_only_root_with_no_capabilities() -> None:
    job = _kubernetes()["Job"]
    pod, container = job["spec"]["template"]["spec"], _container(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == _image_user()
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    # what the runner writes is on emptyDir volumes: the working directory and /tmp
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    for path in (_image_workdir(), "/tmp"):
        assert "emptyDir" in mounts[path], path


# -- AWS Batch ------------------------------------------------------------------------------
def _batch() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (CLUSTER / "aws-batch-array-job.json").read_text(encoding="utf-8")
    )
    return doc


@pytest.mark.parametrize(
    ("key", "operation"), [("jobDefinition", "RegisterJobDefinition"), ("submitJob", "SubmitJob")]
)
def test_the_batch_inputs_are_valid_inputs_of_the_batch_api(key: str, operation: str) -> None:
    model = botocore.session.get_session().get_service_model("batch")
    validate_parameters(_batch()[key], model.operation_model(operation).input_shape)


def test_the_batch_api_check_refuses_a_misspelt_field() -> None:
    model = botocore.session.get_session().get_service_model("batch")
    definition = copy.deepcopy(_batch()["jobDefinition"])
    definition["containerProperties"]["readOnlyRootFilesystem"] = True  # it is readonlyRoot...
    with pytest.raises(ParamValidationError, match="readOnlyRootFilesystem"):
        validate_parameters(definition, model.operation_model("RegisterJobDefinition").input_shape)


def test_the_batch_array_job_applies_one_shard_per_child() -> None:
    doc = _batch()
    definition, submit = doc["jobDefinition"], doc["submitJob"]
    container = definition["containerProperties"]
    name, params = _cli(container["command"])  # Batch's command is the image's CMD
    assert name == "apply" and params["yes"]
    assert params["paths"] == (_manifests_in_the_image(),)
    assert params["shard"] == "auto/4"
    assert submit["arrayProperties"]["size"] == _shard_count(params["shard"])
    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"])


def test_the_batch_job_gets_aws_from_its_role_and_the_token_from_secrets_manager() -> None:
    container = _batch()["jobDefinition"]["containerProperties"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", container["jobRoleArn"])
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["TRANSFER_RUNNER_STATE"].startswith("s3://")
    assert env["TRANSFER_RUNNER_EXPORT_TO"].startswith("s3://")
    assert not [name for name in env if SECRET_NAMES.search(name)]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["TRANSFER_RUNNER_PLATFORM_TOKEN"].startswith("arn:aws:secretsmanager:")
    assert not {"TRANSFER_RUNNER_SHARD", "CI_NODE_INDEX"} & set(env)


# -- the shards -----------------------------------------------------------------------------
@pytest.mark.parametrize("variable", INDEX_VARIABLES)
def test_auto_shards_from_the_worker_indexes_cover_every_shard_once(variable: str) -> None:
    shards = [parse_shard("auto/4", {variable: str(index)}) for index in range(4)]
    assert shards == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 0-based index, 1-based shard


@pytest.mark.parametrize("variable", INDEX_VARIABLES)
def test_auto_without_the_count_is_refused_where_the_scheduler_does_not_tell_it(
    variable: str,
) -> None:
    with pytest.raises(ConfigError, match="give the count as auto/N"):
        parse_shard("auto", {variable: "0"})


def test_each_example_covers_its_shards_from_the_index_its_scheduler_sets() -> None:
    job = _kubernetes()["Job"]
    batch = _batch()
    examples = [
        ("JOB_COMPLETION_INDEX", _cli(_container(job)["args"])[1], job["spec"]["completions"]),
        ("AWS_BATCH_JOB_ARRAY_INDEX",
         _cli(batch["jobDefinition"]["containerProperties"]["command"])[1],
         batch["submitJob"]["arrayProperties"]["size"]),
    ]  # fmt: skip
    for variable, params, workers in examples:
        shards = {parse_shard(params["shard"], {variable: str(i)}) for i in range(workers)}
        assert shards == {(n, workers) for n in range(1, workers + 1)}, variable


# -- the image ------------------------------------------------------------------------------
def _instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions (continuations joined, comments left out), in order."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        found.append((keyword.upper(), " ".join(rest.split())))
        current = ""
    assert not current, f"{path}: ends in a continuation"
    return found


def _final_stage(path: Path) -> list[tuple[str, str]]:
    steps = _instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def _image_user() -> str:
    (user,) = [args for keyword, args in _final_stage(DOCKERFILE) if keyword == "USER"]
    return user.partition(":")[0]


def _image_workdir() -> str:
    return [args for keyword, args in _final_stage(DOCKERFILE) if keyword == "WORKDIR"][-1]


def _manifests_in_the_image() -> str:
    """Where transfers.Dockerfile puts the manifests."""
    copies = [a for k, a in _instructions(CLUSTER / "transfers.Dockerfile") if k == "COPY"]
    assert copies == ["transfers/ /transfers/"]
    return "/transfers"


def test_the_dockerfile_installs_only_from_the_hash_checked_lock() -> None:
    steps = _instructions(DOCKERFILE)
    runs = [args for keyword, args in steps if keyword == "RUN"]
    installs = [cmd.strip() for run in runs for cmd in run.split("&&") if "pip install" in cmd]
    assert installs == [INSTALL_DEPENDENCIES, INSTALL_PACKAGE]  # the lock first, then the package
    assert ("COPY", "requirements/runtime.txt requirements/runtime.txt") in steps
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"pip3? install[^\n]*\btransfer-runner\b", text)  # from no index


def test_the_image_runs_transfer_runner_as_a_non_root_user() -> None:
    final = _final_stage(DOCKERFILE)
    user = _image_user()
    assert user.isdigit() and user != "0"  # numeric: runAsNonRoot can check it
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))
    (entrypoint,) = [json.loads(args) for keyword, args in final if keyword == "ENTRYPOINT"]
    assert entrypoint == ["transfer-runner"]
    # both stages on the same Python 3.11 base (the environment links to its interpreter)
    bases = [args.split()[0] for keyword, args in _instructions(DOCKERFILE) if keyword == "FROM"]
    assert len(set(bases)) == 1
    (default,) = [a for k, a in _instructions(DOCKERFILE) if k == "ARG" and "PYTHON_IMAGE" in a]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(@sha256:[0-9a-f]{64})?", default)


@pytest.mark.parametrize("path", [DOCKERFILE, CLUSTER / "transfers.Dockerfile"])
def test_no_image_bakes_in_a_secret(path: Path) -> None:
    for keyword, args in _instructions(path):
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", " " + args) or [args]
            assert not [n for n in names if SECRET_NAMES.search(n)], (keyword, args)


def test_the_transfers_image_only_adds_the_manifests() -> None:
    instructions = _instructions(CLUSTER / "transfers.Dockerfile")
    keywords = [k for k, _ in instructions]
    # keeps the tool image's user and entrypoint; adds the manifests and the commit they are at
    assert keywords == ["ARG", "FROM", "ARG", "ENV", "COPY"]
    assert ("ENV", "TRANSFER_RUNNER_GIT_COMMIT=${TRANSFERS_COMMIT}") in instructions
    assert _manifests_in_the_image() == "/transfers"


# -- the build context ----------------------------------------------------------------------
def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore's patterns as (excludes, regex), in order (the last match decides)."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").lstrip("/"))
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token)
            )
        patterns.append((not negated, re.compile(regex)))
    return patterns


def _in_context(path: str) -> bool:
    """Whether docker sends `path` in the build context: a pattern that matches the path or one
    of its directories decides, the last such one."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for excludes, regex in _dockerignore():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = not excludes
    return included


def test_the_build_context_holds_what_the_build_needs() -> None:
    needed = ["setup.cfg", "pyproject.toml", "README.md", "requirements/runtime.txt"]
    for top in ("transfer_runner", "schemas", "playbooks"):
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = Path(dirpath).relative_to(ROOT)
            needed += [(rel / f).as_posix() for f in filenames if not f.endswith(".pyc")]
            # a symlink (data/schemas, data/playbooks) is followed by the build: its target too
            for name in [*dirnames, *filenames]:
                if (Path(dirpath) / name).is_symlink():
                    target = (Path(dirpath) / name).resolve().relative_to(ROOT).as_posix()
                    needed.append(f"{target}/x" if (ROOT / target).is_dir() else target)
    assert "transfer_runner/cli/__init__.py" in needed and "schemas/x" in needed
    assert [path for path in needed if not _in_context(path)] == []


def test_the_build_context_leaves_out_everything_else() -> None:
    left_out = [
        ".git/config", ".venv/bin/python", "build/lib/transfer_runner/cli/__init__.py",
        "dist/transfer_runner-0.1.0.whl", "demo/state.db", ".transfer-runner/state.db",
        ".transfer-runner/sandbox.db", "tests/unit/test_cluster_examples.py", "bench/RESULTS.md",
        "bench/results/waves.json", "examples/transfers/acme-com.yml", "docs/x.md", ".env",
        "id_rsa", "transfer-runner.retry", "transfer_runner.egg-info/PKG-INFO",
        "transfer_runner/__pycache__/commands.cpython-311.pyc",
        "transfer_runner/cli/__pycache__/run.cpython-311.pyc",
        "requirements/dev.txt", "Dockerfile", ".dockerignore",
    ]  # fmt: skip
    assert [path for path in left_out if _in_context(path)] == []


# -- the lock the image installs ------------------------------------------------------------
def _lock_entries() -> list[str]:
    """requirements/runtime.txt's entries, continuations joined, comments left out."""
    text = (ROOT / "requirements" / "runtime.txt").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    lines = (" ".join(line.split(" #", 1)[0].split()) for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_every_package_of_the_lock_is_pinned_and_hash_checked() -> None:
    entries = _lock_entries()
    names = set()
    for entry in entries:
        assert not entry.startswith("-"), f"an option in the lock: {entry}"  # no other index
        requirement = entry.split(" --hash=")[0]
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^\s;=]+( ; .+)?", requirement), entry
        assert re.findall(r"--hash=sha256:[0-9a-f]{64}\b", entry), entry
        names.add(requirement.split("==")[0].lower())
    # the package is built from the checkout without build isolation: these come from the lock
    assert {"setuptools", "wheel"} <= names
