"""End to end: the CLI in a subprocess against the sandbox and a real S3 server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.builders import FIXTURE, GLOBEX, manifest

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


class Cli:
    """Runs `python -m transfer_runner` with the world's settings in the environment."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "transfer_runner", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if expect is not None:
            assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
        return proc


@pytest.fixture
def cli(tmp_path: Path, s3_server: Any) -> Cli:
    (tmp_path / "fixture.yml").write_text(FIXTURE)
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    (transfers / "acme-com.yml").write_text(manifest())
    (transfers / "globex-io.yml").write_text(manifest("globex-io", **GLOBEX))
    prefix = f"e2e-{tmp_path.name[-12:]}".lower().replace("_", "-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSFER_RUNNER_"))}
    env.update(s3_server.env())
    env.update(
        TRANSFER_RUNNER_PLATFORM=f"sandbox:{tmp_path / 'sandbox.db'}",
        TRANSFER_RUNNER_STATE=f"sqlite:{tmp_path / 'state.db'}",
        TRANSFER_RUNNER_EXPORT_TO=f"s3://{s3_server.bucket}/{prefix}",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    c = Cli(tmp_path, env)
    c.prefix = prefix  # type: ignore[attr-defined]
    c.bucket = s3_server.bucket  # type: ignore[attr-defined]
    c("sandbox", "init", "sandbox.db", "--fixture", "fixture.yml")
    return c


def test_validate_plan_apply_reapply_status_report(cli: Cli) -> None:
    assert "2 manifest(s) valid" in cli("validate", "transfers").stdout

    planned = cli("plan", "transfers", expect=2)
    assert "charge 25.00 transfer fee to R-301" in planned.stdout

    applied = cli(
        "--part-size", "1", "apply", "transfers", "--yes",
        "--report-json", "report.json", "--junit", "junit.xml",
    )  # fmt: skip
    assert "acme-com" in applied.stdout
    assert "ok=0 changed=15 failed=0 skipped=0" in applied.stdout

    report = json.loads((cli.root / "report.json").read_text())
    assert {t["name"]: t["status"] for t in report["transfers"]} == {
        "acme-com": "succeeded",
        "globex-io": "succeeded",
    }
    suites = ET.parse(cli.root / "junit.xml").getroot()
    assert sum(int(s.get("failures", 0)) for s in suites.iter("testsuite")) == 0

    dump = json.loads(cli("sandbox", "dump", "sandbox.db").stdout)
    writes = dump["writes"]
    assert len(dump["charges"]) == 2

    again = cli("apply", "transfers", "--yes")
    assert again.stdout.count("changed=0 failed=0") == 2
    assert json.loads(cli("sandbox", "dump", "sandbox.db").stdout)["writes"] == writes

    cli("plan", "transfers", expect=0)
    status = json.loads(cli("status", "--json").stdout)
    assert {s["name"]: s["status"] for s in status} == {
        "acme-com": "succeeded",
        "globex-io": "succeeded",
    }
    markdown = cli("report", "--format", "markdown").stdout
    assert "acme-com" in markdown and "globex-io" in markdown
    junit = cli("report", "--format", "junit").stdout
    ET.fromstring(junit)

    s3 = boto3.client("s3", **_client_args(cli.env))
    listing = s3.list_objects_v2(Bucket=cli.bucket, Prefix=f"{cli.prefix}/acme-com/")  # type: ignore[attr-defined]
    keys = {o["Key"].split("/", 2)[2] for o in listing["Contents"]}
    assert {"quarantine/index.jsonl", "archive/index.jsonl", "archive/part-00001.tar.zst"} <= keys


def test_invalid_manifest_is_located_and_exits_1(cli: Cli) -> None:
    bad = cli.root / "transfers" / "acme-com.yml"
    bad.write_text(bad.read_text().replace("users: 40", "users: -3"))
    out = cli("validate", "transfers", expect=1)
    assert "acme-com.yml:9:" in out.stdout and "spec.subscription.users" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    applied = cli("apply", "transfers", "--yes", expect=1)
    assert "Traceback" not in applied.stderr
    assert json.loads(cli("sandbox", "dump", "sandbox.db").stdout)["writes"] == 0


def test_apply_without_yes_off_a_terminal_refuses(cli: Cli) -> None:
    out = cli("apply", "transfers", expect=1)
    assert "--yes" in out.stderr


def test_failed_transfer_exit_code_and_retry_file(cli: Cli) -> None:
    bad = cli.root / "transfers" / "globex-io.yml"
    bad.write_text(bad.read_text().replace("T-5003", "T-5001"))  # a ticket of acme's
    cli("validate", "transfers", expect=1)  # used twice across manifests
    bad.write_text(bad.read_text().replace("T-5001", "T-5999"))
    out = cli("apply", "transfers", "--yes", expect=1)
    assert "T-5999 does not exist" in out.stdout
    assert (cli.root / "transfer-runner.retry").read_text() == "globex-io\n"
    retried = cli("apply", "transfers", "--yes", "--limit", "@transfer-runner.retry", expect=1)
    assert "acme-com" not in retried.stdout


def _client_args(env: dict[str, str]) -> dict[str, str]:
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


def test_debug_logs_carry_no_credentials(cli: Cli) -> None:
    out = cli("-vvv", "apply", "transfers", "--yes", "--limit", "acme-com")
    logs = out.stdout + out.stderr
    assert "botocore" in logs  # debug logging really was on
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert cli.env[var] not in logs, var
    assert "Signature=" not in logs or "Signature=****" in logs
