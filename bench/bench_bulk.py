#!/usr/bin/env python3
"""Bulk benchmark (issue 4): 1,000 transfers at forks 1, 8 and 32 on a slow platform, the
runner's own overhead per task against ansible-core's, and the re-apply of completed transfers.

Builds a sandbox of N direct customers (tiny mailboxes), their tickets and a few resellers, and
one manifest per customer; starts SeaweedFS on loopback for the exports (none with
`--data skip`); then measures, each apply in its own process with a fresh sandbox and sqlite
state:

* apply at `--latency-ms` (20) with forks 1 (a sample of `--sample` transfers), 8 and 32:
  transfers per minute, and the apply time over the ideal (platform calls x latency / forks);
* apply at zero latency (data: skip) with `--overhead-forks`, and `ansible-playbook` of 13
  `set_fact` tasks over as many local hosts with the same forks: time per task of both;
* forks 32 again with the platform over HTTP: `sandbox serve` at the same latency in its own
  process, as a real control panel would be (the sandbox's own work leaves the runner's CPU);
* the forks-32 apply again on its own sandbox and state: time and platform writes.

Prints tables and the issue's targets; never asserts on times. It fails only when a measurement
could not run or did not do what it should (every transfer succeeded, then unchanged; ansible
ran 13 tasks on every host). Run from the repo root: `python bench/bench_bulk.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import re
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_machine  # noqa: E402  (beside this script)
import bulk_report  # noqa: E402
import bulk_world  # noqa: E402
import local_s3  # noqa: E402  (tools/local_s3.py, on the path set above)
from bench_export import BenchError, run_measured, say  # noqa: E402
from bench_serve import ServeError, serve  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402
from bulk_report import AnsibleRun, ApplyRun, Figures  # noqa: E402

from transfer_runner.errors import TransferRunnerError  # noqa: E402

CHILD = BENCH_DIR / "bulk_child.py"
BUCKET = "bench-bulk"
QUARANTINE, ARCHIVE, SIZE_KIB = 2, 3, 1  # messages per customer and their size
THROUGHPUT_FORKS = (1, 8, 32)
_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)")


@dataclass(frozen=True)
class Options:
    """What to measure (resolved from the command line)."""

    transfers: int
    latency_ms: float
    sample: int  # transfers of the forks-1 run
    overhead_forks: int
    data: str
    workdir: Path | None
    keep: bool
    json_path: Path | None
    http: bool = True  # also forks 32 against `sandbox serve` in its own process


def parse_args(argv: list[str] | None) -> Options:
    """Options from the command line; `--quick` shrinks the defaults for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, help="transfers (and ansible hosts) (1000)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per platform call (20)")
    parser.add_argument("--sample", type=int, help="transfers of the forks-1 run (100)")
    parser.add_argument(
        "--overhead-forks", type=int, default=8, help="forks of the 0 ms and ansible runs (8)"
    )
    parser.add_argument(
        "--data",
        choices=bulk_world.DATA_MODES,
        default="export",
        help="the manifests' quarantine and archive mode in the latency runs (export)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 transfers, sample 20")
    parser.add_argument(
        "--no-http", dest="http", action="store_false",
        help="skip the forks-32 run against `sandbox serve` over HTTP",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="where the temporary data go (system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, dest="json_path", help="also write figures here")
    args = parser.parse_args(argv)
    transfers = args.transfers if args.transfers is not None else (100 if args.quick else 1000)
    sample = args.sample if args.sample is not None else (20 if args.quick else 100)
    if min(transfers, sample, args.overhead_forks) < 1 or args.latency_ms <= 0:
        parser.error("--transfers, --sample, --overhead-forks and --latency-ms must be positive")
    return Options(
        transfers,
        args.latency_ms,
        min(sample, transfers),
        args.overhead_forks,
        args.data,
        args.workdir,
        args.keep,
        args.json_path,
        args.http,
    )


def find_ansible() -> str:
    """`ansible-playbook` beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise BenchError(
            "ansible-playbook is missing: pip install ansible-core (make bench-bulk does)"
        )
    return found


# --- the measured processes ----------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """What the measurements share: options, the template world, environment, work dir."""

    options: Options
    world: bulk_world.World
    env: dict[str, str]
    work: Path
    export_to: str | None


def measure_apply(
    bench: Bench,
    label: str,
    manifests: Path,
    forks: int,
    latency_ms: float,
    run_dir: Path,
    expect: str,
    data: str,
    over_http: bool = False,
) -> ApplyRun:
    """One apply in a child process on `run_dir`'s sandbox, state and S3 prefix; checks that
    every transfer ended `expect` (succeeded, or unchanged for a re-apply) and, unless the
    manifests' `data` mode is skip, that a first apply fetched every message."""
    say(f"measuring {label}")
    count = len(list(manifests.glob("*.yml")))
    config = {
        "label": label,
        "manifests": str(manifests),
        "sandbox": str(run_dir / "sandbox.db"),
        "state": str(run_dir / "state.db"),
        "latency_ms": latency_ms,
        "forks": forks,
        "transfers": count,
        "export_to": export_to(bench, run_dir) if data != "skip" else None,
    }
    stem = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    config_path, result_path = bench.work / f"{stem}.json", bench.work / f"{stem}.result.json"
    argv = [sys.executable, str(CHILD), str(config_path), str(result_path)]
    if over_http:
        with serve_sandbox(bench, run_dir / "sandbox.db", latency_ms) as url:
            config_path.write_text(json.dumps({**config, "platform_url": url}), encoding="utf-8")
            seconds, rss = run_measured(label, argv, bench.env)
    else:
        config_path.write_text(json.dumps(config), encoding="utf-8")
        seconds, rss = run_measured(label, argv, bench.env)
    got = json.loads(result_path.read_text(encoding="utf-8"))
    ended = got["statuses"].get(f"transfers_{expect}", 0)
    if got["transfers"] != count or ended != count:
        raise BenchError(
            f"{label}: {ended:,} of {count:,} transfers {expect} ({got['statuses']}); "
            f"first failures: {got['failures']}"
        )
    if got["tasks"] != count * bulk_world.PLAYBOOK_TASKS:
        raise BenchError(f"{label}: ran {got['tasks']:,} tasks for {count:,} transfers")
    fetched, wanted = got["calls"].get("fetch_message", 0), count * (QUARANTINE + ARCHIVE)
    if data != "skip" and expect == "succeeded" and fetched < wanted:
        raise BenchError(f"{label}: exported {fetched:,} messages, expected {wanted:,}")
    run = ApplyRun(
        label,
        count,
        forks,
        latency_ms,
        got["apply_s"],
        seconds,
        rss,
        got["tasks"],
        got["platform_calls"],
        got["platform_busy_s"],
        got["writes"],
        got["calls"],
        got["cpu_s"],
        over_http,
    )
    say(
        f"  {label}: {run.apply_s:,.1f} s, {run.per_minute:,.0f} transfers/min, "
        f"{run.platform_calls:,} platform calls, {run.writes:,} writes"
    )
    return run


@contextmanager
def serve_sandbox(bench: Bench, sandbox: Path, latency_ms: float) -> Iterator[str]:
    """`transfer-runner sandbox serve` on a free loopback port, in its own process (as a real
    control panel would be), with the latency per request and the runner's token; yields its
    URL."""
    token = bench.env["TRANSFER_RUNNER_PLATFORM_TOKEN"]
    env = {**bench.env, "TRANSFER_RUNNER_SANDBOX_TOKEN": token}
    try:
        with serve(sandbox, env, "--latency", f"{latency_ms:g}") as url:
            yield url
    except ServeError as exc:
        raise BenchError(str(exc)) from None


def export_to(bench: Bench, run_dir: Path) -> str | None:
    """Each run's own S3 prefix: exports of an earlier run must not count as done."""
    return f"{bench.export_to}/{run_dir.name}" if bench.export_to else None


def fresh_run(bench: Bench, name: str) -> Path:
    """A directory with a fresh copy of the template sandbox (the state starts empty)."""
    run_dir = bench.work / "runs" / name
    bulk_world.fresh_copy(bench.world, run_dir / "sandbox.db")
    return run_dir


def measure_ansible(bench: Bench, ansible: str, hosts: int, forks: int) -> AnsibleRun:
    """`ansible-playbook -f FORKS` of 13 set_fact tasks over `hosts` local hosts."""
    label = f"ansible-playbook, {hosts:,} local hosts, forks {forks}"
    say(f"measuring {label}")
    directory = bench.work / "ansible"
    inventory, playbook = bulk_world.ansible_files(directory, hosts)
    config = directory / "ansible.cfg"
    config.write_text("[defaults]\n", encoding="utf-8")
    log = directory / "ansible-playbook.log"
    env = {k: v for k, v in bench.env.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(directory / "home"),
        ANSIBLE_LOCAL_TEMP=str(directory / "tmp"),
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOWS="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    # Its output (a line per host and task) goes to a file, as the runner's goes nowhere.
    shell = 'exec "$0" "$@" > "$ANSIBLE_BENCH_LOG" 2>&1'
    env["ANSIBLE_BENCH_LOG"] = str(log)
    argv = ["/bin/sh", "-c", shell, ansible, "-i", str(inventory), "-f", str(forks), str(playbook)]
    try:
        seconds, rss = run_measured(label, argv, env, heartbeat=True)
    except BenchError as exc:
        raise BenchError(f"{exc}\n{_tail(log)}") from exc
    done = _recap_hosts(log.read_text(errors="replace"))
    if done != hosts:
        raise BenchError(f"{label}: {done:,} of {hosts:,} hosts ran all 13 tasks\n{_tail(log)}")
    found = AnsibleRun(hosts, forks, hosts * bulk_world.PLAYBOOK_TASKS, seconds, rss)
    say(f"  {label}: {seconds:,.1f} s, {found.per_task_ms:,.2f} ms per task")
    return found


def _tail(log: Path, lines: int = 20) -> str:
    """The end of ansible-playbook's output, for an error message."""
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _recap_hosts(text: str) -> int:
    """Hosts of the play recap with every task ok and nothing unreachable or failed."""
    done = 0
    for line in text.splitlines():
        found = _RECAP.match(line)
        if found and int(found[2]) == bulk_world.PLAYBOOK_TASKS and found[3] == found[4] == "0":
            done += 1
    return done


# --- the whole run -------------------------------------------------------------------------


def measure_all(bench: Bench, ansible: str) -> Figures:
    """Forks 1 (sample), 8, 32 at the latency; the re-apply; zero latency; ansible-core."""
    opts, work = bench.options, bench.work
    manifests = bulk_world.write_manifests(work / "transfers", opts.transfers, opts.data)
    sample = bulk_world.write_manifests(work / "sample", opts.sample, opts.data)
    throughput: list[ApplyRun] = []
    runs: dict[int, Path] = {}
    for forks in THROUGHPUT_FORKS:
        chosen = sample if forks == 1 and opts.sample < opts.transfers else manifests
        runs[forks] = fresh_run(bench, f"forks-{forks}")
        label = f"apply forks {forks}, {opts.latency_ms:g} ms"
        measured = measure_apply(
            bench, label, chosen, forks, opts.latency_ms, runs[forks], "succeeded", opts.data
        )
        throughput.append(measured)
    first = throughput[-1]
    if opts.http:
        label = f"apply forks {first.forks}, {opts.latency_ms:g} ms, over HTTP (sandbox serve)"
        run_dir = fresh_run(bench, "http")
        args = (bench, label, manifests, first.forks, opts.latency_ms, run_dir, "succeeded")
        throughput.append(measure_apply(*args, opts.data, over_http=True))
    label = f"re-apply forks {first.forks}, {opts.latency_ms:g} ms"
    reapply = measure_apply(
        bench,
        label,
        manifests,
        first.forks,
        opts.latency_ms,
        runs[first.forks],
        "unchanged",
        opts.data,
    )
    skip = bulk_world.write_manifests(work / "transfers-skip", opts.transfers, "skip")
    label = f"apply forks {opts.overhead_forks}, 0 ms, data skip"
    zero_run = fresh_run(bench, "zero")
    zero = measure_apply(
        bench, label, skip, opts.overhead_forks, 0.0, zero_run, "succeeded", "skip"
    )
    shutil.rmtree(work / "runs", ignore_errors=True)
    found = measure_ansible(bench, ansible, opts.transfers, opts.overhead_forks)
    return Figures(throughput, first, reapply, zero, found, opts.transfers)


def child_env(server: local_s3.LocalS3 | None, work: Path) -> dict[str, str]:
    """The environment of every measured process: only the local server's AWS settings, and
    the token `serve_sandbox` requires for the runner's HTTP adapter."""
    empty = work / "aws-empty-config"
    empty.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRANSFER_RUNNER_"))}
    if server is not None:
        env.update(server.env())
    env.update(TRANSFER_RUNNER_PLATFORM_TOKEN=secrets.token_urlsafe(32))
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty))
    env.update(AWS_EC2_METADATA_DISABLED="true", PYTHONUNBUFFERED="1")
    return env


