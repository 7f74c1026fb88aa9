"""Rows per transfer (`reporting.rows`), their CSV (`reporting.csv_report`) and the run list
(`reporting.run_list`), from reports built here."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.builders import cut_over_day, next_first
from transfer_runner.engine.results import RunReport, StepResult, TransferResult
from transfer_runner.reporting.csv_report import COLUMNS, render_csv
from transfer_runner.reporting.rows import TransferRow, label_matches, rows_of
from transfer_runner.reporting.run_list import render_run_list
from transfer_runner.state.base import RunInfo

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


def _step(i: int, module: str, outputs: dict[str, Any], status: str = "changed") -> StepResult:
    return StepResult(
        f"step {i} (renamed in a custom playbook)",
        module,
        status,  # type: ignore[arg-type]
        outputs=outputs,
        started_at=T0 + timedelta(seconds=i),
        ended_at=T0 + timedelta(seconds=i + 1),
    )


DONE = (
    _step(0, "ticket.verify", {"role": "customer", "account": "C-1001"}),
    _step(1, "ticket.verify", {"role": "reseller", "account": "R-301"}),
    _step(2, "account.ensure", {"account_id": "A-7"}),
    _step(3, "data.export", {"store": "quarantine", "messages": 3, "bytes": 30}),
    _step(4, "data.export", {"store": "archive", "messages": 5, "bytes": 50}),
    _step(5, "domain.move", {"moved": ["acme.com", "acme.net"], "domains": ["acme.com"]}),
    _step(6, "billing.prorate", {"amount": "598.36", "credit_id": "CR-1"}),
    _step(7, "billing.charge", {"amount": "25.00", "charge_id": "CH-1"}),
)


def _report(*transfers: TransferResult, run_id: str = "r-1") -> RunReport:
    return RunReport(run_id, "apply", T0, T0 + timedelta(minutes=1), transfers=transfers)


def test_a_row_reads_outputs_by_module_whatever_the_steps_are_called() -> None:
    [row] = rows_of(_report(TransferResult("acme-com", "succeeded", DONE)), {})
    assert (row.customer_account, row.reseller_account, row.new_account) == (
        "C-1001",
        "R-301",
        "A-7",
    )
    assert row.domains_moved == ("acme.com", "acme.net")
    assert row.messages == {"quarantine": 3, "archive": 5}  # from each export: no verify ran
    assert row.bytes == {"quarantine": 30, "archive": 50}
    assert (row.credit, row.fee) == (Decimal("598.36"), Decimal("25.00"))
    assert (row.credit_id, row.charge_id, row.failed_step) == ("CR-1", "CH-1", "")
    assert row.duration_s == 8.0 and row.labels == {}


def test_facts_recorded_at_the_start_win_and_bring_the_labels() -> None:
    facts = {"acme-com": {"customer_account": "C-9", "reseller_account": "R-9",
                          "labels": {"wave": "w1"}, "path": "t/acme.yml"}}  # fmt: skip
    [row] = rows_of(_report(TransferResult("acme-com", "succeeded", DONE)), facts)
    assert (row.customer_account, row.reseller_account) == ("C-9", "R-9")
    assert row.labels == {"wave": "w1"} and row.path == "t/acme.yml"


def test_the_final_verification_gives_the_figures_and_the_receipt() -> None:
    verified = {"stores": {"archive": {"messages": 9, "bytes": 90}}, "receipt": "p/receipt.json"}
    final = {"stores": {"archive": {"messages": 11, "bytes": 110}}, "receipt": "p/receipt.json"}
    steps = (*DONE, _step(8, "data.verify", verified), _step(9, "data.final_sync", final))
    [row] = rows_of(_report(TransferResult("acme-com", "succeeded", steps)), {})
    assert (row.messages, row.bytes) == ({"archive": 11}, {"archive": 110})
    assert row.receipt == "p/receipt.json"


def test_an_ok_move_means_the_domains_it_checked_are_moved() -> None:
    ok_move = _step(5, "domain.move", {"domains": ["acme.com"]}, status="ok")
    [row] = rows_of(_report(TransferResult("acme-com", "unchanged", (ok_move,))), {})
    assert row.domains_moved == ("acme.com",)


def test_a_failed_transfer_names_its_step_and_skipped_steps_fill_nothing() -> None:
    failed = _step(2, "account.ensure", {}, status="failed")
    skipped = _step(3, "billing.charge", {"amount": "25.00"}, status="skipped")
    result = TransferResult("acme-com", "failed", (*DONE[:2], failed, skipped), "boom")
    [row] = rows_of(_report(result), {})
    assert row.failed_step == failed.name and row.message == "boom"
    assert (row.fee, row.new_account) == (None, "")


def test_a_transfer_with_no_step_this_run_takes_its_earlier_steps() -> None:
    idle = TransferResult("acme-com", "unchanged", (), "completed in run r-0")
    [row] = rows_of(_report(idle), {}, {"acme-com": DONE})
    assert row.status == "unchanged" and row.new_account == "A-7"
    assert row.message == "completed in run r-0"


def test_csv_has_the_columns_in_order_and_round_trips() -> None:
    [row] = rows_of(_report(TransferResult("acme-com", "succeeded", DONE)), {})
    text = render_csv([row])
    assert text.endswith("\r\n") and text.split("\r\n")[0] == ",".join(COLUMNS)
    [read] = list(csv.DictReader(io.StringIO(text)))
    assert read["quarantine_messages"] == "3" and read["archive_bytes"] == "50"
    assert read["credit"] == "598.36" and read["fee"] == "25.00"
    assert read["started_at"] == "2026-11-18T09:30:00Z" and read["duration_s"] == "8.000"


@pytest.mark.parametrize("attack", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx"])
def test_csv_cells_a_spreadsheet_would_run_are_defused(attack: str) -> None:
    row = TransferRow("r-1", "acme-com", "failed", message=attack, labels={"k": attack})
    [read] = list(csv.DictReader(io.StringIO(render_csv([row]))))
    assert read["message"] == "'" + attack
    assert read["labels"] == f"k={attack}"  # starts with k=: nothing to defuse


def test_label_matches_needs_every_pair() -> None:
    labels = {"wave": "w1", "tier": "gold"}
    assert label_matches(labels, [("wave", "w1"), ("tier", "gold")])
    assert not label_matches(labels, [("wave", "w1"), ("tier", "silver")])
    assert label_matches(labels, []) and not label_matches({}, [("wave", "w1")])


def test_run_list_as_text_and_json() -> None:
    done = RunInfo("r-2", T0, "alice", "ci-9", "abcdef1234567890", finished_at=T0 + timedelta(
        minutes=2, seconds=5), totals={"transfers": 3, "transfers_succeeded": 2,
                                       "transfers_failed": 1})  # fmt: skip
    crashed = RunInfo("r-1", T0 - timedelta(days=1), "bob")
    text = render_run_list([done, crashed])
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["run", "started"]
    assert "2m05s" in lines[1] and "ci-9" in lines[1] and "abcdef123456 " in lines[1]
    assert lines[1].endswith("3: 2 succeeded, 1 failed")
    assert "did not finish" in lines[2]
    listed = json.loads(render_run_list([done, crashed], as_json=True))
    assert [r["run_id"] for r in listed] == ["r-2", "r-1"]
    assert listed[0]["finished_at"] == "2026-11-18T09:32:05Z" and listed[1]["finished_at"] is None
    assert render_run_list([]) == "no apply run is recorded in the state store yet"


def test_three_shards_and_a_retry_merge_to_each_transfer_once(tmp_path: Path) -> None:
    """Three shards' runs of one wave and a later retry of the failed transfer, through the
    state store: every transfer once, the retried one as the retry left it."""
    from transfer_runner.config import Settings
    from transfer_runner.state.base import StepRecord
    from transfer_runner.state.sqlite import SqliteStateStore
    from transfer_runner.state_commands import wave_report

    store = SqliteStateStore(tmp_path / "state.db")
    names = [f"cust{i:02d}-example" for i in range(9)]

    def run(run_id: str, at: datetime, members: list[str], failing: str = "") -> None:
        store.start_run(RunInfo(run_id, at, "ci"))
        for name in members:
            facts = {"customer_account": f"C-{name}", "labels": {"shard": run_id}}
            store.append_event(run_id, name, "transfer_started", facts)
            status = "failed" if name == failing else "changed"
            outputs = {} if status == "failed" else {"amount": "25.00"}
            end = at + timedelta(seconds=1)
            step = StepRecord(run_id, name, 0, "Charge", "billing.charge", status, at, end, outputs)  # type: ignore[arg-type]
            store.record_step(step)
            done = "failed" if status == "failed" else "succeeded"
            store.append_event(run_id, name, "transfer_finished", {"status": done})
        store.finish_run(run_id, at + timedelta(minutes=1), {})

    try:
        for shard in range(3):
            members = names[shard::3]
            run(f"r-{shard}", T0 + timedelta(seconds=shard), members, failing=names[4])
        run("r-retry", T0 + timedelta(hours=1), [names[4]])
    finally:
        store.close()
    settings = Settings(state=f"sqlite:{tmp_path / 'state.db'}")
    wave = wave_report(settings, ["r-retry", "r-0", "r-1", "r-2"])
    assert [r.run_id for r in wave.runs] == ["r-0", "r-1", "r-2", "r-retry"]  # oldest first
    assert sorted(row.name for row in wave.rows) == names  # each exactly once
    by_name = {row.name: row for row in wave.rows}
    assert by_name[names[4]].status == "succeeded" and by_name[names[4]].run_id == "r-retry"
    assert by_name[names[4]].fee == Decimal("25.00")
    assert all(row.status == "succeeded" for row in wave.rows)
    assert by_name[names[0]].labels == {"shard": "r-0"}
    assert by_name[names[0]].customer_account == f"C-{names[0]}"


def _plan_step(
    module: str, outputs: dict[str, Any], *actions: str, status: str = "changed"
) -> StepResult:
    from transfer_runner.modules.base import Action

    made = tuple(Action("x", None, text) for text in actions)
    return StepResult(module, module, status, actions=made, outputs=outputs)  # type: ignore[arg-type]


# The first period as the engine states it: from the cut-over day to the next first of a month.
PERIOD = f"{cut_over_day()}..{next_first(cut_over_day())}"


def test_plan_markdown_gives_a_reviewer_the_money_and_the_data() -> None:
    from transfer_runner.reporting.plan_markdown import render_plan_markdown

    steps = (
        _plan_step("ticket.verify", {"role": "customer", "account": "C-1001"}, "claim T-1"),
        _plan_step("ticket.verify", {"role": "reseller", "account": "R-301"}),
        _plan_step("data.export", {"store": "archive", "new_messages": 1000, "new_bytes": 2048}),
        _plan_step("domain.move", {"domains": ["acme.com", "acme.net"]}, "move acme.com"),
        _plan_step("billing.prorate", {"amount": "598.36"}),
        _plan_step("billing.subscribe", {"price": "83.87", "period": PERIOD}),
        _plan_step("billing.charge", {"amount": "25.00", "account": "R-301"}),
    )
    hostile = "<script>x</script> | *bold*"
    failed = (
        StepResult("Verify the customer's ticket", "ticket.verify", "failed", message=hostile),
    )
    report = RunReport(
        "p-1", "plan", T0, T0,
        (TransferResult("acme-com", "pending", steps, path="t/acme.yml"),
         TransferResult("evil-com", "failed", failed, hostile)),
    )  # fmt: skip
    text = render_plan_markdown(report)
    assert text.startswith("## transfer-runner plan: 2 transfer(s), 1 pending, 1 failed\n")
    assert "| 1,000 messages, 2.0 KiB | 598.36 | 25.00 |" in text  # the totals
    assert "| customer → reseller | C-1001 → R-301 |" in text
    assert "| domains | acme.com, acme.net |" in text
    assert "| archive | 1,000 messages, 2.0 KiB to export |" in text
    assert "| credit | 598.36 to C-1001 |" in text and "| transfer fee | 25.00 to R-301 |" in text
    assert f"| first period | 83.87 for {PERIOD} |" in text
    assert "<summary>2 change(s)</summary>" in text and "- move acme.com" in text
    assert "<script>" not in text and "&lt;script&gt;" in text and "\\| \\*bold\\*" in text
    assert ":warning: Verify the customer's ticket: &lt;script&gt;" in text
