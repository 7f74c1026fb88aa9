#!/usr/bin/env python3
"""Export benchmark (issue 3): the runner's export against `aws s3 cp`, boto3 and a ceiling.

Starts SeaweedFS on loopback and, for each corpus (`--body`: mail-like messages first, like
real mail with base64 attachments, then the older text corpus that compresses ~7:1), builds a
sandbox of N messages of about 20 KiB and measures, on the same data and server, each in its
own process (wall time, peak RSS):

* runner      `export_store` of the sandbox's archive store (tar parts + index on S3), once per
              `--compression` (the runner's default first), `--repeats` times: the worst kept;
* aws         `aws s3 cp --recursive` of the same messages written as .eml files (first corpus);
* puts        boto3 `put_object` per message with 32 threads (first corpus);
* ceiling     one large object of the same bytes, uploaded multipart by boto3: the best kept;

runner and ceiling attempts alternate, so that a busy moment of the shared machine weighs on
both; then the runner again with the big N, for its peak RSS. Prints a table and the ratios to
the issue's targets; never asserts on times. Run from the repo root:
`python bench/bench_export.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_data  # noqa: E402  (beside this script)
import bench_machine  # noqa: E402
import local_s3  # noqa: E402  (tools/local_s3.py, on the path set above)
from bench_report import Measurement, check_lines, table  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from transfer_runner.errors import TransferRunnerError  # noqa: E402
from transfer_runner.s3_client import S3Settings  # noqa: E402

CHILD = BENCH_DIR / "bench_child.py"
PUT_THREADS = 32
BUCKET = "bench-export"
TRANSFER = "bench"
HEARTBEAT_S = 10.0


class BenchError(Exception):
    """The benchmark could not run or a measurement moved the wrong data."""


@dataclass(frozen=True)
class Options:
    """What to measure (resolved from the command line)."""

    messages: int
    big: int
    size_kib: int
    compressions: tuple[str, ...]
    bodies: tuple[str, ...]
    repeats: int
    regenerate: bool
    workdir: Path | None
    keep: bool
    json_path: Path | None
    ceiling_chunk_mib: int
    ceiling_concurrency: int
    ceiling_repeats: int


def say(text: str) -> None:
    """One progress line, stamped with the time of day."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the command line ----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Options:
    """Options from the command line; `--quick` shrinks the defaults for a smoke run."""
    default_compression = S3Settings.__dataclass_fields__["compression"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="messages in the main run (20000)")
    parser.add_argument("--big", type=int, help="messages in the big runner run, 0 skips (200000)")
    parser.add_argument("--size-kib", type=int, default=20, help="size of each message (20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 and 5000 messages")
    parser.add_argument(
        "--compression",
        default=f"{default_compression},gzip",
        help=f"runner compression(s), comma separated; first one for the big run "
        f"(default: the runner's, then gzip: {default_compression},gzip)",
    )
    parser.add_argument(
        "--body",
        default=",".join(bench_data.BODIES),
        help="corpora, comma separated; the first one for the baselines and the big run "
        f"(default: {','.join(bench_data.BODIES)})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each runner row (3)")
    parser.add_argument(
        "--regenerate",
        action="store_true",
        help="let the sandbox regenerate each message as it is read (its CPU then weighs on "
        "the runner's process) instead of holding the bytes as a real platform does",
    )
    parser.add_argument("--workdir", type=Path, help="where the temporary data go (system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, dest="json_path", help="also write figures here")
    parser.add_argument("--ceiling-chunk-mib", type=int, default=16, help="multipart chunk (16)")
    parser.add_argument("--ceiling-concurrency", type=int, default=10, help="parts at once (10)")
    parser.add_argument(
        "--ceiling-repeats", type=int, default=3, help="large-object uploads, best kept (3)"
    )
    args = parser.parse_args(argv)
    messages = args.messages if args.messages is not None else (1000 if args.quick else 20000)
    big = args.big if args.big is not None else (5000 if args.quick else 200000)
    compressions = tuple(c.strip() for c in args.compression.split(",") if c.strip())
    bodies = tuple(b.strip() for b in args.body.split(",") if b.strip())
    if not bodies or set(bodies) - set(bench_data.BODIES):
        parser.error(f"--body takes {' and/or '.join(bench_data.BODIES)}")
    positive = (messages, args.size_kib, args.ceiling_chunk_mib, args.ceiling_concurrency)
    if min(positive) < 1 or min(args.ceiling_repeats, args.repeats) < 1 or big < 0:
        parser.error("--big must be 0 or more, every other number positive")
    if not compressions:
        parser.error("--compression needs at least one compression")
    for name in compressions:
        try:
            S3Settings(export_to=f"s3://{BUCKET}/check", compression=name)  # type: ignore[arg-type]
        except Exception as exc:  # ConfigError: unknown or unavailable compression
            parser.error(str(exc))
    return Options(
        messages,
        big,
        args.size_kib,
        compressions,
        bodies,
        args.repeats,
        args.regenerate,
        args.workdir,
        args.keep,
        args.json_path,
        args.ceiling_chunk_mib,
        args.ceiling_concurrency,
        args.ceiling_repeats,
    )


def find_aws() -> str:
    """The `aws` executable beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "aws"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("aws")
    if found is None:
        raise BenchError("the AWS CLI is missing: pip install awscli (make bench-export does)")
    return found


# --- running one measured process ----------------------------------------------------------


def run_measured(
    what: str, argv: list[str], env: dict[str, str], heartbeat: bool = False
) -> tuple[float, int]:
    """Run `argv`; returns its wall time (s) and its own peak RSS (KiB, from wait4).

    With `heartbeat`, a line every few seconds shows that a silent process is still running.
    """
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    next_beat = started + HEARTBEAT_S
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if heartbeat and now >= next_beat:
                say(f"  {what}: still running, {now - started:,.0f} s")
                next_beat = now + HEARTBEAT_S
            time.sleep(0.02)
    except BaseException:
        process.kill()
        process.wait()
        raise
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise BenchError(f"{what} failed: exit status {process.returncode} (its output is above)")
    return seconds, int(usage.ru_maxrss)


def run_child(
    kind: str, config: dict[str, Any], work: Path, env: dict[str, str]
) -> tuple[float, int, dict[str, Any]]:
    """Run bench_child.py KIND; returns (seconds, peak RSS KiB, what it reported)."""
    stem = f"{kind}-{config['label'].replace(' ', '_').replace('/', '_')}"
    config_path, result_path = work / f"{stem}.config.json", work / f"{stem}.result.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    argv = [sys.executable, str(CHILD), kind, str(config_path), str(result_path)]
    seconds, rss = run_measured(config["label"], argv, env)
    return seconds, rss, json.loads(result_path.read_text(encoding="utf-8"))


def child_env(server: local_s3.LocalS3, work: Path) -> dict[str, str]:
    """The environment of every measured process: only the local server's AWS settings."""
    empty = work / "aws-empty-config"
    empty.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.env())
    env.update(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        PYTHONUNBUFFERED="1",
    )
    return env


