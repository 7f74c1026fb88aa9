#!/usr/bin/env python3
"""Waves benchmark (issue 15): a wave over `sandbox serve --latency` at many forks, on SQLite
state and on S3 state, with data waived and with small exports.

Builds a sandbox of N direct customers (tiny mailboxes) and their manifests, starts SeaweedFS
on loopback (exports, and the S3 state), then, `--repeat` times, for each data mode, applies
the wave once on SQLite state and once on S3 state, side by side, each in its own process
with a fresh sandbox served over HTTP in another process at `--latency-ms` per request; then
on SQLite state with `--procs N` (each process with forks / N: the same transfers at once).

Prints per run: wall time, transfers per minute, the latency-bound ideal (platform calls x
latency / forks) and the ratio to it, CPU ms per transfer, state requests per transfer (S3),
`sandbox serve`'s CPU, and the machine floor: the runner's and the server's CPU over every core,
below which no wave can go on this machine however the runner waits. Per data mode: the worst
S3/SQLite wall-time ratio of the repeats (issue 15's target: within 1.3x) and the worst state
requests per transfer (target: at most 16). Never asserts on times; fails only when a run did
not do what it should (every transfer succeeded).
Run from the repo root: `python bench/bench_waves.py` (`make bench-waves`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_machine  # noqa: E402  (beside this script)
import bulk_world  # noqa: E402
import local_s3  # noqa: E402  (tools/local_s3.py, on the path set above)
from bench_bulk import child_env, serve_sandbox  # noqa: E402
from bench_export import BenchError, run_measured, say  # noqa: E402
from live_world import py_spy_argv  # noqa: E402

CHILD = BENCH_DIR / "bulk_child.py"
BUCKET = "bench-waves"
QUARANTINE, ARCHIVE, SIZE_KIB = 2, 3, 1  # messages per customer and their size
DATA_MODES = ("skip", "export")  # data waived; small exports
TARGET_S3_RATIO = 1.3
TARGET_STATE_REQUESTS = 16


@dataclass(frozen=True)
class Bench:
    """What the runs share: the template world, the children's environment, the work dir."""

    world: bulk_world.World
    env: dict[str, str]
    work: Path


@dataclass(frozen=True)
class Run:
    """One measured apply."""

    data: str
    state: str
    procs: int
    repeat: int
    transfers: int
    forks: int
    apply_s: float
    cpu_s: float
    platform_calls: int
    latency_ms: float
    state_requests: int
    peak_rss_kib: int
    server_cpu_s: float = 0.0  # `sandbox serve`'s CPU during the apply (it shares the cores)
    cores: int = os.cpu_count() or 1

    @property
    def floor_s(self) -> float:
        """The machine's bound: the runner's and the server's CPU spread over every core."""
        return (self.cpu_s + self.server_cpu_s) / self.cores

    @property
    def ideal_s(self) -> float:
        return self.platform_calls * self.latency_ms / 1000 / self.forks

    @property
    def per_minute(self) -> float:
        return self.transfers * 60 / self.apply_s

    @property
    def cpu_ms_per_transfer(self) -> float:
        return self.cpu_s * 1000 / self.transfers

    @property
    def state_per_transfer(self) -> float:
        return self.state_requests / self.transfers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=200, help="transfers in the wave (200)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per platform call (20)")
    parser.add_argument("--forks", type=int, default=32, help="forks of every apply (32)")
    parser.add_argument("--repeat", type=int, default=3, help="side-by-side repeats (3)")
    parser.add_argument(
        "--procs", type=int, nargs="*", default=[2],
        help="also --procs N on SQLite state, for each N given (2)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 transfers, once")
    parser.add_argument("--workdir", type=Path, help="where the temporary data go (system temp)")
    parser.add_argument("--json", type=Path, dest="json_path", help="also write figures here")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="run every measured apply under `py-spy record --gil` (speedscope files in DIR, "
        "for bench/speedscope_top.py); sampling slows the applies: such times are not figures",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.transfers, args.repeat = 40, 1
    if min(args.transfers, args.forks, args.repeat) < 1 or args.latency_ms <= 0:
        parser.error("--transfers, --forks, --repeat and --latency-ms must be positive")
    return args


