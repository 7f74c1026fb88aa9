#!/usr/bin/env python3
"""HTTP export benchmark (issue 15 part 3): one store of N messages (16,000) exported over the
HTTP adapter from `sandbox serve` with injected faults (0%, 5%, 30%: 429 with Retry-After 1 s,
503, connection resets), one message per request (`fetch_message`, the export before pages)
against pages of 100 (`fetch_messages`), side by side on the same data and server settings.

Each export runs in its own process (`export.exporter.export_store`, the export step's own
function) against SeaweedFS on loopback, on a fresh prefix; the server is started afresh
for each run with the same fault seed. Prints wall time, requests to the platform, and
whether the export completed (an export whose platform requests failed for good ends with
the error). Never asserts on times. Run from the repo root:
`python bench/bench_http_export.py` (`make bench-http-export`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_machine  # noqa: E402  (beside this script)
import bulk_world  # noqa: E402
import local_s3  # noqa: E402  (tools/local_s3.py, on the path set above)
from bench_bulk import child_env  # noqa: E402
from bench_export import say  # noqa: E402
from bench_serve import serve  # noqa: E402

BUCKET = "bench-http-export"
TOKEN = "bench-token"
CHILD_CODE = """
import json, sys, time
from transfer_runner.export import source
from transfer_runner.export.exporter import export_store
from transfer_runner.platforms.http.client import HttpPlatform
from transfer_runner.s3_client import S3Settings, make_s3_client
config = json.loads(sys.argv[1])
source.FETCH_IDS = config["page"]
platform = HttpPlatform(config["url"], token=config["token"])
settings = S3Settings(export_to=config["export_to"], part_size_bytes=8 * 1024 * 1024)
s3 = make_s3_client(settings)
started = time.monotonic()
try:
    result = export_store(platform, s3, settings, "bench", config["account"], "archive")
    outcome = {"ok": True, "messages": result.messages}
except Exception as exc:
    outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
outcome["seconds"] = time.monotonic() - started
print(json.dumps(outcome))
"""


@contextmanager
def served(sandbox: Path, env: dict[str, str], fail_rate: float, seed: int) -> Iterator[str]:
    """`sandbox serve` with the faults and the token; yields its URL."""
    faults = ("--fail-rate", f"{fail_rate:g}", "--faults", "429,503,reset", "--seed", str(seed))
    with serve(sandbox, {**env, "TRANSFER_RUNNER_SANDBOX_TOKEN": TOKEN}, *faults) as url:
        yield url


def run_one(
    work: Path, world: bulk_world.World, env: dict[str, str], fail_rate: float, page: int
) -> dict[str, Any]:
    label = f"{fail_rate:.0%} faults, {'one message' if page == 1 else f'pages of {page}'}"
    say(f"measuring {label}")
    run_dir = work / "runs" / re.sub(r"[^a-z0-9]+", "-", label)
    bulk_world.fresh_copy(world, run_dir / "sandbox.db")
    with served(run_dir / "sandbox.db", env, fail_rate, seed=15) as url:
        config = {"url": url, "token": TOKEN, "page": page, "account": bulk_world.customer(0)[0],
                  "export_to": f"s3://{BUCKET}/{run_dir.name}"}  # fmt: skip
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", CHILD_CODE, json.dumps(config)], env=env,
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{label}: the child failed:\n{done.stderr[-2000:]}")
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    outcome.update(label=label, fail_rate=fail_rate, page=page, process_s=wall)
    shown = "completed" if outcome["ok"] else f"FAILED ({outcome['error']})"
    say(f"  {outcome['seconds']:,.1f} s, {shown}")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=16_000, help="messages in the store")
    parser.add_argument("--size-kib", type=int, default=2, help="size of each message (2)")
    parser.add_argument("--fail-rates", type=float, nargs="+", default=[0.0, 0.05, 0.3])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 messages")
    parser.add_argument("--json", type=Path, dest="json_path", help="also write figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 2000
    weed = local_s3.find_weed()
    info = bench_machine.describe(sys.executable, weed, ROOT)
    info.pop("aws")
    for name, value in info.items():
        say(f"{name}: {value}")
    work = Path(tempfile.mkdtemp(prefix="bench-http-export-"))
    server = None
    try:
        say(f"building a store of {args.messages:,} messages of {args.size_kib} KiB")
        world = bulk_world.make_world(work / "world", 1, 0, args.messages, args.size_kib)
        server = local_s3.start_server(work / "s3", engine="seaweedfs", bucket=BUCKET)
        env = child_env(server, work)
        runs = [run_one(work, world, env, rate, page)
                for rate in args.fail_rates for page in (1, 100)]  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("| faults | fetches | export s | completed |")
    print("|---:|---|---:|---|")
    for r in runs:
        fetches = "one message a request" if r["page"] == 1 else f"pages of {r['page']}"
        done = "yes" if r["ok"] else f"no: {r['error'][:80]}"
        print(f"| {r['fail_rate']:.0%} | {fetches} | {r['seconds']:,.1f} | {done} |")
    for rate in args.fail_rates:
        one, paged = (next(r for r in runs if r["fail_rate"] == rate and r["page"] == p)
                      for p in (1, 100))  # fmt: skip
        if one["ok"] and paged["ok"]:
            print(f"{rate:.0%} faults: pages are {one['seconds'] / paged['seconds']:.1f}x faster")
    if args.json_path:
        args.json_path.write_text(json.dumps(runs, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
