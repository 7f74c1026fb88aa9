"""The crash matrix: kill -9 at every crash point of one transfer, resume, re-run, check.

For each point (transfer_runner/kill_points.py) a CLI `apply` is SIGKILLed there; the world must
then be safe (`tests.invariants`, what holds at every instant); a resume completes the
transfer; a re-run is `unchanged` and makes no platform write; and the world satisfies every
invariant. A point the run never reaches is reported (a warning), and allowed only if the
reference run shows that the transfer writes nothing there. Then crashes during the resume,
and negative controls: a deliberately broken idempotency key must be caught.
"""

from __future__ import annotations

import sqlite3
import textwrap
import warnings
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.crash_world import NAME, CrashWorld, Run
from transfer_runner.state.s3 import S3StateStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

STEPS = range(1, 16)  # the tasks of playbooks/direct-to-resold.yml
PLATFORM_OPS = (
    "create_account",
    "import_message",
    "cancel_account",
    "move_domain",
    "detach_domain",
    "credit",
    "create_subscription",
    "charge",
    "add_ticket_comment",
)
# One part per store: the fixture's messages are a few KiB, a part is cut at 1 MiB or more.
EXPORT_POINTS = ("export-mid-part-1", "export-upload-part-1", "export-after-part-1",
                 "export-before-index")  # fmt: skip
POINTS = [
    *(f"{when}-step-{n}" for n in STEPS for when in ("before", "after")),
    *(f"platform-after-{op}" for op in PLATFORM_OPS),
    "platform-after-add_ticket_comment#2",  # the second claim (the first is the line above)
    "platform-after-add_ticket_comment#3",  # the first outcome comment, after both claims
    *EXPORT_POINTS,
    "verify-after-part-1",
    "import-after-part-1",
    "export-after-part-2",  # never reached (one part per store): shows how that is reported
]
DATA_POINTS = {"data.export": EXPORT_POINTS, "data.verify": ("verify-after-part-1",),
               "data.import": ("import-after-part-1",),
               "data.final_sync": ("verify-after-part-1", "import-after-part-1")}  # fmt: skip


