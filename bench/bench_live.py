#!/usr/bin/env python3
"""Live-mailbox benchmark: one `apply` of a mailbox that receives and expires mail while it
runs, against a frozen one of the same size; and a pre-staged cut-over that copies only a delta.

Starts SeaweedFS on loopback, builds a sandbox of one direct customer whose archive holds N
mail-like messages of 20 KiB (~1.3:1 under gzip), and runs the real CLI in subprocesses
(`python -m transfer_runner apply DIR --yes --report-json F`), each scenario on a fresh copy
of the sandbox with its own sqlite state and S3 prefix:

* frozen      one apply, no mail flow;
* live        one apply while `transfer-runner sandbox mail --deliver 50 --expire 10 --store
              archive --size 20KiB --body mail-like` runs in its own process (started before
              the apply, stopped with SIGTERM right after it); then zero loss: every message
              the cancelled direct account still holds is in the export's index.jsonl with the
              same SHA-256;
* pre-staged  `apply --tags data` (the bulk), then 1% of the store delivered, then the full
              apply (the cut-over): the bytes it wrote to S3 and its time, against the store's
              bytes and the pre-staging's export time.

Prints tables and the issue's targets; never asserts on times. It fails (exit 1) when a
measurement could not run, when the live transfer did not complete within `--max-applies`
applies, or when a message was lost. Run from the repo root: `python bench/bench_live.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import shutil
import signal
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_machine  # noqa: E402  (beside this script)
import live_report  # noqa: E402
import live_world  # noqa: E402
import local_s3  # noqa: E402  (tools/local_s3.py, on the path set above)
from bench_export import BenchError, say  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402
from live_report import ApplyFigures, Cutover, Figures, LiveScenario  # noqa: E402
from live_world import LiveRun, LossCheck, Template, WorldError  # noqa: E402

from transfer_runner.errors import TransferRunnerError  # noqa: E402

BUCKET = "bench-live"


@dataclass(frozen=True)
class Options:
    """What to measure (resolved from the command line)."""

    messages: int
    size_kib: int
    deliver: float
    expire: float
    delta_percent: float
    archive: str
    quarantine: int
    max_applies: int
    workdir: Path | None
    keep: bool
    json_path: Path | None
    profile: Path | None
    diagnose: bool


def parse_args(argv: list[str] | None) -> Options:
    """Options from the command line; `--quick` shrinks the defaults for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="archive messages (20000; --quick 2000)")
    parser.add_argument("--size-kib", type=int, default=20, help="size of each message (20)")
    parser.add_argument("--deliver", type=float, default=50.0, help="live: messages/s in (50)")
    parser.add_argument(
        "--expire", type=float, default=10.0, help="live: messages/s expired, per store (10)"
    )
    parser.add_argument(
        "--delta-percent", type=float, default=1.0,
        help="pre-staged: share of the store delivered before the cut-over, %% (1)",
    )  # fmt: skip
    parser.add_argument(
        "--archive", choices=("migrate", "export"), default="migrate",
        help="the manifest's archive mode (migrate: export, verify and import)",
    )  # fmt: skip
    parser.add_argument(
        "--quarantine", type=int, default=0,
        help="quarantine messages of 8 KiB, migrated (0: quarantine skipped)",
    )  # fmt: skip
    parser.add_argument(
        "--max-applies", type=int, default=3,
        help="live: applies before giving up, if one fails (3); the target wants 1",
    )  # fmt: skip
    parser.add_argument(
        "--no-diagnose", dest="diagnose", action="store_false",
        help="when the live transfer does not complete in one apply, do not run it again "
        "with deliveries only (--expire 0) to measure the passes and the time without expiry",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 messages")
    parser.add_argument("--workdir", type=Path, help="where the temporary data go (system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, dest="json_path", help="also write figures here")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="run every measured apply under `py-spy record` (speedscope files in DIR); "
        "its sampling slows the applies, so the times of such a run are not figures",
    )  # fmt: skip
    args = parser.parse_args(argv)
    messages = args.messages if args.messages is not None else (2000 if args.quick else 20000)
    if min(messages, args.size_kib, args.max_applies) < 1 or args.quarantine < 0:
        parser.error("--messages, --size-kib and --max-applies must be positive")
    if args.deliver < 0 or args.expire < 0 or not 0 < args.delta_percent <= 100:
        parser.error("rates must be >= 0 and --delta-percent in (0, 100]")
    return Options(
        messages,
        args.size_kib,
        args.deliver,
        args.expire,
        args.delta_percent,
        args.archive,
        args.quarantine,
        args.max_applies,
        args.workdir,
        args.keep,
        args.json_path,
        args.profile,
        args.diagnose,
    )


# --- the three scenarios ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """What the scenarios share: options, the template, the server, environment, work dir."""

    options: Options
    template: Template
    server: local_s3.LocalS3
    s3: Any
    env: dict[str, str]
    work: Path

    def world(self, name: str) -> LiveRun:
        """A fresh copy of the template with its own state and S3 prefix."""
        quarantine = "migrate" if self.options.quarantine else "skip"
        return LiveRun(
            self.work / "runs" / name,
            self.template,
            BUCKET,
            self.env,
            archive_mode=self.options.archive,
            quarantine_mode=quarantine,
        )

    def profile(self, name: str) -> Path | None:
        if self.options.profile is None:
            return None
        self.options.profile.mkdir(parents=True, exist_ok=True)
        return self.options.profile / f"{name}.speedscope.json"

    def done_with(self, run: LiveRun) -> None:
        """Free the disk of a finished scenario (its sandbox holds the imported bytes)."""
        if not self.options.keep:
            shutil.rmtree(run.directory, ignore_errors=True)


def checked(what: str, loss: LossCheck, *, migrated: bool) -> LossCheck:
    """Say the loss check's result; BenchError if the transfer was not carried through."""
    say(
        f"  {what}: direct account {loss.direct_status}, {loss.direct_messages:,} archive "
        f"messages left, lost: {loss.lost}, not in the new account: {loss.not_imported}"
    )
    if loss.direct_status != "cancelled":
        raise BenchError(f"{what}: the direct account is {loss.direct_status}, not cancelled")
    if migrated and loss.not_imported:
        raise BenchError(f"{what}: {loss.not_imported} messages were not imported")
    return loss


def measure_frozen(bench: Bench) -> tuple[ApplyFigures, LossCheck]:
    """One apply of a mailbox that does not change."""
    run = bench.world("frozen")
    say(f"frozen: apply of {bench.template.messages:,} archive messages, no mail flow")
    applied = run.apply("frozen", profile=bench.profile("frozen"))
    figures = ApplyFigures.of(applied)
    say(f"  frozen: {figures.status}, {figures.seconds:,.1f} s")
    loss = checked("frozen", live_world.check_loss(run, bench.s3), migrated=_migrated(bench))
    bench.done_with(run)
    return figures, loss


def measure_live(bench: Bench, name: str, label: str, expire: float) -> LiveScenario:
    """Applies (one, unless it fails) while the mail flow runs, then the loss check."""
    opts = bench.options
    run = bench.world(name)
    flow = run.mail(
        "--deliver", f"{opts.deliver:g}", "--expire", f"{expire:g}",
        "--size", f"{opts.size_kib}KiB", "--body", "mail-like",
    )  # fmt: skip
    say(f"{label}: starting the mail flow ({opts.deliver:g}/s in, {expire:g}/s expired)")
    flow.start()
    applies: list[ApplyFigures] = []
    try:
        for attempt in range(1, opts.max_applies + 1):
            this = label if attempt == 1 else f"{label}, apply {attempt}"
            say(f"{this}: apply while the mail flow runs")
            applied = run.apply(this, check=False, profile=bench.profile(f"{name}-{attempt}"))
            applies.append(ApplyFigures.of(applied))
            say(f"  {this}: {applies[-1].status}, {applied.seconds:,.1f} s")
            if applied.returncode == 0 and applied.status() == "succeeded":
                break
            say(f"  {this} failed: {applies[-1].message}")
    finally:
        summary = flow.stop()
    say(
        f"  mail flow: {summary.new:,} new, {summary.delivered:,} delivered, "
        f"{summary.expired:,} expired, {summary.queued:,} still held back"
    )
    loss = None
    if applies[-1].status == "succeeded":
        loss = checked(label, live_world.check_loss(run, bench.s3), migrated=False)
    else:
        say(f"  {label}: the transfer did not complete in {len(applies)} applies")
    bench.done_with(run)
    return LiveScenario(label, opts.deliver, expire, applies, summary, loss)


def measure_prestaged(bench: Bench) -> tuple[ApplyFigures, ApplyFigures, Cutover, LossCheck]:
    """`apply --tags data`, 1% of the store delivered, then the cut-over apply."""
    opts = bench.options
    run = bench.world("prestaged")
    say("pre-staged: apply --tags data (the bulk)")
    stage = ApplyFigures.of(run.apply("pre-stage (--tags data)", "--tags", "data",
                                      profile=bench.profile("prestage")))  # fmt: skip
    say(f"  pre-stage: {stage.status}, {stage.seconds:,.1f} s, export {stage.export_s:,.1f} s")
    count = max(1, round(bench.template.messages * opts.delta_percent / 100))
    flow = run.deliver(count, opts.size_kib)
    if (flow.new, flow.delivered) != (count, count):
        raise BenchError(f"pre-staged: delivered {flow.delivered} of {count} messages")
    messages, nbytes = live_world.store_totals(run.sandbox, live_world.ACCOUNT)
    say(f"  delivered {count:,} messages; the archive holds {messages:,} ({nbytes / 1e6:,.1f} MB)")
    before = live_world.snapshot(bench.s3, BUCKET, run.export_prefix)
    say("pre-staged: the cut-over (the full apply)")
    cutover = ApplyFigures.of(run.apply("cut-over", profile=bench.profile("cutover")))
    say(f"  cut-over: {cutover.status}, {cutover.seconds:,.1f} s")
    after = live_world.snapshot(bench.s3, BUCKET, run.export_prefix)
    written: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, size in live_world.written_since(before, after).items():
        kind = written[live_world.object_kind(key)]
        kind[0], kind[1] = kind[0] + 1, kind[1] + size
    cut = Cutover(count, messages, nbytes, {k: (v[0], v[1]) for k, v in written.items()})
    loss = checked("cut-over", live_world.check_loss(run, bench.s3), migrated=_migrated(bench))
    bench.done_with(run)
    return stage, cutover, cut, loss


def _migrated(bench: Bench) -> bool:
    return bench.options.archive == "migrate"


# --- the whole run ---------------------------------------------------------------------------


def child_env(server: local_s3.LocalS3, work: Path) -> dict[str, str]:
    """The environment of every process: only the local server's AWS settings, the project
    first on the path."""
    empty = work / "aws-empty-config"
    empty.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSFER_RUNNER_"))}
    env.update(server.env())
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty))
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return env


