"""End to end: `report --format csv`, `report --list` and `status --failed/--label` from the
CLI in a subprocess, after real applies on the sandbox with exports to the loopback S3 server,
on SQLite state and on S3 state."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders import GLOBEX, manifest
from tests.cli_world import CliWorld

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FAILED_STEP = "Verify the customer's authorization ticket"  # it names the reseller


@pytest.fixture(params=["sqlite", "s3"])
def world(request: pytest.FixtureRequest, tmp_path: Path, s3_server: Any) -> CliWorld:
    """acme-com (label wave=w1) and globex-io (wave=w2, tier=gold) whose manifest names a
    reseller its tickets do not: globex-io fails at its first ticket check."""
    world = CliWorld(tmp_path, s3_server, "rows")
    if request.param == "s3":
        world.env["TRANSFER_RUNNER_STATE"] = f"{world.env['TRANSFER_RUNNER_EXPORT_TO']}-state"
    _write_globex(world, reseller_name="Someone Else Ltd")
    return world


def _write_globex(world: CliWorld, *, reseller_name: str) -> None:
    text = manifest("globex-io", **{**GLOBEX, "reseller_name": reseller_name})
    text = text.replace('labels: {wave: "w1"}', 'labels: {wave: "w2", tier: gold}')
    (world.root / "transfers" / "globex-io.yml").write_text(text, encoding="utf-8")


def _csv(world: CliWorld, *args: str) -> dict[str, dict[str, str]]:
    text = world.ok("report", "--format", "csv", *args)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len({r["transfer"] for r in rows}), "a transfer appears twice"
    return {r["transfer"]: r for r in rows}


def _names(status_output: str) -> list[str]:
    return [line.split()[0] for line in status_output.splitlines() if not line.startswith(" ")]


def test_csv_rows_list_and_status_filters_after_a_wave_with_a_failure(world: CliWorld) -> None:
    planned = world.run("plan", "transfers", "--format", "markdown")
    assert planned.returncode == 1, planned.stderr  # globex-io's check fails already
    assert planned.stdout.startswith("## transfer-runner plan: 2 transfer(s), 1 pending, 1 failed")
    assert "| transfer fee | 25.00 to R-301 |" in planned.stdout
    assert ":warning: " + FAILED_STEP in planned.stdout

    first = world.run("apply", "transfers", "--yes")
    assert first.returncode != 0, first.stdout  # globex-io failed

    rows = _csv(world)
    acme, globex = rows["acme-com"], rows["globex-io"]
    assert acme["status"] == "succeeded"
    assert (acme["customer_account"], acme["reseller_account"]) == ("C-1001", "R-301")
    assert acme["labels"] == "wave=w1" and acme["new_account"].startswith("A-")
    assert acme["domains_moved"] == "acme.com acme.net"
    assert int(acme["quarantine_messages"]) > 0 and int(acme["archive_bytes"]) > 0
    assert acme["fee"] == "25.00" and acme["charge_id"] and acme["credit_id"]
    assert acme["receipt"].endswith("acme-com/receipt.json")
    assert acme["manifest"].endswith("acme-com.yml") and float(acme["duration_s"]) > 0
    assert globex["status"] == "failed" and globex["failed_step"] == FAILED_STEP
    assert globex["labels"] == "tier=gold;wave=w2" and globex["message"]
    assert (globex["new_account"], globex["fee"], globex["credit"]) == ("", "", "")

    assert _names(world.ok("status", "--failed")) == ["globex-io"]
    assert _names(world.ok("status", "--label", "wave=w1")) == ["acme-com"]
    gold = world.ok("status", "--label", "wave=w2", "--label", "tier=gold")
    assert _names(gold) == ["globex-io"] and "failed: " + FAILED_STEP in gold
    assert world.ok("status", "--label", "wave=w9").strip() == "no transfer matches"
    bad = world.run("status", "--label", "wave")
    assert bad.returncode == 1 and "is not K=V" in bad.stderr

    _write_globex(world, reseller_name="Northwind IT")
    world.ok("apply", "transfers", "--yes")

    runs = json.loads(world.ok("report", "--list", "--format", "json"))
    assert len(runs) == 2 and runs[0]["started_at"] >= runs[1]["started_at"]
    second, first_run = runs[0]["run_id"], runs[1]["run_id"]
    assert runs[1]["totals"]["transfers_failed"] == 1
    assert runs[0]["totals"]["transfers_succeeded"] == 1  # globex-io; acme-com unchanged
    listed = world.ok("report", "--list")
    assert first_run in listed and second in listed and "1 failed" in listed

    merged = _csv(world, "--run", first_run, "--run", second)
    assert set(merged) == {"acme-com", "globex-io"}
    assert merged["globex-io"]["status"] == "succeeded"
    assert merged["globex-io"]["run_id"] == second and merged["globex-io"]["new_account"]
    # acme-com did nothing in the second run: its figures come from its recorded steps
    assert merged["acme-com"]["status"] == "unchanged"
    assert merged["acme-com"]["new_account"] == acme["new_account"]
    assert world.ok("status", "--failed").strip() == "no transfer matches"

    several = world.run("report", "--run", first_run, "--run", second)
    assert several.returncode == 1 and "--format csv" in several.stderr


def test_commit_finds_every_shard_of_a_wave(tmp_path: Path, s3_server: Any) -> None:
    """Two shards applied at one git commit: --commit merges both runs, each transfer once."""
    import subprocess

    world = CliWorld(tmp_path, s3_server, "shards")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "transfers"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "wave"], cwd=tmp_path, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    for shard in ("1/2", "2/2"):
        world.ok("apply", "transfers", "--yes", "--shard", shard)

    rows = _csv(world, "--commit", sha[:10])
    assert set(rows) == {"acme-com", "globex-io"}
    assert all(r["status"] == "succeeded" for r in rows.values())
    assert len({r["run_id"] for r in rows.values()}) == 2  # one from each shard's run
    listed = json.loads(world.ok("report", "--list", "--format", "json", "--commit", sha))
    assert len(listed) == 2 and all(r["git_commit"] == sha for r in listed)
    missing = world.run("report", "--format", "csv", "--commit", "deadbeef")
    assert missing.returncode == 1 and "no apply run at commit deadbeef" in missing.stderr
