#!/usr/bin/env python3
"""Start-up benchmark (issue 17): `transfer-runner --help` beside `python -c 'import click'`,
and `validate FILE` beside `python -c 'import click, yaml, jsonschema'`, run alternately
`--repeat` times in this run; prints the medians and their ratios (targets: 1.5x each).
Run from the repo root: `python bench/bench_startup.py` (`make bench-startup`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "examples" / "transfers" / "acme-com.yml"
TARGET = 1.5


def seconds(argv: list[str]) -> float:
    """Wall time of one run of `argv` (it must succeed)."""
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs of each command (20)")
    args = parser.parse_args(argv)
    py = sys.executable
    pairs = {
        "--help": ([py, "-m", "transfer_runner", "--help"], [py, "-c", "import click"]),
        "validate FILE": (
            [py, "-m", "transfer_runner", "validate", str(MANIFEST)],
            [py, "-c", "import click, yaml, jsonschema"],
        ),
    }
    for label, (ours, baseline) in pairs.items():
        mine, base = [], []
        for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both
            mine.append(seconds(ours))
            base.append(seconds(baseline))
        m, b = statistics.median(mine), statistics.median(base)
        verdict = "met" if m / b <= TARGET else "NOT met"
        print(f"{label:<14} {m * 1000:6.0f} ms  baseline {b * 1000:6.0f} ms  ratio {m / b:.2f} "
              f"(target <= {TARGET}: {verdict})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