def run(options: Options) -> Figures:
    """Build the world, start the server (unless data: skip), measure; the server always stops."""
    ansible = find_ansible()
    weed = local_s3.find_weed() if options.data != "skip" else None
    info = bench_machine.describe(ansible, weed, ROOT)
    info["ansible"] = info.pop("aws")  # describe() asks the tool given for its version
    for name, value in info.items():
        say(f"{name}: {value}")
    base = options.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-", dir=base))
    say(f"work directory {work}")
    try:
        figures = _with_server(options, work, ansible)
    finally:
        if options.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(options, info, figures)
    return figures


def _with_server(options: Options, work: Path, ansible: str) -> Figures:
    say(
        f"building a sandbox of {options.transfers:,} direct customers ({QUARANTINE} quarantine "
        f"+ {ARCHIVE} archive messages of {SIZE_KIB} KiB each), their tickets, "
        f"{len(bulk_world.RESELLERS)} resellers"
    )
    world = bulk_world.make_world(work / "world", options.transfers, QUARANTINE, ARCHIVE, SIZE_KIB)
    if options.data == "skip":
        say("data: skip, so no S3 server")
        return measure_all(Bench(options, world, child_env(None, work), work, None), ansible)
    say("starting SeaweedFS on 127.0.0.1")
    server = local_s3.start_server(work / "s3", engine="seaweedfs", bucket=BUCKET)
    say(f"SeaweedFS ready at {server.endpoint_url} (process group {server.pid})")
    try:
        bench = Bench(options, world, child_env(server, work), work, f"s3://{BUCKET}/bench")
        return measure_all(bench, ansible)
    finally:
        say("stopping SeaweedFS")
        server.stop()


