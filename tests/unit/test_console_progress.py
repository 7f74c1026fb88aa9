"""The plain console output's wave headers and whole-run progress lines (CI logs)."""

from __future__ import annotations

import io

from transfer_runner.engine.results import TransferResult
from transfer_runner.reporting.console import ConsoleReporter


def test_a_header_per_wave_only_when_there_are_several() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out=out)
    reporter.wave_started(1, 1, 5, 5)
    assert "WAVE" not in out.getvalue()
    reporter.wave_started(2, 3, 4, 10)
    assert "WAVE 2/3: 4 of 10 transfers" in out.getvalue()


def test_the_whole_run_progress_line_counts_what_finished() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out=out, overall_every_s=0.0)
    reporter.wave_started(1, 2, 2, 4)
    for name, status in (("a", "succeeded"), ("b", "failed"), ("c", "locked")):
        reporter.transfer_finished(TransferResult(name, status))  # type: ignore[arg-type]
    lines = [line for line in out.getvalue().splitlines() if line.startswith("progress:")]
    assert len(lines) == 3
    assert lines[-1].startswith("progress: 3/4 transfers finished, 2 failed (wave 1/2), ")


def test_quiet_prints_no_progress() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out=out, verbosity=-1, overall_every_s=0.0)
    reporter.wave_started(1, 2, 1, 2)
    reporter.transfer_finished(TransferResult("a", "succeeded"))
    assert out.getvalue() == ""