# --- checking what a measurement uploaded --------------------------------------------------


def listing(s3: Any, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under `prefix` of the bench bucket."""
    count = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", ()):
            count, size = count + 1, size + int(item["Size"])
    return count, size


def expect(what: str, found: tuple[int, int], wanted: tuple[int, int]) -> None:
    """Fail the benchmark when a measurement did not move exactly the data it was given."""
    if found != wanted:
        raise BenchError(
            f"{what}: S3 holds {found[0]:,} objects / {found[1]:,} bytes, "
            f"expected {wanted[0]:,} / {wanted[1]:,}"
        )


# --- the measurements ----------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """Everything the measurements share: server, client, environment, options, work dir."""

    server: local_s3.LocalS3
    s3: Any
    env: dict[str, str]
    options: Options
    work: Path


def measure_runner(
    bench: Bench, data: bench_data.Dataset, key: str, compression: str
) -> Measurement:
    """The runner's `export_store` of the whole archive store, under prefix `key`."""
    label = f"runner {compression} {data.body} N={data.messages:,}"
    say(f"measuring {label} ({key})")
    config = {
        "label": label,
        "db": str(data.db),
        "account": data.account,
        "transfer": TRANSFER,
        "export_to": f"s3://{BUCKET}/{key}",
        "compression": compression,
        "total": data.messages,
    }
    seconds, rss, got = run_child("runner", config, bench.work, bench.env)
    if (got["messages"], got["bytes"]) != (data.messages, data.bytes):
        raise BenchError(f"{label}: exported {got['messages']:,} messages / {got['bytes']:,} B")
    bench.s3.head_object(Bucket=BUCKET, Key=got["index_key"])
    ratio = got["bytes"] / max(got["compressed_bytes"], 1)
    extra = f"{got['parts']} parts, {got['compressed_bytes'] / 1e6:,.1f} MB stored ({ratio:.2f}:1)"
    return Measurement(key, label, data.messages, data.bytes, seconds, rss, extra)


def measure_aws(bench: Bench, data: bench_data.Dataset, eml_dir: Path, aws: str) -> Measurement:
    """`aws s3 cp --recursive` of the .eml files, with the CLI's default settings."""
    label = "aws s3 cp --recursive"
    say(f"measuring {label} ({data.messages:,} files)")
    target = f"s3://{BUCKET}/aws/"
    argv = [aws, "s3", "cp", "--recursive", "--only-show-errors", str(eml_dir), target]
    seconds, rss = run_measured(label, argv, bench.env, heartbeat=True)
    expect(label, listing(bench.s3, "aws/"), (data.messages, data.bytes))
    return Measurement("aws", label, data.messages, data.bytes, seconds, rss)


def measure_puts(bench: Bench, data: bench_data.Dataset, eml_dir: Path) -> Measurement:
    """Plain boto3: `put_object` per message from 32 threads."""
    label = f"boto3 put_object x{PUT_THREADS} threads"
    say(f"measuring {label}")
    config = {
        "label": label,
        "dir": str(eml_dir),
        "bucket": BUCKET,
        "prefix": "puts/",
        "threads": PUT_THREADS,
    }
    seconds, rss, got = run_child("puts", config, bench.work, bench.env)
    expect(label, (got["messages"], got["bytes"]), (data.messages, data.bytes))
    expect(label, listing(bench.s3, "puts/"), (data.messages, data.bytes))
    return Measurement("puts", label, data.messages, data.bytes, seconds, rss)


def ceiling_label(options: Options, data: bench_data.Dataset) -> str:
    """The label of the ceiling's rows."""
    chunk, concurrency = options.ceiling_chunk_mib, options.ceiling_concurrency
    return f"one object {data.body}, multipart {chunk} MiB x{concurrency}"


def ceiling_attempt(
    bench: Bench, data: bench_data.Dataset, whole: Path, attempt: int
) -> tuple[float, int]:
    """One upload of all the bytes as one object, multipart: what the server takes at best."""
    opts = bench.options
    label = ceiling_label(opts, data)
    say(f"measuring {label} (attempt {attempt} of {opts.ceiling_repeats})")
    key = f"ceiling-{data.body}/attempt-{attempt}.bin"
    config = {
        "label": label,
        "file": str(whole),
        "bucket": BUCKET,
        "key": key,
        "chunk_mib": opts.ceiling_chunk_mib,
        "concurrency": opts.ceiling_concurrency,
    }
    seconds, rss, _got = run_child("multipart", config, bench.work, bench.env)
    expect(label, listing(bench.s3, key), (1, data.bytes))
    bench.s3.delete_object(Bucket=BUCKET, Key=key)  # the server's disk stays as it was
    say(f"  attempt {attempt}: {seconds:,.1f} s, {data.bytes / 1e6 / seconds:,.1f} MB/s")
    return seconds, rss


def best_ceiling(
    key: str, options: Options, data: bench_data.Dataset, attempts: list[tuple[float, int]]
) -> Measurement:
    """The fastest upload is the ceiling, which makes the runner's ratio to it conservative."""
    seconds = min(s for s, _ in attempts)
    rss = max(r for _, r in attempts)
    rates = ", ".join(f"{data.bytes / 1e6 / s:,.1f}" for s, _ in attempts)
    extra = (
        f"best of {len(attempts)} uploads ({rates} MB/s); messages/s in brackets: "
        "the same bytes as one object, counted per message"
    )
    label = ceiling_label(options, data)
    return Measurement(key, label, data.messages, data.bytes, seconds, rss, extra)


def worst_run(key: str, runs: list[Measurement]) -> Measurement:
    """The slowest of the runner's runs of one row, which makes its ratio conservative."""
    worst = max(runs, key=lambda m: m.seconds)
    rates = ", ".join(f"{m.mb_per_s:,.1f}" for m in runs)
    extra = f"{worst.extra}; worst of {len(runs)} runs ({rates} MB/s)"
    return replace(worst, key=key, extra=extra)


# --- the whole run -------------------------------------------------------------------------


def run(options: Options) -> dict[str, Measurement]:
    """Start the server, build the data, measure everything; the server always stops."""
    aws = find_aws()
    info = bench_machine.describe(aws, local_s3.find_weed(), ROOT)
    for name, value in info.items():
        say(f"{name}: {value}")
    base = options.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=base))
    say(f"work directory {work}")
    try:
        found = _with_server(options, work, aws)
    finally:
        if options.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(options, info, found)
    return found


