"""The procedure gives the same result whatever day it runs on (the clock is an input).

The fixture's billing period is relative to the clock (today-10d .. today+20d), so the credit
is always 20 unused days of 30: 80.00 of 120.00, on a leap day, at a year's end, or in 2099.
"""

from __future__ import annotations

import pytest

from tests.builders import FIXTURE, World
from transfer_runner.clock import ENV_VAR
from transfer_runner.platforms.sandbox.fixture import init_sandbox


@pytest.mark.parametrize(
    "instant",
    [
        "2024-02-29T12:00:00Z",
        "2039-12-31T23:00:00Z",
        "2099-07-01T00:30:00Z",
        "1999-03-01T12:00:00Z",
    ],
)
def test_a_transfer_on_any_date(
    world: World, s3: object, monkeypatch: pytest.MonkeyPatch, instant: str
) -> None:
    monkeypatch.setenv(ENV_VAR, instant)
    fixture = world.root / "fixture.yml"
    fixture.write_text(FIXTURE, encoding="utf-8")
    init_sandbox(world.sandbox, fixture, force=True)

    [result] = world.apply().transfers
    assert result.status == "succeeded", result.message
    prorate = next(s for s in result.steps if s.module == "billing.prorate")
    assert prorate.outputs["as_of"] == instant[:10]
    dump = world.dump()
    assert [(c["account"], c["amount"]) for c in dump["credits"]] == [("C-1001", "80.00")]
    [ticket] = [t for t in dump["tickets"] if t["id"] == "T-5001"]
    assert ticket["created_at"].startswith(instant[:10])  # stamped on the same clock
