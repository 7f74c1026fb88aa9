"""One measured workload of the export benchmark, run in its own process by bench_export.py.

Usage: ``python bench/bench_child.py KIND CONFIG.json RESULT.json`` with KIND one of
``runner`` (the runner's ``export_store``), ``puts`` (boto3 ``put_object`` per message from a
thread pool) or ``multipart`` (one large object through boto3's multipart transfer). The S3
server comes from the AWS_* environment. The parent times the whole process and reads its
peak RSS; this process writes what it uploaded to RESULT.json so the parent can check it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

PROGRESS_EVERY_S = 5.0
MB = 1_000_000
MiB = 1024 * 1024


class Ticker:
    """Prints a progress line at most every few seconds; `total` 0 means bytes only."""

    def __init__(self, label: str, total: int, every_s: float = PROGRESS_EVERY_S) -> None:
        self.label = label
        self.total = total
        self.every_s = every_s
        self.started = time.monotonic()
        self._next = self.started + every_s
        self._lock = threading.Lock()

    def __call__(self, done: int, done_bytes: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        with self._lock:
            if now < self._next:
                return
            self._next = now + self.every_s
        elapsed = max(now - self.started, 1e-9)
        volume = f"{done_bytes / MB:,.1f} MB, {done_bytes / MB / elapsed:,.1f} MB/s"
        if self.total:
            volume = f"{done:,}/{self.total:,} messages, {done / elapsed:,.0f} msg/s, {volume}"
        print(f"    {self.label}: {volume}, {elapsed:,.0f} s", flush=True)


def run_runner(config: dict[str, Any]) -> dict[str, Any]:
    """The runner's own export of one store, through its public API only."""
    from transfer_runner.export.exporter import export_store
    from transfer_runner.platforms.sandbox import SandboxPlatform
    from transfer_runner.s3_client import S3Settings, make_s3_client

    settings = S3Settings(export_to=config["export_to"], compression=config["compression"])
    s3 = make_s3_client(settings)
    ticker = Ticker(config["label"], config["total"])
    with SandboxPlatform(config["db"]) as platform:
        result = export_store(
            platform, s3, settings, config["transfer"], config["account"], "archive", ticker
        )
    return {
        "messages": result.messages,
        "bytes": result.bytes,
        "compressed_bytes": result.compressed_bytes,
        "parts": len(result.parts),
        "index_key": result.index_key,
    }


def _client(pool: int) -> Any:
    config = Config(
        max_pool_connections=pool,
        retries={"mode": "standard", "total_max_attempts": 5},
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", config=config)


def run_puts(config: dict[str, Any]) -> dict[str, Any]:
    """Plain boto3: one ``put_object`` per .eml file, ``threads`` requests in flight."""
    files = sorted(Path(config["dir"]).iterdir())
    threads = int(config["threads"])
    s3 = _client(threads)
    bucket, prefix = config["bucket"], config["prefix"]

    def put(path: Path) -> int:
        body = path.read_bytes()
        s3.put_object(Bucket=bucket, Key=prefix + path.name, Body=body)
        return len(body)

    done, done_bytes = _pooled(put, files, threads, Ticker(config["label"], len(files)))
    return {"messages": done, "bytes": done_bytes}


def _pooled(
    task: Callable[[Path], int], items: list[Path], threads: int, ticker: Ticker
) -> tuple[int, int]:
    """Run ``task`` over ``items`` with at most 2 x ``threads`` submitted at once."""
    done = done_bytes = 0
    pending: set[Future[int]] = set()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for item in items:
            pending.add(pool.submit(task, item))
            if len(pending) >= 2 * threads:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done, done_bytes = done + 1, done_bytes + future.result()
                ticker(done, done_bytes)
        for future in pending:
            done, done_bytes = done + 1, done_bytes + future.result()
    return done, done_bytes


def run_multipart(config: dict[str, Any]) -> dict[str, Any]:
    """One object of all the messages' bytes, uploaded by boto3's multipart transfer manager."""
    path = Path(config["file"])
    size = path.stat().st_size
    transfer = TransferConfig(
        multipart_threshold=8 * MiB,
        multipart_chunksize=int(config["chunk_mib"]) * MiB,
        max_concurrency=int(config["concurrency"]),
    )
    s3 = _client(int(config["concurrency"]))
    ticker = Ticker(config["label"], 0)  # bytes only: one object
    sent = [0]

    def callback(count: int) -> None:
        sent[0] += count
        ticker(0, sent[0])

    s3.upload_file(str(path), config["bucket"], config["key"], Config=transfer, Callback=callback)
    return {"messages": 1, "bytes": size}


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "runner": run_runner,
    "puts": run_puts,
    "multipart": run_multipart,
}


def main(argv: list[str]) -> int:
    """Run KIND with CONFIG.json and write its outcome to RESULT.json; 2 on a usage error."""
    if len(argv) != 3 or argv[0] not in KINDS:
        print(
            f"usage: bench_child.py {{{','.join(KINDS)}}} CONFIG.json RESULT.json", file=sys.stderr
        )
        return 2
    kind, config_path, result_path = argv
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    started = time.monotonic()
    try:
        outcome = KINDS[kind](config)
    except Exception as exc:  # one line for the parent's report; the parent says which run
        print(f"bench_child {kind}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    outcome["inner_seconds"] = time.monotonic() - started
    Path(result_path).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