def _with_server(options: Options, work: Path, aws: str) -> dict[str, Measurement]:
    say("starting SeaweedFS on 127.0.0.1")
    server = local_s3.start_server(work / "s3", engine="seaweedfs", bucket=BUCKET)
    say(f"SeaweedFS ready at {server.endpoint_url} (process group {server.pid})")
    try:
        bench = Bench(server, server.client(), child_env(server, work), options, work)
        return _measure_all(bench, aws)
    finally:
        say("stopping SeaweedFS")
        server.stop()


def _measure_all(bench: Bench, aws: str) -> dict[str, Measurement]:
    opts = bench.options
    found: dict[str, Measurement] = {}

    def keep(m: Measurement) -> None:
        found[m.key] = m
        say(
            f"  {m.label}: {m.seconds:,.1f} s, {m.msgs_per_s:,.0f} msg/s, "
            f"{m.mb_per_s:,.1f} MB/s, peak RSS {m.peak_rss_kib / 1024:,.1f} MiB"
        )

    for number, body in enumerate(opts.bodies):
        say(f"building a sandbox of {opts.messages:,} {body} messages of {opts.size_kib} KiB")
        data = bench_data.make_sandbox(
            bench.work / body, opts.messages, opts.size_kib, body, not opts.regenerate
        )
        eml_dir, whole = bench.work / f"eml-{body}", bench.work / f"all-{body}.bin"
        say(f"writing them as .eml files and as one file ({data.bytes / 1e6:,.1f} MB each)")
        if bench_data.write_files(data, eml_dir, whole) != data.bytes:
            raise BenchError("the .eml files do not add up to the sandbox's bytes")
        for m in _measure_corpus(bench, data, whole, corpus_suffix(number, body)):
            keep(m)
        if number == 0:
            keep(measure_aws(bench, data, eml_dir, aws))
            keep(measure_puts(bench, data, eml_dir))
        shutil.rmtree(eml_dir, ignore_errors=True)
        whole.unlink(missing_ok=True)
    if opts.big:
        body = opts.bodies[0]
        say(f"building a sandbox of {opts.big:,} {body} messages of {opts.size_kib} KiB")
        big = bench_data.make_sandbox(
            bench.work / "big", opts.big, opts.size_kib, body, not opts.regenerate
        )
        key = runner_key(0, opts.compressions[0])
        keep(measure_runner(bench, big, f"{key}-big", opts.compressions[0]))
    return found


