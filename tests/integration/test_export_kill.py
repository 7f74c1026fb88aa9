"""kill -9 at named points of export, verify and import, then a resume, on real S3 (loopback).

Each run is a child process (`CHILD` below) working on a sandbox platform; it SIGKILLs itself
where `TRANSFER_RUNNER_CRASH_AT` says (see transfer_runner/kill_points.py). Afterwards S3 and
the sandbox are checked: no index vouching for a half export, no completed part uploaded
again, every message exactly once. Also: the peak RSS of a 5,000-message export against a
500-message one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3
import local_s3
import pytest

from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

integration = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SOURCE, TARGET = "C-1001", "C-2002"

CHILD = textwrap.dedent(
    """\
    import json, os, resource, signal, sys
    from transfer_runner.export import (
        S3Settings, export_store, import_store, make_s3_client, verify_store)
    from transfer_runner.kill_points import install_from_env
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    install_from_env()  # as the CLI's entry point does
    action, db, url, name, part_size, compression = sys.argv[1:7]
    settings = S3Settings(url, part_size_bytes=int(part_size), compression=compression)
    s3 = make_s3_client(settings)
    written = []

    def note(params, model, **_):
        if model.name in ("PutObject", "CreateMultipartUpload"):
            written.append(params["Key"])

    def die(**_):
        os.kill(os.getpid(), signal.SIGKILL)

    s3.meta.events.register("before-parameter-build.s3", note)
    if os.environ.get("KILL_ON_UPLOAD_PART"):
        s3.meta.events.register("after-call.s3.UploadPart", die)
    with SandboxPlatform(db) as platform:
        if action == "export":
            out = export_store(platform, s3, settings, name, "C-1001", "archive").facts()
        elif action == "verify":
            result = verify_store(platform, s3, settings, name, "C-1001", "archive")
            out = {"ok": result.ok, "problems": list(result.problems[:5])}
        else:
            key = "import:" + name + ":archive"
            result = import_store(
                platform, s3, settings, name, "C-2002", "archive", key, from_account="C-1001"
            )
            out = {"imported": result.imported, "skipped": result.skipped}
    out["written"] = written
    out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))
    """
)


def make_world(tmp_path: Path, messages: int, size: str) -> Path:
    fixture = tmp_path / "fixture.yml"
    fixture.write_text(
        textwrap.dedent(
            f"""\
            seed: 5
            accounts:
              - id: {SOURCE}
                type: direct
                name: Acme
                domains: [acme.com]
                users: 5
                services: [spamstopshere]
                archive: {{messages: {messages}, size: {size}}}
              - id: {TARGET}
                type: direct
                name: Target
                domains: [target.example]
                users: 5
                services: [spamstopshere]
            """
        ),
        encoding="utf-8",
    )
    db = tmp_path / "sandbox.db"
    init_sandbox(db, fixture)
    return db


class Runner:
    """Runs the child against one sandbox and one export destination."""

    def __init__(
        self, tmp_path: Path, server: local_s3.LocalS3, prefix: str, db: Path, **opts: Any
    ) -> None:
        self.script = tmp_path / "child.py"
        self.script.write_text(CHILD, encoding="utf-8")
        self.server = server
        self.db = db
        self.url = f"s3://{server.bucket}/{prefix}"
        self.base = f"{prefix}/acme-com/archive/"
        self.part_size = str(opts.get("part_size", 64 * 1024))
        self.compression = opts.get("compression", "gzip")

    def run(self, action: str, crash: str | None = None, **env: str) -> tuple[int, dict[str, Any]]:
        child_env = {**os.environ, **self.server.env(), **env, "PYTHONPATH": str(ROOT)}
        child_env.pop("TRANSFER_RUNNER_CRASH_AT", None)
        if crash:
            child_env["TRANSFER_RUNNER_CRASH_AT"] = crash
        argv = [sys.executable, str(self.script), action, str(self.db), self.url, "acme-com"]
        proc = subprocess.run(
            [*argv, self.part_size, self.compression],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode == 0:
            return 0, json.loads(proc.stdout.strip().splitlines()[-1])
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        return proc.returncode, {}

    def s3(self) -> Any:
        return boto3.client("s3", **_client_args(self.server))

    def listing(self) -> dict[str, str]:
        pages = (
            self.s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.server.bucket, Prefix=self.base)
        )
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", ())}

    def index_ids(self) -> list[str]:
        body = self.s3().get_object(Bucket=self.server.bucket, Key=self.base + "index.jsonl")
        return [json.loads(line)["id"] for line in body["Body"].read().decode().splitlines()]

    def open_uploads(self) -> list[str]:
        found = self.s3().list_multipart_uploads(Bucket=self.server.bucket, Prefix=self.base)
        return [u["Key"] for u in found.get("Uploads", ())]


def _client_args(server: local_s3.LocalS3) -> dict[str, Any]:
    return {
        "endpoint_url": server.endpoint_url,
        "aws_access_key_id": server.access_key,
        "aws_secret_access_key": server.secret_key,
        "region_name": server.region,
    }


def source_ids(db: Path, account: str = SOURCE) -> list[str]:
    with SandboxPlatform(db) as platform:
        ids: list[str] = []
        cursor = None
        while True:
            page = platform.list_messages(account, "archive", cursor, 1000)
            ids += [m.id for m in page.messages]
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return make_world(tmp_path, 400, "2KiB")


@integration
@pytest.mark.parametrize(
    "crash",
    ["export-mid-part-3", "export-upload-part-2", "export-after-part-4", "export-before-index"],
)
def test_export_killed_then_resumed(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str, world: Path, crash: str
) -> None:
    runner = Runner(tmp_path, s3_server, s3_env, world)
    code, _ = runner.run("export", crash)
    assert code == -signal.SIGKILL
    before = runner.listing()
    assert runner.base + "index.jsonl" not in before
    journalled = {
        k.replace("_journal/", "").replace(".json", ".tar.gz") for k in before if "/_journal/" in k
    }
    assert all(k in before for k in journalled)

    code, out = runner.run("export")
    assert code == 0
    assert not journalled & set(out["written"]), "a completed part was uploaded again"
    assert runner.index_ids() == source_ids(world)  # every message once, in order
    assert set(runner.listing()) == {
        *out["parts"],
        out["index_key"],
        *(
            p.replace(runner.base, runner.base + "_journal/").replace(".tar.gz", ".json")
            for p in out["parts"]
        ),
        runner.base + "_journal/checkpoint.json",
    }
    code, verified = runner.run("verify")
    assert code == 0 and verified["ok"], verified["problems"]


@integration
def test_export_killed_before_its_checkpoint_is_complete_and_the_next_pass_reads_the_records(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str, world: Path
) -> None:
    runner = Runner(tmp_path, s3_server, s3_env, world)
    code, _ = runner.run("export", "export-before-checkpoint")
    assert code == -signal.SIGKILL
    before = runner.listing()
    assert runner.base + "index.jsonl" in before  # the export is whole: only the shortcut is not
    assert runner.base + "_journal/checkpoint.json" not in before
    code, out = runner.run("export")
    assert code == 0 and out["written"] == []  # nothing new: nothing written, checkpoint or not
    assert runner.listing() == before and runner.index_ids() == source_ids(world)
    code, verified = runner.run("verify")
    assert code == 0 and verified["ok"], verified["problems"]


@integration
def test_export_killed_inside_a_multipart_upload_aborts_the_orphan_and_resumes(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str
) -> None:
    db = make_world(tmp_path, 20, "1MiB")
    runner = Runner(tmp_path, s3_server, s3_env, db, part_size=9 * 1024 * 1024, compression="none")
    code, _ = runner.run("export", KILL_ON_UPLOAD_PART="1")
    assert code == -signal.SIGKILL
    assert runner.open_uploads(), "the kill should leave a multipart upload open"
    code, out = runner.run("export")
    assert code == 0 and out["messages"] == 20
    assert runner.open_uploads() == []
    assert runner.index_ids() == source_ids(db)
    code, verified = runner.run("verify")
    assert code == 0 and verified["ok"], verified["problems"]


@integration
def test_verify_killed_changes_nothing_and_verifies_on_rerun(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str, world: Path
) -> None:
    runner = Runner(tmp_path, s3_server, s3_env, world)
    assert runner.run("export")[0] == 0
    before = runner.listing()
    code, _ = runner.run("verify", "verify-after-part-2")
    assert code == -signal.SIGKILL
    assert runner.listing() == before
    code, verified = runner.run("verify")
    assert code == 0 and verified["ok"], verified["problems"]
    assert verified["written"] == []


@integration
def test_import_killed_then_resumed_imports_every_message_once(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str, world: Path
) -> None:
    runner = Runner(tmp_path, s3_server, s3_env, world)
    assert runner.run("export")[0] == 0
    code, _ = runner.run("import", "import-after-part-2")
    assert code == -signal.SIGKILL
    partial = len(source_ids(world, TARGET))
    assert 0 < partial < 400
    code, out = runner.run("import")
    assert code == 0
    assert out["imported"] == 400 - partial and out["skipped"] == partial
    assert source_ids(world, TARGET) == source_ids(world)
    with SandboxPlatform(world) as platform:
        assert platform.count_messages(TARGET, "archive") == platform.count_messages(
            SOURCE, "archive"
        )


@integration
def test_peak_memory_does_not_grow_with_the_mailbox(
    tmp_path: Path, s3_server: local_s3.LocalS3, s3_env: str
) -> None:
    peaks = {}
    for count in (500, 5000):
        home = tmp_path / str(count)
        home.mkdir()
        db = make_world(home, count, "8KiB")
        runner = Runner(home, s3_server, f"{s3_env}-{count}", db, part_size=1024 * 1024)
        code, out = runner.run("export")
        assert code == 0 and out["messages"] == count
        peaks[count] = out["maxrss_kib"]
    # Ten times the messages (40 MiB against 4 MiB): peak RSS within a generous 25%.
    assert peaks[5000] <= peaks[500] * 1.25, peaks
