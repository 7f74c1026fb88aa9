"""`transfer-runner sandbox serve` in a subprocess, for the CLI tests that need a live server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

ROOT = Path(__file__).resolve().parents[1]

SERVING = re.compile(r"serving sandbox (\S+) on (http://127\.0\.0\.1:(\d+)) \((.+)\)")


def cli(*args: str) -> list[str]:
    """The argv of `python -m transfer_runner ARGS`."""
    return [sys.executable, "-m", "transfer_runner", *args]


@dataclass
class Served:
    """A running `sandbox serve`: its first line, URL ("" if it did not start) and stderr log."""

    proc: subprocess.Popen[str]
    line: str
    url: str
    log: Path
    _stderr: IO[str]

    @classmethod
    def start(cls, args: tuple[str, ...], cwd: Path, env: dict[str, str], log: Path) -> Served:
        """Start `sandbox serve ARGS` (ARGS include --port 0) and read its first line."""
        stderr = log.open("w")
        proc = subprocess.Popen(
            cli(*args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        line = first_line(proc)
        found = SERVING.fullmatch(line.strip())
        return cls(proc, line, found.group(2) if found else "", log, stderr)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> tuple[int, str, str]:
        """Send `sig`, wait, and return (exit code, stdout after the first line, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            self._stderr.close()
        return self.proc.returncode, out, self.log.read_text()

    def kill(self) -> None:
        """Kill it if it still runs (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self._stderr.closed:
            self._stderr.close()


def first_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The process's first stdout line, or "" if none came within `timeout`."""
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


S = TypeVar("S", bound=Served)


def serve_env(**extra: str) -> dict[str, str]:
    """This process's environment without TRANSFER_RUNNER_* and proxies, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRANSFER_RUNNER_") and "proxy" not in k.lower()
    }
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def servers(
    kind: type[S], cwd: Path, default_env: dict[str, str]
) -> Iterator[Callable[[tuple[str, ...], dict[str, str] | None], S]]:
    """start(ARGS, env) runs `-vvv sandbox serve ARGS` (env None: `default_env`) and checks it
    came up; every server started is killed on exit."""
    started: list[S] = []

    def start(args: tuple[str, ...], env: dict[str, str] | None) -> S:
        served = kind.start(
            ("-vvv", "sandbox", "serve", *args),
            cwd,
            default_env if env is None else env,
            cwd / f"serve-{len(started)}.log",
        )
        started.append(served)
        assert served.url, (served.line, served.proc.poll(), served.log.read_text())
        return served

    try:
        yield start
    finally:
        for served in started:
            served.kill()
