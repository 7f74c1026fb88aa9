"""Shards are stable, complete and disjoint; `auto` reads the CI and batch environments."""

from __future__ import annotations

import pytest

from transfer_runner.errors import ConfigError
from transfer_runner.sharding import in_shard, parse_shard, shard_of

NAMES = [f"customer-{i:04d}" for i in range(500)]


@pytest.mark.parametrize("count", range(1, 17))
def test_every_transfer_in_exactly_one_shard(count: int) -> None:
    shards = [in_shard(NAMES, NAMES, i, count) for i in range(1, count + 1)]
    flat = [n for shard in shards for n in shard]
    assert sorted(flat) == sorted(NAMES)
    assert len(flat) == len(set(flat))
    if count > 1:
        assert all(shards), "a shard is empty"


def test_adding_a_manifest_moves_no_other() -> None:
    before = {n: shard_of(n, 8) for n in NAMES}
    after = {n: shard_of(n, 8) for n in [*NAMES, "a-new-customer"]}
    assert all(after[n] == s for n, s in before.items())


@pytest.mark.parametrize(
    ("spec", "env", "expected"),
    [
        ("2/4", {}, (2, 4)),
        ("auto", {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "5"}, (3, 5)),
        ("auto/4", {"JOB_COMPLETION_INDEX": "0"}, (1, 4)),
        ("auto/10", {"AWS_BATCH_JOB_ARRAY_INDEX": "9"}, (10, 10)),
        ("auto", {"TRANSFER_RUNNER_SHARD": "1/2"}, (1, 2)),
    ],
)
def test_parse_shard(spec, env, expected) -> None:
    assert parse_shard(spec, env) == expected


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("0/4", {}, "between 1 and 4"),
        ("5/4", {}, "between 1 and 4"),
        ("x", {}, "I/N, auto or auto/N"),
        ("auto", {}, "found no shard index"),
        ("auto", {"AWS_BATCH_JOB_ARRAY_INDEX": "1"}, "give the count"),
    ],
)
def test_parse_shard_errors(spec, env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shard(spec, env)
