#!/usr/bin/env python3
"""HTML report benchmark (issue 16): a wave of N transfers (15 steps each, 1 in 50 failed)
rendered by `report --format html`'s renderer and opened in headless Chromium.

Prints the page's size, the time to render it, and the time from navigation to the page's
script being done (`body[data-ready]`), the worst of `--repeat` loads, beside the same for a
page of one transfer loaded in the same browser (the baseline: Chromium's own cost). Needs
Debian's `chromium` (or TRANSFER_RUNNER_CHROMIUM) and Playwright, as `make test` installs.
Run from the repo root: `python bench/bench_html_report.py` (`make bench-html-report`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import chromium_path  # noqa: E402
from transfer_runner.engine.results import RunReport, StepResult  # noqa: E402
from transfer_runner.reporting.html_report import render_html  # noqa: E402
from transfer_runner.reporting.rows import TransferRow, Wave  # noqa: E402

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STEPS = 15


def wave(count: int) -> Wave:
    """`count` transfers, 32 at a time, each of STEPS steps of 0.4 s; one in 50 fails."""
    rows = []
    for i in range(count):
        start = T0 + timedelta(seconds=(i // 32) * STEPS * 0.5)
        failed = i % 50 == 7
        steps = tuple(
            StepResult(
                f"Step {k} of the playbook",
                "module",
                "failed" if failed and k == STEPS - 1 else "changed",
                started_at=start + timedelta(seconds=k * 0.5),
                ended_at=start + timedelta(seconds=k * 0.5 + 0.4),
            )
            for k in range(STEPS)
        )
        rows.append(
            TransferRow(
                "r-1",
                f"cust{i:05d}-example",
                "failed" if failed else "succeeded",
                f"C-{10000 + i}",
                f"R-30{i % 4 + 1}",
                {"wave": "2026-12"},
                f"A-{i}",
                (f"cust{i:05d}.example", f"cust{i:05d}.example.net"),
                {"archive": 1000 + i},
                {"archive": 20_000_000 + i},
                Decimal("12.34"),
                f"CR-{i}",
                Decimal("25.00"),
                f"CH-{i}",
                f"exports/cust{i:05d}-example/receipt.json",
                f"Step {STEPS - 1} of the playbook" if failed else "",
                "the platform refused the charge (402)" if failed else "",
                steps[0].started_at,
                steps[-1].ended_at,
                f"transfers/cust{i:05d}.yml",
                steps,
            )  # fmt: skip
        )
    end = rows[-1].ended_at or T0
    return Wave((RunReport("r-1", "apply", T0, end),), rows)


def load_times(pages: list[Path], repeat: int) -> list[list[float]]:
    """Seconds from navigation to `body[data-ready]`, `repeat` loads of each page, in turn."""
    from playwright.sync_api import sync_playwright

    times: list[list[float]] = [[] for _ in pages]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            for _ in range(repeat):
                for i, page_path in enumerate(pages):
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    began = time.perf_counter()
                    page.goto(page_path.as_uri())
                    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                    times[i].append(time.perf_counter() - began)
                    page.close()
        finally:
            browser.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=2000, help="transfers (2000)")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each page (3)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-html-"))
    pages = []
    for count in (1, args.transfers):
        began = time.perf_counter()
        text = render_html(wave(count), title=f"{count} transfers", generated_at=T0)
        rendered = time.perf_counter() - began
        path = work / f"wave-{count}.html"
        path.write_text(text, encoding="utf-8")
        pages.append(path)
        print(
            f"{count:>6} transfers: {len(text.encode()) / 1e6:.2f} MB, rendered in {rendered:.2f} s"
        )
    base, big = load_times(pages, args.repeat)
    print(f"open to ready, 1 transfer:      worst {max(base):.2f} s (all {base})")
    print(f"open to ready, {args.transfers} transfers: worst {max(big):.2f} s (all {big})")
    print(f"ratio to the 1-transfer page (same browser, same run): {max(big) / max(base):.1f}x")
    print(
        f"target (issue 16): under 2 s at 2,000 transfers: {'met' if max(big) < 2 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
