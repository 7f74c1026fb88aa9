"""`report --format html` opened in a real headless Chromium: a wave with a failure applied by
the CLI, and a page of hostile texts rendered from a wave built here."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.browser import OpenedPage, open_page
from tests.builders import GLOBEX, manifest
from tests.cli_world import CliWorld
from transfer_runner.engine.results import RunReport, StepResult
from transfer_runner.reporting.html_report import render_html
from transfer_runner.reporting.rows import TransferRow, Wave

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
ROWS = "#transfers tbody tr[data-name]"  # the table's transfers in the page (spacers aside)
HOSTILE = '</script><img src="http://127.0.0.1:9/x.png" onerror="document.title=\'pwned\'">&amp;'


def _visible(opened: OpenedPage, selector: str) -> list[str]:
    return list(
        opened.page.eval_on_selector_all(
            selector, "rows => rows.filter(r => !r.hidden).map(r => r.dataset.name)"
        )
    )


def _keep(path: Path, name: str) -> None:
    """Keep a screenshot as a test artifact when TRANSFER_RUNNER_TEST_ARTIFACTS names a dir."""
    where = os.environ.get("TRANSFER_RUNNER_TEST_ARTIFACTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(where) / name)


def test_a_wave_with_a_failure_in_chromium(tmp_path: Path, s3_server: Any) -> None:
    world = CliWorld(tmp_path, s3_server, "html")
    globex = manifest("globex-io", **{**GLOBEX, "reseller_name": "Someone Else Ltd"})
    globex = globex.replace('labels: {wave: "w1"}', 'labels: {wave: "w2"}')
    (tmp_path / "transfers" / "globex-io.yml").write_text(globex, encoding="utf-8")
    assert world.run("apply", "transfers", "--yes").returncode != 0
    world.ok("report", "--format", "html", "--out", "report.html", "--title", "Wave w1+w2")
    page_path = tmp_path / "report.html"
    assert page_path.stat().st_mode & 0o077 == 0  # owner only: it names customers

    with open_page(page_path) as opened:
        page = opened.page
        assert opened.errors == []
        assert page.title() == "Wave w1+w2"
        assert _visible(opened, "#failures tbody tr[data-name]") == ["globex-io"]
        failure = page.inner_text("#failures tbody tr")
        assert (
            "Verify the customer's authorization ticket" in failure and "abort globex-io" in failure
        )
        assert sorted(_visible(opened, ROWS)) == ["acme-com", "globex-io"]
        page.select_option("#filter-status", "failed")
        assert _visible(opened, ROWS) == ["globex-io"]
        page.select_option("#filter-status", "succeeded")
        assert _visible(opened, ROWS) == ["acme-com"]
        page.select_option("#filter-status", "")
        page.fill("#filter-label", "wave=w2")
        assert _visible(opened, ROWS) == ["globex-io"]
        page.fill("#filter-label", "")
        page.fill("#filter-text", "acme.net")
        assert _visible(opened, ROWS) == ["acme-com"]
        page.fill("#filter-text", "")
        bars = page.eval_on_selector_all("svg g.bar", "bars => bars.map(b => b.dataset.name)")
        assert sorted(bars) == ["acme-com", "globex-io"]
        assert page.locator("svg g.bar[data-name='acme-com'] path").count() >= 1
        page.click("#transfers th[data-col='0']")  # sort by name, descending on a 2nd click
        page.click("#transfers th[data-col='0']")
        assert _visible(opened, ROWS) == ["globex-io", "acme-com"]
        assert page.inner_text("[data-total='fees'] b") == "25.00"
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        _keep(shot, "report-wave.png")
    assert opened.requests == [page_path.resolve().as_uri()]  # nothing left the page


def _row(i: int, status: str, message: str = "") -> TransferRow:
    start = T0 + timedelta(seconds=i)
    steps = (
        StepResult("Verify " + HOSTILE, "ticket.verify", "changed", started_at=start,
                   ended_at=start + timedelta(seconds=1)),
        StepResult("Charge", "billing.charge", "failed" if status == "failed" else "changed",
                   started_at=start + timedelta(seconds=1), ended_at=start + timedelta(seconds=2)),
    )  # fmt: skip
    return TransferRow(
        "r-1", f"t{i:04d}-example", status, "C-1", "R-1", {"wave": HOSTILE}, "A-1",
        (HOSTILE,), {"archive": 3}, {"archive": 300}, Decimal("1.00"), "CR", Decimal("25.00"),
        "CH", HOSTILE, "Charge" if status == "failed" else "", message, steps[0].started_at,
        steps[1].ended_at, HOSTILE, steps,
    )  # fmt: skip


def test_hostile_texts_stay_text_and_a_big_wave_renders(tmp_path: Path) -> None:
    rows = [_row(i, "failed" if i % 50 == 0 else "succeeded", HOSTILE) for i in range(2000)]
    run = RunReport("r-1", "apply", T0, T0 + timedelta(hours=1))
    page_path = tmp_path / "big.html"
    page_path.write_text(render_html(Wave((run,), rows), title=HOSTILE, generated_at=T0))
    with open_page(page_path) as opened:
        page = opened.page
        assert opened.errors == []
        assert page.title() == HOSTILE  # the text itself, not markup, and no script ran
        assert page.locator("img").count() == 0
        assert len(_visible(opened, "#failures tbody tr[data-name]")) == 40
        assert page.locator("svg g.bar").count() == 2000
        assert HOSTILE in page.inner_text("#failures tbody tr")
        assert page.inner_text("[data-total='fees'] b") == "50000.00"
        # the table holds the rows in view only; filters and scrolling reach every one
        in_dom = page.locator(ROWS).count()
        assert 0 < in_dom <= 120 and page.inner_text("#shown") == "2000 of 2000 shown"
        page.select_option("#filter-status", "failed")
        failed = _visible(opened, ROWS)
        assert failed == [f"t{i:04d}-example" for i in range(0, 2000, 50)]
        page.select_option("#filter-status", "")
        page.eval_on_selector(".scroll", "s => { s.scrollTop = s.scrollHeight; }")
        page.wait_for_selector("#transfers tbody tr[data-name='t1999-example']")
    assert opened.requests == [page_path.resolve().as_uri()]
