#!/usr/bin/env python3
"""Validate benchmark (issue 15): `transfer-runner validate DIR` of N generated manifests against
the floor, PyYAML's C loader parsing the same files, each in its own process, side by side.

Measured, each RUNS times in alternation (the machine is shared: the worst run is quoted):

* `parse`: a process that reads every manifest and parses it with `yaml.load(CSafeLoader)`
  (the floor: no schema, no rules, no positions);
* `validate`: `python -m transfer_runner validate DIR` (schema, positions, the rules across
  manifests), which must exit 0;
* `validate (1 bad)`: the same tree with one manifest broken, which must exit 1 and name it
  (the slow path for the file that fails must not cost the others).

Prints wall time, CPU time and peak RSS of each, and the ratios to the parse. Asserts nothing on
times. Run from the repo root: `python bench/bench_validate.py [--manifests 10000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

PARSE = """
import sys
from pathlib import Path
import yaml
for path in sorted(Path(sys.argv[1]).rglob("*.yml")):
    yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
"""


def manifest(i: int) -> str:
    """A valid manifest, different per `i` (names, accounts, domains, tickets, labels)."""
    domains = f"[cust{i:05d}-example.com, cust{i:05d}-example.net]"
    return f"""\
apiVersion: transfer-runner/v1
kind: Transfer
metadata:
  name: cust{i:05d}-example
  labels: {{wave: "w{i % 20:02d}", region: eu}}
spec:
  customer: {{account: C-{100000 + i}, domains: {domains}}}
  reseller: {{account: R-{300 + i % 7}, name: Northwind IT {i % 7}}}
  subscription: {{users: {5 + i % 200}, domains: 2}}
  services: [spamstopshere, restoremail]
  temporary_domain: gdi.cust{i:05d}-example.com
  authorization: {{customer_ticket: T-{500000 + 2 * i}, reseller_ticket: T-{500001 + 2 * i}}}
  data: {{quarantine: export, archive: migrate}}
  billing: {{transfer_fee: "25.00", prorate: true}}
"""


def write_tree(root: Path, count: int) -> Path:
    """`count` manifests in 100 per directory (as a wave repository would keep them)."""
    tree = root / "transfers"
    for i in range(count):
        folder = tree / f"batch-{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"cust{i:05d}-example.yml").write_text(manifest(i), encoding="utf-8")
    return tree


def measure(argv: list[str], cwd: Path, expect: int) -> dict[str, Any]:
    """Wall s, CPU s and peak RSS (MiB) of one child process (its own `wait4` rusage), and its
    output; its exit code must be `expect`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if child.returncode != expect:
        raise SystemExit(f"{argv[:4]}: exit {child.returncode}, wanted {expect}\n{text[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss": usage.ru_maxrss / 1024, "out": text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as work:
        root = Path(work)
        tree = write_tree(root, args.manifests)
        broken = root / "broken"
        subprocess.run(["cp", "-r", str(tree), str(broken)], check=True)
        bad = next(iter(sorted(broken.rglob("*.yml"))))
        bad.write_text(bad.read_text().replace("users: ", "users: -"), encoding="utf-8")
        runs: dict[str, list[dict[str, Any]]] = {"parse": [], "validate": [], "bad": []}
        for _ in range(args.runs):
            runs["parse"].append(measure([sys.executable, "-c", PARSE, str(tree)], root, 0))
            cli = [sys.executable, "-m", "transfer_runner", "validate"]
            runs["validate"].append(measure([*cli, str(tree)], root, 0))
            one_bad = measure([*cli, str(broken)], root, 1)
            if bad.name not in one_bad["out"]:
                raise SystemExit(f"the broken manifest is not named:\n{one_bad['out'][-1500:]}")
            runs["bad"].append(one_bad)
    print(f"command: python bench/bench_validate.py --manifests {args.manifests} --runs "
          f"{args.runs}")  # fmt: skip
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")  # fmt: skip
    print("| run | wall s (each run) | worst wall s | CPU s (worst) | peak RSS MiB "
          "| worst / parse |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|")
    floor = max(r["wall"] for r in runs["parse"])
    names = {"parse": "C-loader parse", "validate": "validate", "bad": "validate (1 bad)"}
    for key, label in names.items():
        walls = [r["wall"] for r in runs[key]]
        worst = max(walls)
        print(f"| {label} | {', '.join(f'{w:.2f}' for w in walls)} | {worst:.2f} | "
              f"{max(r['cpu'] for r in runs[key]):.2f} | {max(r['rss'] for r in runs[key]):.0f} "
              f"| {worst / floor:.2f} |")  # fmt: skip
    pairs = [v["wall"] / p["wall"] for v, p in zip(runs["validate"], runs["parse"], strict=True)]
    print(f"\nvalidate / parse, run by run (side by side): {', '.join(f'{x:.2f}' for x in pairs)};"
          f" worst {max(pairs):.2f} (target <= 1.5)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