def run(options: Options) -> Figures:
    """Build the template, start the server, measure; the server always stops."""
    runner = Path(sys.executable).parent / "transfer-runner"
    info = bench_machine.describe(str(runner), local_s3.find_weed(), ROOT)
    info["transfer_runner"] = info.pop("aws")  # describe() asks the tool given for its version
    info["load_before"] = _loadavg()
    for name, value in info.items():
        say(f"{name}: {value}")
    base = options.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-live-", dir=base))
    say(f"work directory {work}")
    try:
        figures = _with_server(options, work)
    finally:
        if options.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    info["load_after"] = _loadavg()
    report(options, info, figures)
    return figures


def _with_server(options: Options, work: Path) -> Figures:
    say(
        f"building a sandbox: one direct customer, {options.messages:,} mail-like archive "
        f"messages of {options.size_kib} KiB"
        + (f", {options.quarantine:,} quarantine messages of 8 KiB" if options.quarantine else "")
    )
    template = live_world.make_template(
        work / "template", options.messages, options.size_kib, options.quarantine
    )
    say("starting SeaweedFS on 127.0.0.1")
    server = local_s3.start_server(work / "s3", engine="seaweedfs", bucket=BUCKET)
    say(f"SeaweedFS ready at {server.endpoint_url} (process group {server.pid})")
    try:
        bench = Bench(options, template, server, server.client(), child_env(server, work), work)
        frozen, frozen_loss = measure_frozen(bench)
        live = measure_live(bench, "live", "live", options.expire)
        diagnostic = None
        if options.diagnose and not live.one_apply and options.expire:
            say("the live transfer did not complete in one apply: the same with --expire 0")
            diagnostic = measure_live(bench, "live-no-expiry", "live, deliver only", 0.0)
        stage, cutover, cut, cutover_loss = measure_prestaged(bench)
    finally:
        say("stopping SeaweedFS")
        server.stop()
    return Figures(
        template.messages,
        template.bytes,
        options.size_kib,
        options.archive,
        frozen,
        frozen_loss,
        live,
        diagnostic,
        stage,
        cutover,
        cut,
        cutover_loss,
    )


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def report(options: Options, info: dict[str, str], fig: Figures) -> None:
    """Print the tables and the targets; write the JSON figures when asked."""
    print()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, "
        f"Python {pyplatform.python_version()}, {info['weed']}; load average before "
        f"{info['load_before']}, after {info['load_after']}"
    )
    quarantine = f"{options.quarantine:,} messages, migrate" if options.quarantine else "skip"
    print(
        f"data: archive {fig.messages:,} mail-like messages of {fig.size_kib} KiB "
        f"({fig.bytes / 1e6:,.1f} MB), {fig.archive_mode}; quarantine {quarantine}"
    )
    if options.profile is not None:
        print(f"PROFILED under py-spy (files in {options.profile}): the times are not figures")
    lives = [fig.live] + ([fig.diagnostic] if fig.diagnostic else [])
    runs = [fig.frozen, *(a for live in lives for a in live.applies), fig.stage, fig.cutover]
    sections = (
        ("Applies (wall and CPU time of the process; step durations from its JSON report)",
         live_report.runs_table(runs)),
        *((f"Live mailbox: {live.label}", live_report.live_lines(live)) for live in lives),
        ("Frozen mailbox", live_report.loss_lines(fig.frozen_loss)),
        ("Pre-staged cut-over", [*live_report.cutover_lines(fig), ""]
         + live_report.loss_lines(fig.cutover_loss)),
        ("Targets", live_report.target_lines(fig)),
    )  # fmt: skip
    for title, lines in sections:
        print(f"\n{title}\n")
        print("\n".join(lines))
    print(f"\nlost: {fig.lost}" + ("" if fig.live.completed else " (live: did not complete)"))
    if options.json_path is not None:
        doc = {"command": sys.argv, "machine": info, **fig.as_dict()}
        options.json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        say(f"figures written to {options.json_path}")


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the server


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when every measurement ran and nothing was lost (times are reported,
    not enforced)."""
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        figures = run(options)
    except (
        BenchError,
        WorldError,
        local_s3.LocalS3Error,
        TransferRunnerError,
        ClientError,
        BotoCoreError,
    ) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    if figures.lost:
        print(f"bench: error: {figures.lost} message(s) lost (see above)", file=sys.stderr)
        return 1
    if not figures.live.completed:
        print(
            f"bench: error: the live transfer did not complete in {len(figures.live.applies)} "
            f"applies: {figures.live.applies[-1].message}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