def _measure_corpus(
    bench: Bench, data: bench_data.Dataset, whole: Path, suffix: str
) -> list[Measurement]:
    """The runner rows (worst of `--repeats`) and the ceiling (best of its attempts) of one
    corpus, their attempts alternating."""
    opts = bench.options
    runs: dict[str, list[Measurement]] = {c: [] for c in opts.compressions}
    ceilings: list[tuple[float, int]] = []
    for attempt in range(1, max(opts.repeats, opts.ceiling_repeats) + 1):
        if attempt <= opts.repeats:
            for i, compression in enumerate(opts.compressions):
                key = f"{runner_key(i, compression)}{suffix}-{attempt}"
                runs[compression].append(measure_runner(bench, data, key, compression))
        if attempt <= opts.ceiling_repeats:
            ceilings.append(ceiling_attempt(bench, data, whole, attempt))
    rows = [
        worst_run(f"{runner_key(i, c)}{suffix}", runs[c]) for i, c in enumerate(opts.compressions)
    ]
    return [*rows, best_ceiling(f"ceiling{suffix}", opts, data, ceilings)]


def corpus_suffix(number: int, body: str) -> str:
    """ "" for the first corpus (the one the targets name), "@text" etc. for the others."""
    return "" if number == 0 else f"@{body}"


def runner_key(index: int, compression: str) -> str:
    """`runner` for the first compression (the one the targets name), `runner-zstd` etc."""
    return "runner" if index == 0 else f"runner-{compression}"


def report(options: Options, info: dict[str, str], found: dict[str, Measurement]) -> None:
    """Print the table and the targets; write the JSON figures when asked."""
    runners = [
        (f"{runner_key(i, c)}{suffix}", f"ceiling{suffix}")
        for number, body in enumerate(options.bodies)
        if (suffix := corpus_suffix(number, body)) is not None
        for i, c in enumerate(options.compressions)
    ]
    print()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, "
        f"Python {pyplatform.python_version()}"
    )
    print()
    print("\n".join(table(list(found.values()))))
    print()
    print("\n".join(check_lines(found, runners)))
    notes = [f"- {m.label}: {m.extra}" for m in found.values() if m.extra]
    if notes:
        print()
        print("\n".join(notes))
    if options.json_path is not None:
        doc = {
            "command": sys.argv,
            "machine": info,
            "measurements": [m.as_dict() for m in found.values()],
        }
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
