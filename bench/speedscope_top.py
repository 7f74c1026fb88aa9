#!/usr/bin/env python3
"""Summarise a py-spy speedscope profile: per thread, the functions with the largest inclusive
and self shares of the samples (what `bench_live.py --profile DIR` records).

    python bench/speedscope_top.py DIR/cutover.speedscope.json [--top 25] [--thread NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def frame_name(frame: dict[str, Any]) -> str:
    """`function (path/file.py:line)` with the path cut after site-packages or the repo."""
    where = str(frame.get("file", ""))
    for marker in ("site-packages/", "/transfer_runner/", "/lib/python3"):
        if marker in where:
            where = where[where.index(marker) + (len(marker) if marker.endswith("/") else 1) :]
            break
    return f"{frame.get('name', '?')} ({where}:{frame.get('line', '?')})"


def summarise(doc: dict[str, Any], top: int, thread: str | None) -> list[str]:
    frames = doc["shared"]["frames"]
    lines: list[str] = []
    for profile in doc["profiles"]:
        name = str(profile.get("name", "?"))
        if thread is not None and thread not in name:
            continue
        samples, weights = profile["samples"], profile.get("weights") or []
        total = sum(weights) if weights else len(samples)
        if not total:
            continue
        inclusive: Counter[int] = Counter()
        own: Counter[int] = Counter()
        for i, stack in enumerate(samples):
            weight = weights[i] if weights else 1
            for index in set(stack):
                inclusive[index] += weight
            if stack:
                own[stack[-1]] += weight
        unit = profile.get("unit", "samples") if weights else "samples"
        lines.append(f"\n== {name}: {total:,.2f} {unit}")
        lines.append("-- inclusive")
        for index, count in inclusive.most_common(top):
            lines.append(f"{100 * count / total:6.1f}%  {frame_name(frames[index])}")
        lines.append("-- self")
        for index, count in own.most_common(top):
            lines.append(f"{100 * count / total:6.1f}%  {frame_name(frames[index])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    args = parser.parse_args(argv)
    doc = json.loads(args.profile.read_text(encoding="utf-8"))
    print("\n".join(summarise(doc, args.top, args.thread)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
