"""`transfer-runner sandbox serve` in its own process for the benchmarks (as a real control
panel would be): started on a free loopback port, its URL yielded, stopped with SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServeError(Exception):
    """`sandbox serve` did not start."""


@contextmanager
def serve(sandbox: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """`sandbox serve SANDBOX --port 0 ARGS` with `env`; yields its URL. Its request log
    (stderr) is dropped: a benchmark's thousands of lines would fill an unread pipe."""
    argv = [sys.executable, "-m", "transfer_runner", "sandbox", "serve", str(sandbox),
            "--port", "0", *args]  # fmt: skip
    server = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)  # fmt: skip
    try:
        line = server.stdout.readline() if server.stdout else ""
        found = re.search(r"on (http://\S+)", line)
        if not found:
            raise ServeError(f"sandbox serve did not start: {line!r}")
        yield found.group(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
