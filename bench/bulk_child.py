"""One measured apply of the bulk benchmark, run in its own process by bench_bulk.py.

Usage: ``python bench/bulk_child.py CONFIG.json RESULT.json``. Runs ``commands.apply`` on the
manifests with the given forks, platform URL (``sandbox:PATH?latency_ms=N``) and state (sqlite,
or ``state_url``: S3 state, whose requests are counted by operation),
with every platform call counted and timed by `CountingPlatform` (the platform the command
opens is wrapped; nothing else changes). Writes the run's figures to RESULT.json: transfers by
status, tasks, platform calls by method, the sandbox's write counter before and after, the time
inside the apply, the process's CPU time inside it (every thread), and the time during which
at least one platform call was in flight. With `platform_url` in the config the platform is
that URL (`sandbox serve` over HTTP) instead of the embedded sandbox.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PROGRESS_EVERY_S = 10.0


class CountingPlatform:
    """Delegates every public platform call, counting it and timing it.

    `busy_s` is the wall time during which at least one call was in flight (the union of the
    calls' intervals, so overlapping calls of several forks are not counted twice); `summed_s`
    adds every call's own duration.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.summed_s = 0.0
        self.busy_s = 0.0
        self._in_flight = 0
        self._busy_since = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name in ("close", "write_calls"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            started = self._enter(name)
            try:
                return attr(*args, **kwargs)
            finally:
                self._leave(started)

        return counted

    def _enter(self, name: str) -> float:
        with self._lock:
            now = time.monotonic()
            self.calls[name] += 1
            if self._in_flight == 0:
                self._busy_since = now
            self._in_flight += 1
            return now

    def _leave(self, started: float) -> None:
        with self._lock:
            now = time.monotonic()
            self.summed_s += now - started
            self._in_flight -= 1
            if self._in_flight == 0:
                self.busy_s += now - self._busy_since


class Progress:
    """A line every few seconds: transfers finished so far (a `Reporter` of the engine)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.done = 0
        self.started = time.monotonic()
        self._next = self.started + PROGRESS_EVERY_S
        self._lock = threading.Lock()

    def wave_started(self, number: int, waves: int, size: int, total: int) -> None:
        return None

    def transfer_started(self, transfer: Any) -> None:
        return None

    def step_started(self, transfer: str, step: str) -> None:
        return None

    def step_finished(self, transfer: Any, step: Any) -> None:
        return None

    def transfer_finished(self, result: Any) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if now < self._next:
                return
            self._next = now + PROGRESS_EVERY_S
        elapsed = now - self.started
        print(
            f"    {self.label}: {self.done:,}/{self.total:,} transfers, "
            f"{self.done / elapsed * 60:,.0f}/min, {elapsed:,.0f} s",
            flush=True,
        )


def run_apply(config: dict[str, Any]) -> dict[str, Any]:
    """`commands.apply` of the manifests, the platform counted; returns the figures."""
    from transfer_runner import commands, platforms
    from transfer_runner.config import Settings
    from transfer_runner.platforms.sandbox import SandboxPlatform

    wrapped: list[CountingPlatform] = []
    opener = platforms.open_platform

    def open_counted(url: str) -> Any:
        platform = CountingPlatform(opener(url))
        wrapped.append(platform)
        return platform

    platforms.open_platform = open_counted  # type: ignore[assignment]  # this process only
    from transfer_runner import s3_client
    from transfer_runner.state import s3 as s3_state

    state_requests = _count_requests(s3_state)  # the S3 state store's (none on sqlite)
    export_requests = _count_requests(s3_client)  # the exports' (made where they are used)
    settings = Settings(
        platform=config.get("platform_url")
        or f"sandbox:{config['sandbox']}?latency_ms={config['latency_ms']}",
        state=config.get("state_url") or f"sqlite:{config['state']}",
        export_to=config.get("export_to"),
    )
    writes_before = _write_calls(SandboxPlatform, config["sandbox"])
    progress = Progress(config["label"], int(config["transfers"]))
    workers = WorkerCpu()  # `procs` > 1: the worker processes' CPU, sampled
    if config.get("procs", 1) != 1:
        workers.start()
    started, cpu_started = time.monotonic(), time.process_time()
    report = commands.apply(
        settings,
        commands.Selection([config["manifests"]]),
        forks=int(config["forks"]),
        procs=config.get("procs", 1),
        reporter=progress,
    )
    apply_s = time.monotonic() - started
    cpu_s = time.process_time() - cpu_started + workers.finish()
    writes_after = _write_calls(SandboxPlatform, config["sandbox"])
    calls: Counter[str] = Counter()
    for platform in wrapped:
        calls.update(platform.calls)
    totals = report.totals
    failed = [t for t in report.transfers if t.status == "failed"]
    return {
        "apply_s": apply_s,
        "cpu_s": cpu_s,
        "transfers": totals["transfers"],
        "statuses": {k: v for k, v in totals.items() if k.startswith("transfers_")},
        "tasks": sum(totals[k] for k in ("ok", "changed", "skipped", "failed")),
        "steps": {k: totals[k] for k in ("ok", "changed", "skipped", "failed")},
        "calls": dict(sorted(calls.items())),
        "platform_calls": sum(calls.values()),
        "platform_busy_s": sum(p.busy_s for p in wrapped),
        "platform_summed_s": sum(p.summed_s for p in wrapped),
        "writes": writes_after - writes_before,
        "state_requests": dict(sorted(state_requests.items())),
        "export_requests": dict(sorted(export_requests.items())),
        "failures": [f"{t.name}: {t.message}" for t in failed][:5],
    }


class WorkerCpu(threading.Thread):
    """CPU seconds of this process's descendants (the forkserver's workers of `--procs`),
    read from /proc every 0.2 s; a worker's last sample counts (so up to 0.2 s of its end
    may be missed). Zero where there is no /proc."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._seen: dict[int, float] = {}
        self._halt = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def run(self) -> None:
        while not self._halt.wait(0.2):
            self._sample()

    def finish(self) -> float:
        if not self.is_alive():
            return 0.0
        self._sample()
        self._halt.set()
        self.join()
        return sum(self._seen.values())

    def _sample(self) -> None:
        me = os.getpid()
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid = int(entry.parent.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
        for pid, seconds in cpu.items():
            up, hops = parents.get(pid), 0
            while up and up != me and hops < 8:
                up, hops = parents.get(up), hops + 1
            if up == me:
                self._seen[pid] = seconds


def _count_requests(module: Any) -> Counter[str]:
    """Every S3 call of the clients `module.make_s3_client` makes, by operation."""
    seen: Counter[str] = Counter()
    real = module.make_s3_client

    def make(settings: Any) -> Any:
        client = real(settings)
        client.meta.events.register(
            "provide-client-params.s3", lambda model, **_: seen.update([model.name])
        )
        return client

    module.make_s3_client = make  # this process only
    return seen


def _write_calls(kind: Any, path: str) -> int:
    """The sandbox's audit counter (every write call ever received), read without latency."""
    with kind(path) as platform:
        return int(platform.write_calls())


def main(argv: list[str]) -> int:
    """Run the apply described by CONFIG.json and write its figures to RESULT.json."""
    if len(argv) != 2:
        print("usage: bulk_child.py CONFIG.json RESULT.json", file=sys.stderr)
        return 2
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        outcome = run_apply(config)
    except Exception as exc:  # one line for the parent's report; the parent says which run
        print(f"bulk_child: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    Path(argv[1]).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