class CrashPointNotReached(UserWarning):
    """A crash point of the matrix that this transfer's run never reached."""


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run of the transfer writes: changed steps and platform ops."""

    steps: tuple[dict[str, Any], ...]
    ops: Mapping[str, int]  # operation -> how many writes of it took effect

    def expected_points(self) -> set[str]:
        """The crash points an uninterrupted run passes through."""
        points: set[str] = set()
        for number, step in enumerate(self.steps, start=1):
            if step["status"] == "changed":
                points |= {f"before-step-{number}", f"after-step-{number}"}
                points |= set(DATA_POINTS.get(step["module"], ()))
        points |= {f"platform-after-{op}" for op in self.ops}
        numbered = (f"platform-after-{op}#{n}" for op, n_ops in self.ops.items()
                    for n in range(2, n_ops + 1))  # fmt: skip
        return points | set(numbered)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Reference:
    """One clean run: it must succeed and satisfy every invariant."""
    world = CrashWorld(tmp_path_factory.mktemp("reference"), s3_server).create()
    run = world.apply()
    assert run.returncode == 0 and run.status == "succeeded", str(run)
    assert world.violations() == []
    assert len(run.steps) == len(STEPS)
    return Reference(tuple(run.steps), _platform_ops(world))


def _platform_ops(world: CrashWorld) -> Counter[str]:
    """The write operations the sandbox performed (its audit rows that took effect), counted."""
    with closing(sqlite3.connect(f"{world.sandbox.as_uri()}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT op FROM audit WHERE error IS NULL AND replayed = 0")
        return Counter(row[0] for row in rows)


def test_the_matrix_covers_every_write_of_the_transfer(reference: Reference) -> None:
    missing = {p for p in reference.expected_points() if "#" not in p} - set(POINTS)
    assert not missing, f"crash points the transfer passes but the matrix lacks: {missing}"
    # With this manifest (one store migrated, one exported, pro-rated) every task writes.
    assert [s["status"] for s in reference.steps] == ["changed"] * len(STEPS)


@pytest.mark.parametrize("state", ["sqlite", "s3"])
@pytest.mark.parametrize("point", POINTS)
def test_kill_at_point_then_resume_then_rerun(
    point: str, state: str, reference: Reference, tmp_path: Path, s3_server: Any
) -> None:
    """On SQLite every step is recorded as it ends; on S3 a step's record may wait in memory
    for the next durable one (engine/durability.py), so a kill loses it: the resume must
    re-check it from the platform."""
    world = CrashWorld(tmp_path, s3_server, state=state).create()
    crashed = world.apply(point)
    if crashed.killed:
        assert point in reference.expected_points(), f"{point} fired: the reference never got there"
        assert world.violations(complete=False) == []  # safe at the instant of the crash
        world.unlock()
        _assert_resumed(world, world.apply())
    else:
        assert crashed.returncode == 0, str(crashed)
        assert point not in reference.expected_points(), f"{point} not reached\n{crashed}"
        warnings.warn(f"{point}: the transfer never reached it", CrashPointNotReached, 1)
    _assert_rerun_changes_nothing(world)
    assert world.violations() == []


def test_on_s3_a_kill_loses_the_buffered_records_and_the_resume_finds_them_again(
    tmp_path: Path, s3_server: Any
) -> None:
    """Killed before the first export writes: the two ticket steps and the new account are
    done but, not being durable steps, not yet in the S3 state; the resume re-checks them
    from the platform (`ok`) and records all of them."""
    world = CrashWorld(tmp_path, s3_server, state="s3").create()
    assert world.apply("before-step-4").killed
    store = S3StateStore(world.state_url, read_only=True, client=s3_server.client())
    try:
        known = store.transfer_state(NAME)
        assert known.steps == {} and known.lock is not None  # only the lease is there
        world.unlock()
        resumed = world.apply()
        _assert_resumed(world, resumed)
        assert [s["status"] for s in resumed.steps[:3]] == ["ok"] * 3
        assert len(store.transfer_state(NAME).steps) == len(STEPS)
    finally:
        store.close()
    assert world.violations() == []


# Crashes during the resume: A, then B (later) in the resume, then a resume to the end. These
# runs share S3 state; after A the resume sees the killed runner's process gone and takes its
# lock over at once (the lease is 15 minutes), after B the lock is released with `unlock`.
PAIRS = [
    ("platform-after-create_account", "export-after-part-1"),
    ("export-after-part-1", "export-after-part-1"),  # the quarantine's part, then the archive's
    ("export-before-index", "verify-after-part-1"),
    ("verify-after-part-1", "import-after-part-1"),
    ("import-after-part-1", "platform-after-move_domain"),
    ("platform-after-cancel_account", "platform-after-credit"),
    ("after-step-9", "platform-after-add_ticket_comment"),
]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}--then--{b}" for a, b in PAIRS])
def test_kill_then_kill_during_the_resume(
    first: str, second: str, tmp_path: Path, s3_server: Any
) -> None:
    world = CrashWorld(tmp_path, s3_server, state="s3", lock_ttl=900).create()
    crashed = world.apply(first)
    assert crashed.killed, f"{first} was not reached\n{crashed}"
    assert world.violations(complete=False) == []
    crashed = world.apply(second)
    assert crashed.killed, f"{second} was not reached by the resume\n{crashed}"
    assert world.violations(complete=False) == []
    world.unlock()
    _assert_resumed(world, world.apply())
    _assert_rerun_changes_nothing(world)
    assert world.violations() == []


def _assert_resumed(world: CrashWorld, resumed: Run) -> None:
    assert resumed.returncode == 0, str(resumed)
    # A crash after the last write leaves the resume nothing to do (every step `ok`), but it is
    # still the run that completes the transfer: `succeeded`.
    assert resumed.status == "succeeded", str(resumed)
    assert world.recorded_status() == "succeeded"


def _assert_rerun_changes_nothing(world: CrashWorld) -> None:
    before = world.writes()
    rerun = world.apply()
    assert rerun.returncode == 0 and rerun.status == "unchanged", str(rerun)
    assert world.writes() == before, "a re-run of a completed transfer wrote to the platform"


# -- negative controls -----------------------------------------------------------------------
SITECUSTOMIZE = '''\
"""Test only: the idempotency keys of kind {kind!r} get a random suffix in each process."""
import uuid

import transfer_runner.modules.keys as keys

_real = keys.idempotency_key
_suffix = uuid.uuid4().hex[:8]


def idempotency_key(kind, transfer, *parts):
    key = _real(kind, transfer, *parts)
    return key + ":" + _suffix if kind == {kind!r} else key


keys.idempotency_key = idempotency_key
'''


def _broken_world(tmp_path: Path, s3_server: Any, kind: str) -> CrashWorld:
    patch = tmp_path / "broken-keys"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE.format(kind=kind)))
    root = tmp_path / "world"
    root.mkdir()
    return CrashWorld(root, s3_server, pythonpath=patch).create()


BROKEN = [
    ("transfer-fee", "platform-after-charge", "2 transfer-fee charges"),
    ("prorate", "platform-after-credit", "2 pro-ration credits"),
    (  # the first two comments are the tickets' claims; the third, the customer's outcome
        "ticket-comment",
        "platform-after-add_ticket_comment#3",
        "ticket T-5001 has 2 new outcome comments",
    ),
]


@pytest.mark.parametrize(("kind", "point", "expected"), BROKEN, ids=[k for k, _, _ in BROKEN])
def test_the_matrix_catches_a_broken_idempotency_key(
    kind: str, point: str, expected: str, tmp_path: Path, s3_server: Any
) -> None:
    """Negative control: a key that changes between processes makes the write happen twice
    after a lost acknowledgement; the runner itself notices nothing, the checker must."""
    world = _broken_world(tmp_path, s3_server, kind)
    assert world.apply(point).killed
    world.unlock()
    resumed = world.apply()
    assert resumed.returncode == 0 and resumed.status == "succeeded", str(resumed)
    found = world.violations()
    assert any(expected in line for line in found), found


def test_a_broken_account_key_is_backed_by_the_lookup_by_domain(
    tmp_path: Path, s3_server: Any
) -> None:
    """The same break on the account's key does not make a second account: after the lost
    acknowledgement `account.ensure` finds the account on the temporary domain and adopts it
    (and the platform would refuse a second account on that domain anyway)."""
    world = _broken_world(tmp_path, s3_server, "account")
    assert world.apply("platform-after-create_account").killed
    world.unlock()
    resumed = world.apply()
    assert resumed.returncode == 0 and resumed.status == "succeeded", str(resumed)
    assert world.violations() == []