def report(options: Options, info: dict[str, str], figures: Figures) -> None:
    """Print the tables and the targets; write the JSON figures when asked."""
    print()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, "
        f"Python {pyplatform.python_version()}, {info['ansible']}"
    )
    print(
        f"data: {options.data} ({QUARANTINE} quarantine + {ARCHIVE} archive messages of "
        f"{SIZE_KIB} KiB per customer); platform latency {options.latency_ms:g} ms per call"
    )
    sections = (
        ("Throughput", bulk_report.throughput_table(figures.throughput, figures.scale_to)),
        ("Overhead at zero latency", bulk_report.overhead_table(figures.zero, figures.ansible)),
        ("Re-apply", bulk_report.reapply_table(figures.first, figures.reapply)),
        ("Targets (issue 4)", bulk_report.target_lines(figures)),
    )
    for title, lines in sections:
        print(f"\n{title}\n")
        print("\n".join(lines))
    print()
    for one in (*figures.throughput, figures.reapply, figures.zero):
        print(bulk_report.calls_line(one))
    if options.json_path is not None:
        doc = {"command": sys.argv, "machine": info, **figures.as_dict()}
        options.json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        say(f"figures written to {options.json_path}")


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the server


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when every measurement ran (targets are reported, not enforced)."""
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(options)
    except (
        BenchError,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
