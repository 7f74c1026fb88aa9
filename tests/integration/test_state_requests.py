"""What a wave costs the S3 state, counted request by request against a real S3 server: a
transfer of the default playbook's 15 steps makes at most 16 state requests (its object, its
ticket claims, its events), the run a bounded few more, and a re-apply of a completed
transfer two reads and one event. The budget is issue 15's: a lease-holding runner keeps the
transfer in memory and checks the lease by its conditional writes (state/s3_transfers.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_world
from tests.s3_requests import count_requests
from transfer_runner import commands
from transfer_runner.config import Settings
from transfer_runner.state import s3 as s3_state

pytestmark = pytest.mark.integration

# A transfer of 15 steps that all change something: preflight's read and the engine's read of
# its object, two ticket-claim reads and two claims, the lease, the 7 durable steps' renewals
# (engine/durability.py) and the release: 15 (acme-com, measured), within issue 15's 16.
PER_TRANSFER = 16
# The run: HEAD bucket, the layout (read; a new prefix: two listings and its marker), the
# conditional-write probe (3 PUTs, 2 reads, a DELETE), the run's record and index, its end.
PER_RUN = 16
TICKETS = {"acme-com": ("T-5001", "T-5002"), "globex-io": ("T-5003", "T-5004")}


def _owner(key: str) -> str:
    """The transfer a state key belongs to, or "run" for the run's own objects."""
    for name, tickets in TICKETS.items():
        if f"/{name}" in key or any(f"tickets/{t}." in key for t in tickets):
            return name
    return "run"


def test_a_wave_on_s3_state_stays_within_its_request_budget(
    tmp_path: Path, s3_server: Any, s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = write_world(tmp_path, globex=True)
    settings = Settings(
        platform=f"sandbox:{world.sandbox}",
        state=f"s3://{s3_server.bucket}/{s3_env}/state",
        export_to=f"s3://{s3_server.bucket}/{s3_env}/exports",
        part_size_mib=1,
    )
    seen = count_requests(monkeypatch, s3_state)
    first = commands.apply(settings, commands.Selection([str(world.manifests)]))
    assert {t.status for t in first.transfers} == {"succeeded"}
    assert all(len(t.steps) == 15 for t in first.transfers)
    per_owner = Counter(_owner(key) for _, key in seen)
    detail = Counter((_owner(key), op) for op, key in seen)
    assert per_owner["acme-com"] <= PER_TRANSFER, detail
    assert per_owner["globex-io"] <= PER_TRANSFER, detail
    assert per_owner["run"] <= PER_RUN, detail
    assert not any(op == "ListObjectsV2" and _owner(k) != "run" for op, k in seen), detail

    seen.clear()
    again = commands.apply(settings, commands.Selection([str(world.manifests)]))
    assert {t.status for t in again.transfers} == {"unchanged"}
    per_owner = Counter(_owner(key) for _, key in seen)
    # preflight's read, the engine's read, and the `transfer_finished` event
    assert per_owner["acme-com"] <= 3 and per_owner["globex-io"] <= 3, seen
