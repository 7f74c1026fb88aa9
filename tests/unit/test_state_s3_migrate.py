"""`migrate-state`: an S3 state of layout 1 (an object per step, event and lease, as written
before 2026-12) moved to one object per transfer, nothing lost; refused while an old lease is
live; a second run does nothing. The objects of layout 1 are written here as that version
wrote them (`old_layout`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.test_state_s3_moto import BUCKET, URL, moto_state_bucket
from transfer_runner.errors import ConfigError, StateError
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.s3_migrate import migrate_state

P = "team/state/"


def _put_at(s3: Any, key: str, body: dict[str, Any], where: tuple[str, str]) -> None:
    bucket, prefix = where
    s3.put_object(Bucket=bucket, Key=prefix + key, Body=json.dumps({**body, "nonce": "n"}).encode())


def _step(run: str, index: int, name: str, status: str, at: str, **outputs: Any) -> dict[str, Any]:
    return {"run_id": run, "transfer": "acme-com", "index": index, "name": name,
            "module": "m", "status": status, "started_at": at, "ended_at": at,
            "outputs": outputs, "message": "", "at": at}  # fmt: skip


def old_layout(s3: Any, lease_expires: datetime, where: tuple[str, str] = (BUCKET, P)) -> None:
    """Two runs of acme-com (the second re-recorded step 0), its events, a lease, a claim,
    under `where` (bucket, prefix ending in /)."""
    t = "2026-11-30T10:00:0{}.000000Z".format

    def _put(s3: Any, key: str, body: dict[str, Any]) -> None:
        _put_at(s3, key, body, where)

    _put(s3, "runs/r-1.json", {"id": "r-1", "started_at": t(0), "user": "alice"})
    _put(s3, "tickets/T-1.json", {"ticket": "T-1", "transfer": "acme-com", "claimed_at": t(0)})
    _put(s3, "transfers/acme-com/record.json", {"name": "acme-com", "manifest_sha256": "abc",
         "status": "failed", "updated_at": t(5), "last_run_id": "r-2"})  # fmt: skip
    seq = "20261130T10000{}.000000Z-aaaa000{}".format
    steps = [
        (seq(1, 1), _step("r-1", 0, "verify", "changed", t(1))),
        (seq(2, 2), _step("r-1", 1, "create", "changed", t(2), account_id="A-7")),
        (seq(4, 4), _step("r-2", 0, "verify", "ok", t(4))),
    ]
    for key_seq, body in steps:
        run, index, name = body["run_id"], body["index"], body["name"]
        _put(s3, f"transfers/acme-com/steps/{key_seq}_{run}_{index}_{name}.json", body)
    _put(s3, "transfers/acme-com/events/20261130T100003.000000Z-bbbb0003.json",
         {"at": t(3), "run_id": "r-1", "transfer": "acme-com", "kind": "transfer_finished",
          "data": {"status": "failed"}})  # fmt: skip
    expires = lease_expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _put(s3, "locks/acme-com.json", {"name": "acme-com", "owner": "bob", "run_id": "r-2",
         "host": "h", "acquired_at": t(4), "expires_at": expires})  # fmt: skip


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_state_bucket(monkeypatch) as client:
        yield client


def test_the_old_layout_is_refused_then_moved_whole(s3: Any) -> None:
    old_layout(s3, datetime.now(UTC) - timedelta(minutes=1))  # the lease has expired
    with pytest.raises(ConfigError, match="migrate-state"):
        S3StateStore(URL)
    done = migrate_state(URL)
    assert (done.transfers, done.steps, done.events, done.marked) == (1, 3, 1, True)

    store = S3StateStore(URL)
    record = store.get_transfer("acme-com")
    assert record is not None and (record.status, record.last_run_id) == ("failed", "r-2")
    latest = store.latest_steps("acme-com")
    assert list(latest) == ["create", "verify"]  # in the order last written
    assert latest["verify"].run_id == "r-2" and latest["create"].outputs == {"account_id": "A-7"}
    kinds = [(e["kind"], e["run_id"]) for e in store.events("acme-com")]
    assert kinds == [("step", "r-1"), ("step", "r-1"), ("transfer_finished", "r-1"),
                     ("step", "r-2")]  # fmt: skip
    assert [s.name for s in store.run_steps("r-1")] == ["verify", "create"]
    assert store.get_lock("acme-com") is None  # the expired lease is not carried over
    assert store.ticket_claim("T-1") == "acme-com"
    run = store.get_run("r-1")
    assert run is not None and run.user == "alice"
    assert store.acquire_lock("acme-com", "carol", "r-3", "h", 60)  # usable at once

    again = migrate_state(URL)
    assert not again.marked and again.transfers == 0


def test_a_live_lease_of_the_old_layout_refuses_the_move(s3: Any) -> None:
    old_layout(s3, datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(StateError, match="locked by bob .*let it finish"):
        migrate_state(URL)
    with pytest.raises(ConfigError, match="layout 1"):
        S3StateStore(URL)  # nothing was written: still the old layout