def measure(
    bench: Bench,
    args: argparse.Namespace,
    manifests: Path,
    data: str,
    state: str,
    repeat: int,
    procs: int = 1,
    calls: int | None = None,
) -> Run:
    """One apply of the wave in a child process, on a fresh sandbox served over HTTP; `calls`
    gives the wave's platform calls where the child cannot count them (its workers')."""
    label = f"data {data}, {state} state, procs {procs}, run {repeat + 1}"
    run_dir = bench.work / "runs" / re.sub(r"[^a-z0-9]+", "-", label)
    bulk_world.fresh_copy(bench.world, run_dir / "sandbox.db")
    prefix = f"{BUCKET}/{run_dir.name}"
    config: dict[str, Any] = {
        "label": label,
        "manifests": str(manifests),
        "sandbox": str(run_dir / "sandbox.db"),
        "state": str(run_dir / "state.db"),
        "latency_ms": args.latency_ms,
        "forks": max(1, args.forks // procs),  # the same transfers at once in all
        "transfers": args.transfers,
        "export_to": f"s3://{prefix}/exports" if data != "skip" else None,
        "state_url": f"s3://{prefix}/state" if state == "s3" else None,
        "procs": procs,
    }
    say(f"measuring {label}")
    config_path, result_path = run_dir / "config.json", run_dir / "result.json"
    with serve_sandbox(bench, run_dir / "sandbox.db", args.latency_ms) as url:
        config_path.write_text(json.dumps({**config, "platform_url": url}), encoding="utf-8")
        argv = [sys.executable, str(CHILD), str(config_path), str(result_path)]
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            argv = py_spy_argv(args.profile / f"{run_dir.name}.speedscope.json", gil=True) + argv
        server_before = _server_cpu(run_dir / "sandbox.db")
        _seconds, rss = run_measured(label, argv, bench.env)
        server_s = _server_cpu(run_dir / "sandbox.db") - server_before
    got = json.loads(result_path.read_text(encoding="utf-8"))
    done = got["statuses"].get("transfers_succeeded", 0)
    if got["transfers"] != args.transfers or done != args.transfers:
        raise BenchError(f"{label}: {done} of {args.transfers} succeeded: {got['failures']}")
    forks = max(1, args.forks // procs) * procs  # transfers at once, in all processes
    run = Run(data, state, procs, repeat, args.transfers, forks, got["apply_s"], got["cpu_s"],
              calls or got["platform_calls"], args.latency_ms, sum(got["state_requests"].values()),
              rss, server_s)  # fmt: skip
    say(
        f"  {run.apply_s:,.1f} s, {run.per_minute:,.0f} transfers/min, apply/ideal "
        f"{run.apply_s / run.ideal_s:.2f}, CPU {run.cpu_ms_per_transfer:,.0f} ms/transfer, "
        f"state requests {run.state_per_transfer:.1f}/transfer {got['state_requests']}, "
        f"sandbox serve CPU {server_s:,.1f} s"
    )
    return run


def _server_cpu(sandbox: Path) -> float:
    """CPU seconds so far of the `sandbox serve` process serving `sandbox` (0 if not found)."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"serve" not in cmdline or str(sandbox).encode() not in cmdline:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        return (int(fields[11]) + int(fields[12])) / tick
    return 0.0


def table(runs: list[Run]) -> str:
    lines = [
        "| data | state | procs | run | wall s | transfers/min | ideal s | wall / ideal "
        "| CPU ms/transfer | state requests/transfer | server CPU s | machine floor s "
        "| wall / floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.data} | {r.state} | {r.procs} | {r.repeat + 1} | {r.apply_s:,.1f} "
            f"| {r.per_minute:,.0f} "
            f"| {r.ideal_s:,.1f} | {r.apply_s / r.ideal_s:.2f} | {r.cpu_ms_per_transfer:,.0f} "
            f"| {r.state_per_transfer:.1f} | {r.server_cpu_s:,.1f} | {r.floor_s:,.1f} "
            f"| {r.apply_s / r.floor_s:.2f} |"
        )
    return "\n".join(lines)


def targets(runs: list[Run]) -> str:
    lines = []
    for data in DATA_MODES:
        pairs = [
            (s, q)
            for s in runs
            for q in runs
            if s.data == q.data == data
            and s.procs == q.procs == 1
            and s.repeat == q.repeat
            and (s.state, q.state) == ("s3", "sqlite")
        ]
        if not pairs:
            continue
        worst = max(s.apply_s / q.apply_s for s, q in pairs)
        requests = max(s.state_per_transfer for s, _ in pairs)
        lines.append(
            f"data {data}: S3 state / SQLite state wall time, worst of {len(pairs)}: "
            f"{worst:.2f} (target <= {TARGET_S3_RATIO}); S3 state requests per transfer, "
            f"worst: {requests:.1f} (target <= {TARGET_STATE_REQUESTS})"
        )
    for data in DATA_MODES:
        for procs in sorted({r.procs for r in runs} - {1}):
            pairs = [
                (p, o)
                for p in runs
                for o in runs
                if p.data == o.data == data and p.state == o.state == "sqlite"
                and (p.procs, o.procs) == (procs, 1) and p.repeat == o.repeat
            ]  # fmt: skip
            if pairs:
                worst = min(o.apply_s / p.apply_s for p, o in pairs)
                ideal = max(p.apply_s / p.ideal_s for p, _ in pairs)
                lines.append(
                    f"data {data}: --procs {procs} speed-up over --procs 1 (SQLite state), worst "
                    f"of {len(pairs)}: {worst:.2f}x; --procs {procs} wall / latency-bound ideal, "
                    f"worst: {ideal:.2f} (target <= 1.5)"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    weed = local_s3.find_weed()
    info = bench_machine.describe(sys.executable, weed, ROOT)
    info.pop("aws")
    for name, value in info.items():
        say(f"{name}: {value}")
    base = args.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-waves-", dir=base))
    say(f"work directory {work}; {args.transfers} transfers, forks {args.forks}, "
        f"{args.latency_ms:g} ms per platform request")  # fmt: skip
    server = None
    try:
        world = bulk_world.make_world(work / "world", args.transfers, QUARANTINE, ARCHIVE,
                                      SIZE_KIB)  # fmt: skip
        server = local_s3.start_server(work / "s3", engine="seaweedfs", bucket=BUCKET)
        bench = Bench(world, child_env(server, work), work)
        manifests = {d: bulk_world.write_manifests(work / f"manifests-{d}", args.transfers, d)
                     for d in DATA_MODES}  # fmt: skip
        runs = []
        for repeat in range(args.repeat):
            for data in DATA_MODES:
                for state in ("sqlite", "s3"):
                    runs.append(measure(bench, args, manifests[data], data, state, repeat))
                single = runs[-2]  # this repeat's SQLite run of this data mode
                for procs in args.procs:
                    # the workers' platforms are not counted: the wave makes the same calls
                    runs.append(measure(bench, args, manifests[data], data, "sqlite", repeat,
                                        procs, calls=single.platform_calls))  # fmt: skip
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(table(runs))
    print(targets(runs))
    if args.profile is not None:
        print(f"PROFILED under py-spy (files in {args.profile}): the times are not figures")
    if args.json_path:
        args.json_path.write_text(json.dumps([asdict(r) for r in runs], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
