"""What the benchmark figures were measured on: CPUs, memory, versions, the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import boto3


def describe(aws: str, weed: Path | None, repo: Path) -> dict[str, str]:
    """CPU count and model, memory, Python, kernel, and the versions of the tools measured."""
    return {
        "nproc": str(os.cpu_count()),
        "memory": _meminfo(),
        "cpu": _cpu_model(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "kernel": platform.release(),
        "aws": _output([aws, "--version"]),
        "weed": _output([str(weed or "weed"), "version"]),
        "boto3": boto3.__version__,
        "git": _output(["git", "-C", str(repo), "describe", "--always", "--dirty"]),
    }


def _meminfo() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"
