"""`apply --platform http://…` against `sandbox serve` with injected faults, all in subprocesses.

The server runs `python -m transfer_runner sandbox serve` on a free loopback port with a token
and a seeded share of failed requests (429 with Retry-After, 503, connection resets, and lost
acknowledgements: the write is done but the reply never arrives). The runner exports to the
session's real S3 server. Whatever fails, every transfer succeeds with exactly one new account,
one transfer fee, one pro-ration credit and one comment per ticket (I3); a re-apply changes
nothing; and the token shows nowhere: not in either process's output at -vvv, not in the JSON
report, not in the state file.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders import FIXTURE, GLOBEX, manifest
from tests.served import Served, cli
from tests.unit.test_sandbox_fixture import make_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token-4f0b9d27c1a8"
TRANSFERS = ("acme-com", "globex-io")
TICKETS = ("T-5001", "T-5002", "T-5003", "T-5004")
# The functional fixture with fewer messages: each request may fail, and a 429 costs a second.
SMALL_FIXTURE = FIXTURE
for _big, _small in (
    ("{messages: 30, size: 2KiB}", "{messages: 4, size: 2KiB}"),
    ("{messages: 80, size: 3KiB}", "{messages: 6, size: 3KiB}"),
    ("{messages: 10, size: 1KiB}", "{messages: 3, size: 1KiB}"),
):
    assert _big in SMALL_FIXTURE, _big
    SMALL_FIXTURE = SMALL_FIXTURE.replace(_big, _small)


@dataclass
class Site:
    """A working directory with a sandbox, two manifests and the runner's environment."""

    root: Path
    env: dict[str, str]
    servers: list[Served]

    def serve(self, *faults: str) -> Served:
        args = ("-vvv", "sandbox", "serve", "sandbox.db", "--port", "0")
        env = {k: v for k, v in self.env.items() if k != "TRANSFER_RUNNER_PLATFORM_TOKEN"}
        served = Served.start(
            (*args, *faults),
            self.root,
            {**env, "TRANSFER_RUNNER_SANDBOX_TOKEN": TOKEN},
            self.root / f"serve-{len(self.servers)}.log",
        )
        self.servers.append(served)
        assert served.line.strip().endswith("(token from TRANSFER_RUNNER_SANDBOX_TOKEN)")
        assert served.url, (served.line, served.proc.poll(), served.log.read_text())
        return served

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli(*args), cwd=self.root, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def apply(self, url: str, report: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "-vvv", "--platform", url, "--state", "sqlite:state.db", "apply", "transfers",
            "--yes", "--forks", "2", "--report-json", report, *extra,
        )  # fmt: skip

    def dump(self) -> dict[str, Any]:
        done = self.run("sandbox", "dump", "sandbox.db")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def report(self, name: str) -> dict[str, str]:
        doc = json.loads((self.root / name).read_text())
        return {t["name"]: t["status"] for t in doc["transfers"]}


@pytest.fixture
def site(tmp_path: Path, s3_server: Any) -> Iterator[Site]:
    make_sandbox(tmp_path, SMALL_FIXTURE)
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    (transfers / "acme-com.yml").write_text(manifest())
    (transfers / "globex-io.yml").write_text(manifest("globex-io", **GLOBEX))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TRANSFER_RUNNER_")) and "proxy" not in k.lower()
    }
    env.update(s3_server.env())
    env.update(
        PYTHONPATH=str(ROOT),
        TRANSFER_RUNNER_EXPORT_TO=f"s3://{s3_server.bucket}/e2e-{uuid.uuid4().hex[:8]}",
        TRANSFER_RUNNER_PLATFORM_TOKEN=TOKEN,
        # 20% of requests fail: 9 attempts make a request failing every one of them (0.2**9)
        # a one-in-two-million event, where the default 6 would fail about one run in fifty.
        TRANSFER_RUNNER_PLATFORM_RETRIES="8",
    )
    created = Site(tmp_path, env, [])
    yield created
    for served in created.servers:
        served.kill()


def assert_exactly_once(world: dict[str, Any]) -> None:
    """I3 in the dump: one new account, one fee and one credit per transfer, one comment per
    ticket; every customer domain on its new account, the temporary domains gone."""
    accounts = {a["id"]: a for a in world["accounts"]}
    resold = [a for a in world["accounts"] if a["type"] == "resold"]
    assert len(resold) == len(TRANSFERS) and {a["parent"] for a in resold} == {"R-301"}, resold
    assert sorted(a["domains"] for a in resold) == [["acme.com", "acme.net"], ["globex.io"]]
    assert [accounts[c]["status"] for c in ("C-1001", "C-1002")] == ["cancelled", "cancelled"]
    assert accounts["C-1001"]["domains"] == accounts["C-1002"]["domains"] == []
    fees = sorted((c["idempotency_key"], c["account"], c["amount"]) for c in world["charges"])
    assert fees == [(f"transfer-fee:{name}", "R-301", "25.00") for name in TRANSFERS]
    assert sorted(c["account"] for c in world["credits"]) == ["C-1001", "C-1002"]
    comments = {t["id"]: len(t["comments"]) for t in world["tickets"]}
    assert comments == dict.fromkeys(TICKETS, 2)  # its claim, then the outcome


def assert_no_token(site: Site, *texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
    files = [site.root / "state.db", *site.root.glob("state.db-*"), *site.root.glob("*.json")]
    assert files[0].exists()
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path


def test_every_transfer_succeeds_exactly_once_under_every_fault_at_once(site: Site) -> None:
    faults = ("--fail-rate", "0.2", "--faults", "429,503,reset,lost-ack", "--retry-after", "1")
    served = site.serve(*faults, "--seed", "11")

    first = site.apply(served.url, "first.json")
    assert first.returncode == 0, (first.stdout, first.stderr)
    assert site.report("first.json") == dict.fromkeys(TRANSFERS, "succeeded")
    world = site.dump()  # while the server runs: the sandbox is SQLite in WAL mode
    assert_exactly_once(world)

    again = site.apply(served.url, "again.json")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert site.report("again.json") == dict.fromkeys(TRANSFERS, "unchanged")
    rechecked = site.apply(served.url, "recheck.json", "--recheck")
    assert rechecked.returncode == 0, (rechecked.stdout, rechecked.stderr)
    assert site.report("recheck.json") == dict.fromkeys(TRANSFERS, "unchanged")

    code, out, err = served.stop()
    server_output = served.line + out + err
    assert code == 0, server_output
    assert site.dump() == world  # the re-applies wrote nothing
    assert "injecting fault" in server_output and "Traceback" not in server_output
    runner_output = "".join(p.stdout + p.stderr for p in (first, again, rechecked))
    assert "DEBUG" in runner_output  # -vv really is on
    assert_no_token(site, server_output, runner_output)


@pytest.mark.parametrize("kind", ["429", "503", "reset", "lost-ack"])
def test_every_transfer_succeeds_exactly_once_under_one_fault_kind(site: Site, kind: str) -> None:
    served = site.serve("--fail-rate", "0.2", "--faults", kind, "--retry-after", "0")

    done = site.apply(served.url, "report.json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert site.report("report.json") == dict.fromkeys(TRANSFERS, "succeeded")

    code, out, err = served.stop()
    server_output = served.line + out + err
    assert code == 0, server_output
    assert f"injecting fault {kind} into" in server_output
    assert_exactly_once(site.dump())
    assert_no_token(site, server_output, done.stdout + done.stderr)
