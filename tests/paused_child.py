"""An `apply` subprocess paused at a known point (`transfer_runner.kill_points`): the test acts
on it there (a signal, a kill), then lets it go. What it does next is decided by what the test
did, never by timing. With `group`, the child leads its own process group, as a command started
from a terminal does (a Ctrl-C signals the whole group: the CLI and its workers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["WAIT_S", "Child"]

WAIT_S = 120  # a bound on a wait for the child, never a synchronisation


class Child:
    """An `apply` subprocess that pauses at one point (named pipes in `pipes`)."""

    def __init__(
        self, tmp_path: Path, env: dict[str, str], pause_at: str, *args: str, group: bool = False
    ) -> None:
        self.pipes = tmp_path / f"pipes-{len(list(tmp_path.glob('pipes-*')))}"
        self.pipes.mkdir()
        self.err: list[str] = []
        os.mkfifo(self.pipes / "reached")
        self.paused: list[int] = []  # the pids paused, in the order they said so
        env = {**env, "TRANSFER_RUNNER_PAUSE_AT": pause_at,
               "TRANSFER_RUNNER_PAUSE_DIR": str(self.pipes)}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transfer_runner", "apply", *args],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=group,
        )  # fmt: skip

    def reached(self, count: int = 1) -> str:
        """Wait until `count` processes of the child are paused at their point (each says so
        once); the point's name."""
        lines: list[str] = []
        while len(lines) < count:
            said = _bounded(lambda: (self.pipes / "reached").read_text(), self.proc)
            lines += said.splitlines()
        points = {line.split()[0] for line in lines}
        self.paused += [int(line.split()[1]) for line in lines]
        return points.pop() if len(points) == 1 else ",".join(sorted(points))

    def resume(self, pid: int | None = None) -> None:
        """Let a paused process go (the last one paused by default)."""
        pid = self.paused[-1] if pid is None else pid
        self.paused.remove(pid)
        _bounded(lambda: (self.pipes / f"resume-{pid}").write_text("go\n"), self.proc)

    def stderr_until(self, text: str) -> None:
        """Read the child's stderr until a line holds `text` (kept for `finish`)."""

        def read() -> bool:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.err.append(line)
                if text in line:
                    return True
            return False

        assert _bounded(read, self.proc), f"{text!r} not in stderr: {''.join(self.err)}"

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=WAIT_S)
        return self.proc.returncode, out, "".join(self.err) + err


def _bounded(action: Callable[[], Any], proc: subprocess.Popen[str]) -> Any:
    """Run a blocking pipe action, failing (not hanging) if the child ends or never gets there."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(action()), daemon=True)
    worker.start()
    worker.join(WAIT_S)
    if not box:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child never reached its pause point (exit {proc.returncode}):\n{err}")
    return box[0]
