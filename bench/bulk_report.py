"""Figures of the bulk benchmark: one `ApplyRun` per measured apply, the ansible-core run, the
three tables and the targets of issue 4."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

TARGET_IDEAL_RATIO = 1.5  # forks 32 within 1.5 x of platform calls x latency / forks
TARGET_OVERHEAD_FACTOR = 50.0  # overhead per task at least 50 x below ansible-core's
TARGET_REAPPLY_FRACTION = 0.05  # re-apply under 5% of the first apply's time, and 0 writes


@dataclass(frozen=True)
class ApplyRun:
    """One measured `apply` (a child process): what it did and how long it took."""

    label: str
    transfers: int
    forks: int
    latency_ms: float
    apply_s: float  # inside the child, around `commands.apply` only
    process_s: float  # the whole child process, start to exit, taken by the parent
    peak_rss_kib: int
    tasks: int
    platform_calls: int
    platform_busy_s: float  # wall time with at least one platform call in flight
    writes: int  # the sandbox's write counter after minus before
    calls: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0  # CPU time of the child (all threads) inside the apply
    over_http: bool = False  # the platform was `sandbox serve` in its own process

    @property
    def per_minute(self) -> float:
        """Transfers per minute over the apply time."""
        return self.transfers * 60 / self.apply_s

    @property
    def ideal_s(self) -> float:
        """Platform calls x latency / forks: the time if nothing but the platform cost any."""
        return self.platform_calls * self.latency_ms / 1000 / self.forks

    @property
    def ideal_ratio(self) -> float:
        """Apply time over the ideal (1.0 is perfect)."""
        return self.apply_s / self.ideal_s if self.ideal_s else float("inf")

    @property
    def overhead_s(self) -> float:
        """Apply time during which no platform call was in flight: the runner's own time."""
        return self.apply_s - self.platform_busy_s

    @property
    def overhead_per_task_ms(self) -> float:
        return self.overhead_s * 1000 / self.tasks

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly figures, derived ones included."""
        return {
            **asdict(self),
            "per_minute": self.per_minute,
            "ideal_s": self.ideal_s,
            "ideal_ratio": self.ideal_ratio,
            "overhead_s": self.overhead_s,
            "overhead_per_task_ms": self.overhead_per_task_ms,
        }


@dataclass(frozen=True)
class AnsibleRun:
    """`ansible-playbook` of 13 `set_fact` tasks over `hosts` local hosts."""

    hosts: int
    forks: int
    tasks: int
    process_s: float
    peak_rss_kib: int

    @property
    def per_task_ms(self) -> float:
        """Its whole time per task: set_fact does no work of its own, all of it is overhead."""
        return self.process_s * 1000 / self.tasks


@dataclass(frozen=True)
class Figures:
    """Everything one benchmark run measured."""

    throughput: list[ApplyRun]  # at the latency, forks 1 (a sample), 8, 32
    first: ApplyRun  # the first apply that the re-apply repeats (forks 32)
    reapply: ApplyRun
    zero: ApplyRun  # zero latency, data: skip
    ansible: AnsibleRun
    scale_to: int  # the forks-1 sample extrapolated to this many transfers

    def as_dict(self) -> dict[str, Any]:
        return {
            "throughput": [r.as_dict() for r in self.throughput],
            "reapply": self.reapply.as_dict(),
            "zero_latency": self.zero.as_dict(),
            "ansible": {**asdict(self.ansible), "per_task_ms": self.ansible.per_task_ms},
            "overhead_factor": self.overhead_factor,
            "reapply_fraction": self.reapply_fraction,
        }

    @property
    def overhead_factor(self) -> float:
        """ansible-core's time per task over the runner's overhead per task."""
        own = self.zero.overhead_per_task_ms
        return self.ansible.per_task_ms / own if own > 0 else float("inf")

    @property
    def reapply_fraction(self) -> float:
        return self.reapply.apply_s / self.first.apply_s


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds >= 90 else f"{seconds:,.0f} s"


def throughput_table(runs: Sequence[ApplyRun], scale_to: int) -> list[str]:
    """Transfers per minute and the ratio to the ideal, one row per forks."""
    lines = [
        "| run | transfers | forks | platform calls | calls/transfer | apply s | process s "
        "| CPU s | CPU ms/transfer | transfers/min | ideal s | apply / ideal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.transfers:,} | {r.forks} | {r.platform_calls:,} "
            f"| {r.platform_calls / r.transfers:,.1f} | {r.apply_s:,.1f} | {r.process_s:,.1f} "
            f"| {r.cpu_s:,.1f} | {r.cpu_s * 1000 / r.transfers:,.0f} "
            f"| {r.per_minute:,.0f} | {r.ideal_s:,.1f} | {r.ideal_ratio:.2f} |"
        )
    notes = [
        f"- {r.label}: a sample; {scale_to:,} transfers at this rate would take "
        f"{_minutes(scale_to / r.per_minute * 60)}"
        for r in runs
        if r.transfers < scale_to
    ]
    return lines + ([""] + notes if notes else [])


def overhead_table(zero: ApplyRun, ansible: AnsibleRun) -> list[str]:
    """The runner's own time per task at zero latency beside ansible-core's."""
    return [
        "| run | hosts | forks | tasks | total s | platform busy s | own s | ms per task |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| transfer-runner apply, latency 0 | {zero.transfers:,} | {zero.forks} "
        f"| {zero.tasks:,} | {zero.apply_s:,.2f} | {zero.platform_busy_s:,.2f} "
        f"| {zero.overhead_s:,.2f} | {zero.overhead_per_task_ms:,.3f} |",
        f"| transfer-runner, whole process | {zero.transfers:,} | {zero.forks} "
        f"| {zero.tasks:,} | {zero.process_s:,.2f} | {zero.platform_busy_s:,.2f} "
        f"| {zero.process_s - zero.platform_busy_s:,.2f} "
        f"| {(zero.process_s - zero.platform_busy_s) * 1000 / zero.tasks:,.3f} |",
        f"| ansible-playbook, set_fact, local | {ansible.hosts:,} | {ansible.forks} "
        f"| {ansible.tasks:,} | {ansible.process_s:,.2f} | - | {ansible.process_s:,.2f} "
        f"| {ansible.per_task_ms:,.3f} |",
    ]


def reapply_table(first: ApplyRun, again: ApplyRun) -> list[str]:
    """The re-apply of the completed transfers beside the first apply."""
    lines = [
        "| run | transfers | forks | apply s | fraction of first | platform calls | writes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (first, again):
        lines.append(
            f"| {r.label} | {r.transfers:,} | {r.forks} | {r.apply_s:,.1f} "
            f"| {r.apply_s / first.apply_s:.3f} | {r.platform_calls:,} | {r.writes:,} |"
        )
    return lines


def target_lines(figures: Figures) -> list[str]:
    """The issue's three targets (four checks), measured, met or NOT met."""
    widest = max((r for r in figures.throughput if not r.over_http), key=lambda r: r.forks)
    rows = [
        (
            f"forks {widest.forks}: apply / ideal",
            f"{widest.ideal_ratio:.2f}",
            f"<= {TARGET_IDEAL_RATIO:g}",
            widest.ideal_ratio <= TARGET_IDEAL_RATIO,
        ),
        (
            "ansible-core per task / runner overhead per task",
            f"{figures.overhead_factor:,.1f}",
            f">= {TARGET_OVERHEAD_FACTOR:g}",
            figures.overhead_factor >= TARGET_OVERHEAD_FACTOR,
        ),
        (
            "re-apply platform writes",
            f"{figures.reapply.writes:,}",
            "0",
            figures.reapply.writes == 0,
        ),
        (
            "re-apply time / first apply time",
            f"{figures.reapply_fraction:.3f}",
            f"< {TARGET_REAPPLY_FRACTION:g}",
            figures.reapply_fraction < TARGET_REAPPLY_FRACTION,
        ),
    ]
    lines = ["| target | measured | wanted | |", "|---|---:|---:|---|"]
    for name, measured, wanted, met in rows:
        lines.append(f"| {name} | {measured} | {wanted} | {'met' if met else 'NOT met'} |")
    return lines


def calls_line(run: ApplyRun) -> str:
    """Platform calls per transfer by method, for the record."""
    per = ", ".join(f"{name} {count / run.transfers:g}" for name, count in run.calls.items())
    return f"- {run.label}, platform calls per transfer: {per}"
