"""Issue 12: the pro-ration credit counts from the platform's cancellation time, not from the
day of the run that happens to reach the billing step (kill -9, then a resume 8 days later)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.crash_world import CrashWorld
from transfer_runner.clock import ENV_VAR as CLOCK_ENV
from transfer_runner.clock import clock_from_env
from transfer_runner.platforms.sandbox.dump import dump_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CANCEL_STEP = 10  # account.cancel in playbooks/direct-to-resold.yml


def test_a_resume_days_after_the_cancellation_credits_as_of_the_cancellation(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CrashWorld(tmp_path, s3_server).create()
    # The direct account is cancelled on the platform; the run dies before recording it.
    assert world.apply(f"after-step-{CANCEL_STEP}").killed
    world.unlock()
    later = clock_from_env().now() + timedelta(days=8)
    world.env[CLOCK_ENV] = later.isoformat()
    resumed = world.apply()
    assert resumed.returncode == 0 and resumed.status == "succeeded", str(resumed)
    [credit] = dump_sandbox(world.sandbox)["credits"]
    # 120.00 for a 30-day period that began 10 days before the cancellation: 20 days unused
    # on the day of the cancellation (80.00), only 12 on the day of the resume (48.00).
    assert Decimal(credit["amount"]) == Decimal("80.00"), credit
    prorate = next(s for s in resumed.steps if s["module"] == "billing.prorate")
    assert prorate["outputs"]["as_of"] == (later - timedelta(days=8)).date().isoformat()
