"""--limit selection and the retry file."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from transfer_runner.errors import ConfigError
from transfer_runner.manifest.model import Transfer
from transfer_runner.selection import select, write_retry_file

BASE = Transfer(
    name="a", labels={}, customer_account="C-1", customer_domains=("a.com",),
    reseller_account="R-1", reseller_name="R", users=1, max_domains=1, services=("spamstopshere",),
    temporary_domain="gdi.a.com", customer_ticket="T-1", reseller_ticket="T-2",
    quarantine="migrate", archive="migrate", transfer_fee=Decimal("25.00"), prorate=True,
    path="a.yml", sha256="0" * 64,
)  # fmt: skip
ALL = [
    replace(BASE, name="a", labels={"wave": "1"}),
    replace(BASE, name="b", labels={"wave": "2"}),
    replace(BASE, name="c", labels={"wave": "2", "reseller": "northwind"}),
]


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ((), ["a", "b", "c"]),
        (("a",), ["a"]),
        (("a,c",), ["a", "c"]),
        (("wave=2",), ["b", "c"]),
        (("reseller=northwind", "a"), ["a", "c"]),
        (("nobody",), []),
    ],
)
def test_select(limits, expected) -> None:
    assert [t.name for t in select(ALL, limits)] == expected


def test_retry_file_round_trip(tmp_path: Path) -> None:
    retry = tmp_path / "transfer-runner.retry"
    write_retry_file(retry, ["b", "c"])
    assert [t.name for t in select(ALL, [f"@{retry}"])] == ["b", "c"]
    write_retry_file(retry, [])
    assert not retry.exists()


def test_missing_retry_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read retry file"):
        select(ALL, [f"@{tmp_path}/missing"])


def test_ci_job_records_run_url_and_approver() -> None:
    from transfer_runner.run_identity import ci_job as _ci_job

    env = {"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "acme/transfers",
           "TRANSFER_RUNNER_APPROVER": "alice"}  # fmt: skip
    assert _ci_job(env) == (
        "GITHUB_RUN_ID=42 url=https://github.com/acme/transfers/actions/runs/42 approver=alice"
    )
    assert _ci_job({}) is None


def test_a_selection_request_is_frozen_and_normalised() -> None:
    from transfer_runner.command_types import GitGuards, Selection

    chosen = Selection(["transfers"], limits=["acme-com"], tags=["data", "data"], shard=(1, 2))
    assert chosen.paths == ("transfers",) and chosen.limits == ("acme-com",)
    assert chosen.tags == frozenset({"data"}) and chosen.git == GitGuards()
    assert chosen == Selection(("transfers",), limits=("acme-com",), tags={"data"}, shard=(1, 2))
    with pytest.raises(AttributeError):
        chosen.paths = ("elsewhere",)  # type: ignore[misc]
    with pytest.raises(TypeError, match="not one string"):
        Selection("transfers")
