"""Text from the platform, S3 or a manifest cannot become a CI runner command (issue 18 part
6). GitHub Actions acts on any output line that starts with `::` after blanks (`::add-mask::`,
`::stop-commands::`, `::error::`), Azure Pipelines on `##vso[`. A platform error quoted in a
step's message, or a file name in a diagnostic, used to reach the logs with its newlines; now
every text format escapes control characters and a line's leading `::`, `##vso[` or `##[`
(JSON keeps the message exact, escaped as JSON)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from transfer_runner.engine.results import RunReport, StepResult, TransferResult
from transfer_runner.errors import Diagnostic
from transfer_runner.reporting import console
from transfer_runner.reporting.diagnostics import format_diagnostics
from transfer_runner.reporting.json_report import render_json
from transfer_runner.reporting.markdown import render_markdown
from transfer_runner.shown import lines_safe, log_safe

HOSTILE = (
    "platform said: no\n::add-mask::pwned-mask\r\n::error file=x::pwned-error\n"
    "  ::stop-commands::pwned-stop\n##vso[task.setvariable variable=x]pwned-vso\x1b[2J"
)
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _commands_in(text: str) -> list[str]:
    commands = ("::", "##vso[", "##[")
    return [line for line in text.splitlines() if line.lstrip().startswith(commands)]


def _report(command: str = "apply") -> RunReport:
    step = StepResult("Move the domains", "domain.move", "failed", HOSTILE, (), {}, NOW, NOW)
    failed = TransferResult("acme-com", "failed", (step,), HOSTILE, "transfers/acme-com.yml")
    locked = TransferResult("globex-io", "locked", (), HOSTILE, "transfers/globex-io.yml")
    return RunReport("R-1", command, NOW, NOW, (failed, locked))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "render",
    [console.render_recap, console.render_plan, render_markdown],
    ids=["recap", "plan", "markdown"],
)
def test_no_format_prints_a_ci_command_from_a_message(render: object) -> None:
    text = render(_report("plan" if render is console.render_plan else "apply"))  # type: ignore[operator]
    assert _commands_in(text) == []
    assert "pwned-error" in text and "\x1b" not in text  # shown, escaped, not dropped


def test_the_live_reporter_prints_no_ci_command() -> None:
    out = io.StringIO()
    reporter = console.ConsoleReporter(out=out, verbosity=1)
    report = _report()
    for result in report.transfers:
        for step in result.steps:
            reporter.step_finished(result, step)  # type: ignore[arg-type]
        reporter.transfer_finished(result)
    assert _commands_in(out.getvalue()) == [] and "pwned-stop" in out.getvalue()


def test_json_keeps_the_message_whole_and_escaped() -> None:
    document = json.loads(render_json(_report()))
    assert "::add-mask::pwned-mask" in document["transfers"][0]["message"]
    assert _commands_in(render_json(_report())) == []


def test_a_diagnostic_naming_a_hostile_file_is_one_line() -> None:
    diag = Diagnostic("transfers/x\n::add-mask::pwned.yml", 3, 4, "spec", "bad\n##vso[x]")
    text = format_diagnostics([diag], "text")
    assert _commands_in(text) == [] and len(text.splitlines()) == 1
    github = format_diagnostics([diag], "github")
    assert len(github.splitlines()) == 1 and github.startswith("::error ")


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("::error::x", "\\::error::x"),
        ("  ::add-mask::x", "  \\::add-mask::x"),
        ("a\n::b", "a\\n::b"),
        ("##vso[x]", "\\##vso[x]"),
        ("fine: a::b", "fine: a::b"),
        ("bell\x07 esc\x1b nl\u2028", "bell\\x07 esc\\x1b nl\\u2028"),
    ],
)
def test_log_safe(raw: str, safe: str) -> None:
    assert log_safe(raw) == safe


def test_lines_safe_keeps_lines_and_defuses_each() -> None:
    assert lines_safe("error: stale plan:\n  ::error::x\n  ok") == (
        "error: stale plan:\n  \\::error::x\n  ok"
    )
