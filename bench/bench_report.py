"""Figures of the export benchmark: one `Measurement` per run, the table and the targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MB = 1_000_000
TARGET_MSGS_VS_AWS = 3.0  # runner messages/s at least 3 x `aws s3 cp --recursive`
TARGET_MBS_VS_CEILING = 0.60  # runner MB/s at least 60% of one large multipart object
TARGET_RSS_SPREAD = 0.10  # runner peak RSS within 10% between N and the big N


@dataclass(frozen=True)
class Measurement:
    """One measured process: what it moved, its wall time and its peak RSS (KiB)."""

    key: str  # runner, aws, puts, ceiling, runner-big
    label: str
    messages: int  # messages moved (the ceiling moves the same ones as one object)
    bytes: int  # message bytes moved (before any compression)
    seconds: float  # wall time of the whole process, start to exit
    peak_rss_kib: int
    extra: str = ""

    @property
    def msgs_per_s(self) -> float:
        """Messages per second over the whole process time."""
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Message megabytes (10^6 bytes) per second over the whole process time."""
        return self.bytes / MB / self.seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly figures, rates included."""
        return {**asdict(self), "msgs_per_s": self.msgs_per_s, "mb_per_s": self.mb_per_s}


def table(rows: Sequence[Measurement]) -> list[str]:
    """A markdown table of the measurements (it reads fine on a terminal too)."""
    lines = [
        "| run | messages | MB | seconds | messages/s | MB/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        ceiling = m.key.startswith("ceiling")
        msgs = f"({m.msgs_per_s:,.0f})" if ceiling else f"{m.msgs_per_s:,.0f}"
        lines.append(
            f"| {m.label} | {m.messages:,} | {m.bytes / MB:,.1f} | {m.seconds:,.1f} | {msgs} "
            f"| {m.mb_per_s:,.1f} | {m.peak_rss_kib / 1024:,.1f} |"
        )
    return lines


@dataclass(frozen=True)
class Check:
    """One target: the measured ratio beside the one required."""

    name: str
    ratio: float
    target: str
    met: bool


def checks(
    found: dict[str, Measurement], runner_key: str = "runner", ceiling_key: str = "ceiling"
) -> list[Check]:
    """The issue's targets for one runner row against the baselines present."""
    result: list[Check] = []
    runner = found.get(runner_key)
    if runner is None:
        return result
    who = found[runner_key].label
    baselines = ceiling_key == "ceiling"  # aws and puts ran on the first corpus only
    if baselines and "aws" in found:
        ratio = runner.msgs_per_s / found["aws"].msgs_per_s
        met = ratio >= TARGET_MSGS_VS_AWS
        name = f"{who} msg/s / aws s3 cp msg/s"
        result.append(Check(name, ratio, f">= {TARGET_MSGS_VS_AWS:g}", met))
    if baselines and "puts" in found:
        ratio = runner.msgs_per_s / found["puts"].msgs_per_s
        result.append(Check(f"{who} msg/s / boto3 put_object x32 msg/s", ratio, "(info)", True))
    if ceiling_key in found:
        ratio = runner.mb_per_s / found[ceiling_key].mb_per_s
        met = ratio >= TARGET_MBS_VS_CEILING
        name = f"{who} MB/s / large-object MB/s"
        result.append(Check(name, ratio, f">= {TARGET_MBS_VS_CEILING:.2f}", met))
    big = found.get(f"{runner_key}-big")
    if big is not None:
        ratio = big.peak_rss_kib / runner.peak_rss_kib
        target = f"{1 - TARGET_RSS_SPREAD:.2f} .. {1 + TARGET_RSS_SPREAD:.2f}"
        met = abs(ratio - 1) <= TARGET_RSS_SPREAD
        name = f"peak RSS {big.label} / {who}"
        result.append(Check(name, ratio, target, met))
    return result


def check_lines(
    found: dict[str, Measurement], runner_keys: Sequence[str | tuple[str, str]]
) -> list[str]:
    """The targets of every runner row (a key, or a key and its ceiling's), as a table."""
    lines = ["| ratio | measured | target | |", "|---|---:|---:|---|"]
    for keys in runner_keys:
        key, ceiling = (keys, "ceiling") if isinstance(keys, str) else keys
        for c in checks(found, key, ceiling):
            verdict = "" if c.target == "(info)" else ("met" if c.met else "NOT met")
            lines.append(f"| {c.name} | {c.ratio:.2f} | {c.target} | {verdict} |")
    return lines
