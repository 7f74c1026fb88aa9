"""Bulk runs: waves with a failure budget, shards, the shared throttle."""

from __future__ import annotations

from tests.builders import GLOBEX, World, manifest
from transfer_runner import commands
from transfer_runner.engine.waves import WaveSize
from transfer_runner.sharding import shard_of


def test_failure_budget_stops_later_waves(world: World) -> None:
    world.write("acme-com.yml", manifest(customer_ticket="T-9999"))  # fails, first in order
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    bulk = commands.BulkOptions(serial=WaveSize.parse("1"), max_fail_percentage=0)
    report = world.apply(bulk=bulk)
    by_name = {t.name: t for t in report.transfers}
    assert by_name["acme-com"].status == "failed"
    assert by_name["globex-io"].status == "not_started"
    assert by_name["globex-io"].message.startswith("not started: more than 0%")
    assert report.totals["transfers_failed"] == 1 and report.totals["transfers_not_started"] == 1
    assert world.account("C-1002")["status"] == "active"


def test_waves_without_a_budget_run_everything(world: World) -> None:
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    report = world.apply(bulk=commands.BulkOptions(serial=WaveSize.parse("50%")), forks=2)
    assert [t.status for t in report.transfers] == ["succeeded", "succeeded"]


def test_shards_split_the_transfers(world: World) -> None:
    world.write("globex-io.yml", manifest("globex-io", **GLOBEX))
    seen = []
    for index in (1, 2):
        report = world.apply(shard=(index, 2))
        seen += [t.name for t in report.transfers]
        for t in report.transfers:
            assert shard_of(t.name, 2) == index
    assert sorted(seen) == ["acme-com", "globex-io"]


def test_throttled_apply_still_completes(world: World) -> None:
    bulk = commands.BulkOptions(max_platform_calls_per_second=500, max_platform_concurrency=2)
    [result] = world.apply(bulk=bulk).transfers
    assert result.status == "succeeded", result.message
