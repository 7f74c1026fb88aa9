"""Shards: a stable 1/N of the transfers for each of N runners (CI matrices, batch arrays).

A transfer's shard is a hash of its name alone, so adding or removing a manifest never moves
the others to another shard.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from transfer_runner.errors import ConfigError

__all__ = ["shard_of", "parse_shard", "in_shard"]

T = TypeVar("T")

# (index variable, is it 1-based, count variable or None)
_AUTO_SOURCES = (
    ("CI_NODE_INDEX", True, "CI_NODE_TOTAL"),  # GitLab parallel:
    ("JOB_COMPLETION_INDEX", False, None),  # Kubernetes indexed Jobs
    ("AWS_BATCH_JOB_ARRAY_INDEX", False, None),  # AWS Batch array jobs
)


def shard_of(name: str, count: int) -> int:
    """The 1-based shard of `name` among `count` shards."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(spec: str, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """`I/N` (1-based), `auto` or `auto/N` -> (index, count); ConfigError when it cannot tell."""
    env = os.environ if env is None else env
    head, _, tail = spec.partition("/")
    if head == "auto":
        return _auto(env, tail)
    return _pair(head, tail, spec)


def _pair(index: str, count: str, spec: str) -> tuple[int, int]:
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"--shard must be I/N, auto or auto/N, not {spec!r}") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard {spec}: the index must be between 1 and {max(n, 1)}")
    return i, n


def _auto(env: Mapping[str, str], count: str) -> tuple[int, int]:
    if env.get("TRANSFER_RUNNER_SHARD"):
        value = env["TRANSFER_RUNNER_SHARD"]
        head, _, tail = value.partition("/")
        return _pair(head, tail, value)
    for index_var, one_based, count_var in _AUTO_SOURCES:
        if env.get(index_var, "") == "":
            continue
        total = env.get(count_var, "") if count_var else ""
        total = total or count
        if not total:
            raise ConfigError(f"--shard auto: {index_var} is set; give the count as auto/N")
        index = int(env[index_var]) + (0 if one_based else 1)
        return _pair(str(index), total, f"auto ({index_var}={env[index_var]})")
    raise ConfigError(
        "--shard auto found no shard index (TRANSFER_RUNNER_SHARD, CI_NODE_INDEX, "
        "JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX)"
    )


def in_shard(items: Sequence[T], names: Sequence[str], index: int, count: int) -> list[T]:
    """The items whose name falls in shard `index` of `count`, in the order given."""
    return [item for item, name in zip(items, names, strict=True) if shard_of(name, count) == index]
