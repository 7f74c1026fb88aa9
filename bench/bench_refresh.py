#!/usr/bin/env python3
"""Refresh and preflight benchmark (issue 13): what a refreshing `plan` of N completed transfers
costs over `sandbox serve --latency MS`, and how fast a preflight failure answers.

Builds N direct customers (data: skip) and applies them all on the embedded sandbox, then
serves that sandbox over HTTP with the latency per request and times, each in its own process:

* `plan --no-refresh` (the state store alone: one preflight read);
* `plan` (refresh, the default) at `--forks` 1 (on a sample), 8 (the default) and 32: time, and
  its ratio to the latency-bound ideal (platform reads x latency / forks);
* the preflight failures: an unreachable platform, a wrong token, no export destination.

Prints a table; asserts nothing on times. It fails only when a run did not do what it should.
Run from the repo root: `python bench/bench_refresh.py [--transfers 1000] [--latency-ms 20]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

import bulk_world  # noqa: E402  (beside this script)
from bench_serve import serve  # noqa: E402

TOKEN = "bench-refresh-token-0123456789"
READS_PER_TRANSFER = 4  # the two accounts, the fee, the credit (modules/refresh.py)


def _env(work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSFER_RUNNER_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), TRANSFER_RUNNER_STATE=f"sqlite:{work / 'state.db'}", **extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "transfer_runner", *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{argv}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr}")
    return elapsed, done.stdout + done.stderr


@contextmanager
def _served(sandbox: Path, env: dict[str, str], latency_ms: float) -> Iterator[str]:
    served_env = {**env, "TRANSFER_RUNNER_SANDBOX_TOKEN": TOKEN}  # never in argv (`ps`)
    with serve(sandbox, served_env, "--latency", f"{latency_ms:g}") as url:
        yield url


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--sample", type=int, default=50, help="transfers planned at forks 1")
    args = parser.parse_args()
    n, latency = args.transfers, args.latency_ms
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        work = Path(tmp)
        world = bulk_world.make_world(work, n, 0, 0, 1)
        manifests = bulk_world.write_manifests(work / "transfers", n, "skip")
        sample = bulk_world.write_manifests(work / "sample", min(args.sample, n), "skip")
        sandbox = bulk_world.fresh_copy(world, work / "sandbox.db")
        embedded = _env(work, TRANSFER_RUNNER_PLATFORM=f"sandbox:{sandbox}")
        print(f"applying {n} transfers (data: skip) on the embedded sandbox ...", flush=True)
        elapsed, out = _run(["-q", "apply", str(manifests), "--yes", "--forks", "32"],
                            embedded, work, (0,))  # fmt: skip
        assert f"{n} succeeded" in out, out[-2000:]
        print(f"  done in {elapsed:.1f} s")
        rows: list[tuple[str, float, float | None]] = []
        with _served(sandbox, embedded, latency) as url:
            http = {**embedded, "TRANSFER_RUNNER_PLATFORM": url,
                    "TRANSFER_RUNNER_PLATFORM_TOKEN": TOKEN}  # fmt: skip
            elapsed, out = _run(["plan", str(manifests), "--no-refresh"], http, work, (0,))
            rows.append(("plan --no-refresh (state store only)", elapsed, None))
            for forks, where, count in ((1, sample, min(args.sample, n)), (8, manifests, n),
                                        (32, manifests, n)):  # fmt: skip
                elapsed, out = _run(["plan", str(where), "--forks", str(forks)], http, work, (0,))
                ideal = (count * READS_PER_TRANSFER + 1) * latency / 1000 / forks
                rows.append((f"plan (refresh) of {count}, forks {forks}", elapsed, ideal))
            failures = {
                "preflight: unreachable platform": {
                    **http, "TRANSFER_RUNNER_PLATFORM": f"http://127.0.0.1:{_closed_port()}"},
                "preflight: wrong token": {**http, "TRANSFER_RUNNER_PLATFORM_TOKEN": "wrong-xyz"},
            }  # fmt: skip
            for label, env in failures.items():
                elapsed, out = _run(["plan", str(manifests)], env, work, (1,))
                assert "preflight:" in out, out
                rows.append((label, elapsed, None))
        print(f"\n{n} completed transfers, sandbox serve --latency {latency:g} ms "
              f"({os.cpu_count()} CPUs)")  # fmt: skip
        print(f"{'run':<44} {'seconds':>8} {'ideal s':>8} {'x ideal':>8}")
        for label, elapsed, ideal in rows:
            tail = f"{ideal:>8.2f} {elapsed / ideal:>8.2f}" if ideal else f"{'':>8} {'':>8}"
            print(f"{label:<44} {elapsed:>8.2f} {tail}")


if __name__ == "__main__":
    main()
