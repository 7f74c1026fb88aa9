"""Reporters (JSON, JUnit, markdown) and the report rebuilt from the state store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from transfer_runner.engine.results import RunReport, StepResult, TransferResult
from transfer_runner.errors import StateError
from transfer_runner.modules.base import Action
from transfer_runner.reporting.from_state import report_from_state
from transfer_runner.reporting.json_report import render_json, report_to_dict
from transfer_runner.reporting.junit import render_junit
from transfer_runner.reporting.markdown import render_markdown
from transfer_runner.resources import load_json_schema
from transfer_runner.state.base import RunInfo, StepRecord
from transfer_runner.state.sqlite import SqliteStateStore

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
FEE = Action("billing.charge", "R-301", "charge R-301 25.00", "transfer-fee:acme-com",
             {"amount": "25.00"})  # fmt: skip
NASTY = 'declined: <card> & "quote" | pipe\x00\x1b\nsecond line'


def _s(name: str, status: str, i: int, message: str = "", **kw) -> StepResult:
    return StepResult(
        name,
        kw.pop("module", "mod"),
        status,  # type: ignore[arg-type]
        message,
        started_at=T0 + timedelta(seconds=i),
        ended_at=T0 + timedelta(seconds=i + 1.5),
        **kw,
    )


def _report() -> RunReport:
    charged = {"charge_id": "ch-1", "amount": Decimal("25.00"), "on": date(2026, 11, 18)}
    return RunReport(
        run_id="r-20261118",
        command="apply",
        started_at=T0,
        finished_at=T0 + timedelta(minutes=2),
        git_commit="abc123",
        user="alice",
        transfers=(
            TransferResult(
                "acme-com",
                "succeeded",
                (
                    _s("verify customer ticket", "ok", 0, "verified"),
                    _s("charge fee", "changed", 1, actions=(FEE,), outputs=charged),
                    _s("import quarantine", "skipped", 2, "when is false"),
                ),
                path="transfers/acme.yml",
            ),
            TransferResult(
                "beta-net",
                "failed",
                (_s("verify", "ok", 0), _s("charge fee", "failed", 1, NASTY, module="billing")),
                message=f"charge fee: {NASTY}",
            ),
            TransferResult("gamma-org", "locked", message="locked by ci-job-7 (run r-x)"),
            TransferResult("delta-io", "unchanged", (_s("verify", "ok", 0), _s("x", "skipped", 1))),
            TransferResult("drift-com", "failed", message="drift: manifest changed"),
            TransferResult(
                "stop-net",
                "interrupted",
                (_s("verify", "ok", 0),),
                message="interrupted before 'x'; apply again to resume",
            ),  # fmt: skip
            TransferResult("later-org", "not_started", message="not started: the run was stopped"),
        ),
    )


# -- JSON ----------------------------------------------------------------------------------
def test_report_schema_is_valid_2020_12() -> None:
    schema = load_json_schema("report.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _validate(data: object) -> list[str]:
    schema = load_json_schema("report.schema.json")
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(data)]


def test_json_report_validates_and_keeps_exact_values() -> None:
    data = json.loads(render_json(_report()))
    assert _validate(data) == []
    assert data == report_to_dict(_report())
    assert data["started_at"] == "2026-11-18T09:30:00Z"
    assert data["totals"]["transfers"] == 7 and data["totals"]["transfers_failed"] == 2
    assert data["totals"]["transfers_interrupted"] == data["totals"]["transfers_not_started"] == 1
    acme = data["transfers"][0]
    assert acme["path"] == "transfers/acme.yml"
    assert acme["counts"] == {"ok": 1, "changed": 1, "failed": 0, "skipped": 1}
    charge = acme["steps"][1]
    assert charge["outputs"] == {"charge_id": "ch-1", "amount": "25.00", "on": "2026-11-18"}
    assert charge["actions"] == ["charge R-301 25.00"] and charge["duration_s"] == 1.5
    assert data["transfers"][1]["steps"][1]["message"] == NASTY
    assert [t["status"] for t in data["transfers"]] == [
        "succeeded",
        "failed",
        "locked",
        "unchanged",
        "failed",
        "interrupted",
        "not_started",
    ]


@pytest.mark.parametrize(
    ("mutate", "bad"),
    [
        (lambda d: d["transfers"][0].update(status="done"), "not one of"),
        (lambda d: d["transfers"][0]["steps"][0].pop("module"), "'module' is a required"),
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d.update(started_at="yesterday"), "is not a 'date-time'"),
        (lambda d: d["totals"].update(ok=-1), "less than the minimum"),
    ],
)
def test_schema_rejects_malformed_reports(mutate, bad: str) -> None:
    data = report_to_dict(_report())
    mutate(data)
    assert any(bad in message for message in _validate(data))


def test_plan_report_with_pending_and_unset_times_validates() -> None:
    report = RunReport(
        "plan-1",
        "plan",
        T0,
        T0,
        (
            TransferResult(
                "a", "pending", (StepResult("s", "m", "changed", outputs={"n": {1, 2}}),)
            ),
        ),
    )
    data = report_to_dict(report)
    assert _validate(data) == []
    step = data["transfers"][0]["steps"][0]
    assert step["started_at"] is None and step["outputs"] == {"n": [1, 2]}
    assert data["git_commit"] is None


# -- JUnit ---------------------------------------------------------------------------------
def test_junit_parses_and_counts() -> None:
    root = ET.fromstring(render_junit(_report()))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "acme-com", "beta-net", "gamma-org", "delta-io", "drift-com", "stop-net", "later-org"
    ]  # fmt: skip

    def counts(name: str) -> tuple[str | None, ...]:
        s = suites[name]
        return s.get("tests"), s.get("failures"), s.get("skipped")

    assert counts("acme-com") == ("3", "0", "1")
    assert counts("beta-net") == ("2", "1", "0")
    assert counts("gamma-org") == ("1", "0", "1")  # locked: one skipped case with the reason
    assert counts("delta-io") == ("2", "0", "1")
    assert counts("drift-com") == ("1", "1", "0")  # failed outside steps: never green
    assert counts("stop-net") == ("2", "0", "1")  # its done step, then skipped: interrupted
    assert counts("later-org") == ("1", "0", "1")  # not started: skipped with the reason
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("12", "2", "5")
    assert root.get("time") == "120.000"
    assert suites["acme-com"].get("time") == "4.500"
    assert suites["acme-com"].get("file") == "transfers/acme.yml"

    case = suites["acme-com"].findall("testcase")[1]
    assert (case.get("classname"), case.get("name"), case.get("time")) == (
        "acme-com",
        "charge fee",
        "1.500",
    )
    locked = suites["gamma-org"].find("testcase/skipped")
    assert locked is not None and "ci-job-7" in (locked.get("message") or "")
    not_started = suites["later-org"].find("testcase/skipped")
    assert not_started is not None
    assert not_started.get("message") == "not started: the run was stopped"
    drift = suites["drift-com"].find("testcase/failure")
    assert drift is not None and drift.get("message") == "drift: manifest changed"


def test_junit_escapes_markup_and_drops_illegal_characters() -> None:
    text = render_junit(_report())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "\x00" not in text and "\x1b" not in text
    failure = ET.fromstring(text).find("testsuite[@name='beta-net']/testcase/failure")
    assert failure is not None
    expected = NASTY.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    assert failure.get("message") == expected
    assert failure.text == expected
    assert failure.get("type") == "billing"


def test_junit_empty_report() -> None:
    root = ET.fromstring(render_junit(RunReport("r", "apply", T0, T0)))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


# -- markdown ------------------------------------------------------------------------------
def test_markdown_summary() -> None:
    text = render_markdown(_report())
    assert text.startswith("## transfer-runner apply r-20261118")
    assert (
        "**7 transfers**: 1 succeeded, 1 unchanged, 2 failed, 1 interrupted, 1 not_started, "
        "1 locked." in text
    )
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Transfer | Status |")
    assert rows[1:] == [
        "| acme-com | succeeded | 1 | 1 | 0 | 1 |",
        "| beta-net | failed | 1 | 0 | 1 | 0 |",
        "| gamma-org | locked | 0 | 0 | 0 | 0 |",
        "| delta-io | unchanged | 1 | 0 | 0 | 1 |",
        "| drift-com | failed | 0 | 0 | 0 | 0 |",
        "| stop-net | interrupted | 1 | 0 | 0 | 0 |",
        "| later-org | not_started | 0 | 0 | 0 | 0 |",
    ]
    assert "### Interrupted or not started (apply again to resume)" in text
    assert "- **later-org**: not started: the run was stopped" in text
    failed_line = next(line for line in text.splitlines() if line.startswith("- **beta-net**"))
    assert "step charge fee (billing) failed" in failed_line
    assert "&lt;card&gt; &amp;" in failed_line and "\\| pipe" in failed_line
    assert "\n" not in failed_line and "second line" in failed_line
    assert "- **drift-com**: drift: manifest changed" in text
    assert "- **gamma-org**: locked by ci-job-7 (run r-x)" in text
    assert "pipe second line" in failed_line  # control characters and newlines flattened
    assert all(0x20 <= ord(ch) < 0x2000 for ch in text.replace("\n", ""))  # words, no emoji


def test_markdown_empty_run() -> None:
    assert "No transfers were selected." in render_markdown(RunReport("r", "plan", T0, T0))


# -- no secrets ----------------------------------------------------------------------------
def test_outputs_rendered_as_given_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "AKIA-SUPER-SECRET-VALUE-123"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("TRANSFER_RUNNER_TOKEN", secret)
    report = _report()
    rendered = [render_json(report), render_junit(report), render_markdown(report)]
    for text in rendered:
        assert secret not in text
        assert "AWS_SECRET_ACCESS_KEY" not in text and "TRANSFER_RUNNER_TOKEN" not in text
    # What the report holds is shown unchanged: the JSON carries exactly the step outputs.
    data = json.loads(rendered[0])
    assert data["transfers"][0]["steps"][1]["outputs"] == {
        "charge_id": "ch-1",
        "amount": "25.00",
        "on": "2026-11-18",
    }
    assert set(data) == {
        "run_id",
        "command",
        "started_at",
        "finished_at",
        "git_commit",
        "user",
        "totals",
        "transfers",
    }


# -- from the state store ------------------------------------------------------------------
def _record(state: SqliteStateStore, run: str, transfer: str, i: int, status: str, msg: str = ""):
    state.record_step(
        StepRecord(
            run,
            transfer,
            i,
            f"step-{i}",
            "mod",
            status,  # type: ignore[arg-type]
            T0 + timedelta(seconds=i),
            T0 + timedelta(seconds=i, milliseconds=500),
            {"amount": Decimal("52.00")} if status == "changed" else {},
            msg,
        )
    )


@pytest.fixture
def state(tmp_path: Path):
    store = SqliteStateStore(tmp_path / "state.db")
    yield store
    store.close()


def _fill(state: SqliteStateStore) -> None:
    """An older run, then r-2 with one transfer of every kind (as the engine records them)."""
    state.start_run(RunInfo("r-1", T0 - timedelta(days=1), "alice", command="apply"))
    _record(state, "r-1", "acme-com", 0, "failed", "old failure")
    state.start_run(RunInfo("r-2", T0, "bob", git_commit="c0ffee"))
    state.start_run(RunInfo("p-1", T0 + timedelta(hours=1), "bob", command="plan"))
    ev = state.append_event
    ev("r-2", "acme-com", "transfer_started", {"path": "t/acme.yml"})
    _record(state, "r-2", "acme-com", 0, "ok")
    _record(state, "r-2", "acme-com", 1, "changed")
    ev("r-2", "acme-com", "transfer_finished", {"status": "succeeded", "message": ""})
    ev("r-2", "held-com", "locked", {"holder": "ci-job-7 (run r-x) until later"})
    ev("r-2", "fail-com", "transfer_started", {"path": "t/fail.yml"})
    _record(state, "r-2", "fail-com", 0, "failed", "ticket closed")
    ev("r-2", "fail-com", "transfer_finished", {"status": "failed", "message": "step-0: closed"})
    ev("r-2", "same-com", "transfer_started", {"path": "t/same.yml"})
    _record(state, "r-2", "same-com", 0, "ok")
    _record(state, "r-2", "same-com", 1, "skipped")
    ev("r-2", "same-com", "transfer_finished", {"status": "unchanged", "message": ""})
    ev("r-2", "crash-com", "transfer_started", {"path": "t/crash.yml"})
    _record(state, "r-2", "crash-com", 0, "changed")
    _record(state, "r-2", "bare-ok", 0, "ok")  # steps only, no events
    _record(state, "r-2", "bare-chg", 0, "changed")
    _record(state, "r-2", "bare-fail", 0, "failed", "boom")
    ev("r-2", None, "run_note", {})
    ev("unlock", "acme-com", "unlocked", {"owner": "x"})


def test_report_from_state_last_run(state: SqliteStateStore) -> None:
    _fill(state)
    report = report_from_state(state, None)
    assert (report.run_id, report.command, report.user, report.git_commit) == (
        "r-2",
        "apply",
        "bob",
        "c0ffee",
    )
    got = {t.name: (t.status, t.message) for t in report.transfers}
    assert got == {
        "acme-com": ("succeeded", ""),
        "held-com": ("locked", "locked by ci-job-7 (run r-x) until later"),
        "fail-com": ("failed", "step-0: closed"),
        "same-com": ("unchanged", ""),
        "crash-com": ("failed", "did not finish (interrupted, crashed, or still running)"),
        "bare-ok": ("unchanged", ""),
        "bare-chg": ("succeeded", ""),
        "bare-fail": ("failed", "step-0: boom"),
    }
    assert [t.name for t in report.transfers][:5] == [
        "acme-com",
        "held-com",
        "fail-com",
        "same-com",
        "crash-com",
    ]
    acme = report.transfers[0]
    assert acme.path == "t/acme.yml" and [s.status for s in acme.steps] == ["ok", "changed"]
    assert acme.steps[1].outputs == {"amount": "52.00"} and acme.steps[1].duration_s == 0.5
    assert report.finished_at == T0 + timedelta(seconds=1, milliseconds=500)  # not finished
    assert _validate(report_to_dict(report)) == []


def test_report_from_state_named_run_and_finished_time(state: SqliteStateStore) -> None:
    _fill(state)
    state.finish_run("r-1", T0 - timedelta(hours=20), {})
    report = report_from_state(state, "r-1")
    assert report.finished_at == T0 - timedelta(hours=20)
    [old] = report.transfers
    assert (old.name, old.status, old.message) == ("acme-com", "failed", "step-0: old failure")
    assert report_from_state(state, "p-1").command == "plan"


def test_transfer_finished_status_wins_over_steps(state: SqliteStateStore) -> None:
    state.start_run(RunInfo("r-1", T0, "alice"))
    _record(state, "r-1", "acme-com", 0, "ok")
    state.append_event("r-1", "acme-com", "transfer_finished", {"status": "failed", "message": "m"})
    [t] = report_from_state(state, None).transfers
    assert (t.status, t.message) == ("failed", "m")


def test_report_from_state_errors(state: SqliteStateStore, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no apply run is recorded"):
        report_from_state(state, None)
    state.start_run(RunInfo("r-1", T0, "alice"))
    with pytest.raises(StateError, match="no run 'r-404'"):
        report_from_state(state, "r-404")
    empty = SqliteStateStore(tmp_path / "missing.db", read_only=True)
    try:
        with pytest.raises(StateError, match="no apply run"):
            report_from_state(empty, None)
    finally:
        empty.close()
    assert not (tmp_path / "missing.db").exists()
