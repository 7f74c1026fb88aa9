"""A small world for crash tests: a sandbox, one manifest, exports on a real S3 server.

`CrashWorld` runs `python -m transfer_runner apply` in a subprocess (optionally SIGKILLed at a
crash point, see transfer_runner/kill_points.py), counts the sandbox's write calls and asks
`tests.invariants` for violations. `small_fixture` and `crash_manifest` are shared with the
checker's unit tests.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.builders import fixture, manifest
from tests.invariants import check_world, load_manifests
from transfer_runner import commands
from transfer_runner.clock import ENV_VAR as CLOCK_ENV
from transfer_runner.config import Settings
from transfer_runner.kill_points import CRASH_ENV
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = ["ROOT", "NAME", "small_fixture", "crash_manifest", "Run", "CrashWorld"]

ROOT = Path(__file__).resolve().parent.parent
NAME = "acme-com"
RUN_TIMEOUT_S = 120


def small_fixture() -> str:
    """acme.com only, with a few 1 KiB messages (one part per store), and the reseller."""
    return fixture(seed=11, quarantine=(3, "1KiB"), archive=(5, "1KiB"), globex=False)


def crash_manifest() -> str:
    """acme-com: quarantine migrated (export, verify, import), archive exported only."""
    return manifest(NAME, quarantine="migrate", archive="export")


@dataclass(frozen=True)
class Run:
    """One finished `apply` subprocess."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    @property
    def killed(self) -> bool:
        """True when the process died of SIGKILL (a crash point fired)."""
        return self.returncode == -signal.SIGKILL

    @property
    def status(self) -> str | None:
        """The transfer's status in the JSON report (None without a report)."""
        if self.report is None:
            return None
        found = [t["status"] for t in self.report["transfers"] if t["name"] == NAME]
        return found[0] if found else None

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The transfer's steps in the JSON report, in playbook order."""
        for t in (self.report or {}).get("transfers", ()):
            if t["name"] == NAME:
                return list(t["steps"])
        return []

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class CrashWorld:
    """One transfer's world in `root`; exports (and S3 state) under a fresh prefix of `server`.

    `state` is "sqlite" (a file in `root`) or "s3" (on the same server as the exports).
    `lock_ttl` is the lease of each run. A killed run's lease is taken over at once by the next
    run on this machine (its process is gone), or released by `unlock`.
    `pythonpath` is put before the project on the children's PYTHONPATH (for a
    `sitecustomize.py` that breaks something on purpose).
    """

    def __init__(
        self,
        root: Path,
        server: Any,
        *,
        state: str = "sqlite",
        lock_ttl: float = 30.0,
        pythonpath: Path | None = None,
    ) -> None:
        self.root = root
        self.server = server
        self.lock_ttl = lock_ttl
        self.sandbox = root / "sandbox.db"
        self.manifests = root / "transfers"
        prefix = f"crash-{root.name[-24:]}-{time.time_ns()}".lower().replace("_", "-")
        self.export_to = f"s3://{server.bucket}/{prefix}/exports"
        if state == "s3":
            self.state_url = f"s3://{server.bucket}/{prefix}/state"
        else:
            self.state_url = f"sqlite:{root / 'state.db'}"
        self.env = self._env(pythonpath)
        self._reports = itertools.count(1)
        self.baseline: dict[str, Any] = {}

    def _env(self, pythonpath: Path | None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "TRANSFER_RUNNER_")) or k == CLOCK_ENV
        }  # the session's clock goes through: the sandbox was made on it
        env.update(self.server.env())
        paths = [str(pythonpath)] if pythonpath else []
        env.update(
            TRANSFER_RUNNER_PLATFORM=f"sandbox:{self.sandbox}",
            TRANSFER_RUNNER_STATE=self.state_url,
            TRANSFER_RUNNER_EXPORT_TO=self.export_to,
            PYTHONPATH=os.pathsep.join([*paths, str(ROOT)]),
        )
        return env

    def create(self) -> CrashWorld:
        """Write the fixture and the manifest, create the sandbox, remember the baseline."""
        fixture = self.root / "fixture.yml"
        fixture.write_text(small_fixture(), encoding="utf-8")
        init_sandbox(self.sandbox, fixture)
        self.manifests.mkdir()
        (self.manifests / f"{NAME}.yml").write_text(crash_manifest(), encoding="utf-8")
        self.baseline = dump_sandbox(self.sandbox)
        return self

    def apply(self, crash: str | None = None) -> Run:
        """`apply transfers --yes`, SIGKILLed at `crash` if the run reaches it."""
        report = self.root / f"report-{next(self._reports)}.json"
        env = dict(self.env)
        if crash:
            env[CRASH_ENV] = crash
        proc = subprocess.run(
            [sys.executable, "-m", "transfer_runner", "apply", str(self.manifests), "--yes",
             "--lock-ttl", str(self.lock_ttl), "--report-json", str(report)],
            cwd=self.root, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        doc = json.loads(report.read_text()) if report.is_file() else None
        return Run(proc.returncode, proc.stdout, proc.stderr, doc)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Any other command, e.g. `cli("status", "--json")`; fails unless it exits 0."""
        proc = subprocess.run(
            [sys.executable, "-m", "transfer_runner", *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def unlock(self) -> None:
        """Release the lock a killed run left behind (`transfer-runner unlock`)."""
        if self.state_url.startswith("sqlite:"):  # the same command, without a process start
            commands.unlock(Settings(state=self.state_url), NAME)
        else:
            self.cli("unlock", NAME)

    def recorded_status(self) -> str:
        """The transfer's status as `transfer-runner status` reports it."""
        if self.state_url.startswith("sqlite:"):
            [view] = commands.status(Settings(state=self.state_url), [NAME])
            return str(view.record.status)
        [view] = json.loads(self.cli("status", "--json", NAME).stdout)
        return str(view["status"])

    def writes(self) -> int:
        """Write calls the sandbox has received so far (its audit rows)."""
        with SandboxPlatform(self.sandbox) as platform:
            return platform.write_calls()

    def violations(self, *, complete: bool = True) -> list[str]:
        """What `tests.invariants` finds wrong in the world now."""
        transfers = load_manifests([self.manifests])
        return check_world(
            transfers,
            self.sandbox,
            self.server.client(),
            self.export_to,
            complete=complete,
            baseline=self.baseline,
        )
