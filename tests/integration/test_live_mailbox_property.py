"""Live mailboxes as a property (I2): random deliveries, expiries and kill -9s, then the end.

Each example is a fresh `CrashWorld` (C-1001 with acme.com and acme.net; quarantine migrated,
archive exported only; exports on the session's real S3 server). Between the actions the
sandbox's `MailFlow` delivers mail to whichever active account holds a domain and expires the
oldest; `apply` runs in a subprocess SIGKILLed at a crash point. A `Ledger` reads the
sandbox's `messages` table (read-only) after every action, so a message that vanishes without
an expiry is caught at once. When the transfer is done:

1. `tests.invariants` finds nothing wrong;
2. every message the direct account held when it was cancelled is in the export (index and
   part) with its SHA-256, and, for the migrated store, in the new account;
3. no message is exported twice: each id is on one index line (one pass) and in one part;
4. mail that never reached the direct account (delivered after the domains moved) is in the
   new account and not in the export.

Nothing expires after the end (so what the direct account holds then is what it held at its
cancellation, recorded by the `Ledger` right after the run that cancelled it). Between the
move and the end the flow also expires the new account's imported copies: the runner imports
them again while the direct account still holds them. `TRANSFER_RUNNER_SOAK=1` runs 200 fresh
interleavings (~17 minutes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st

from tests.crash_world import NAME, RUN_TIMEOUT_S, CrashWorld, Run
from tests.invariants_io import Export, read_export
from transfer_runner.kill_points import CRASH_ENV
from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SOAK = os.environ.get("TRANSFER_RUNNER_SOAK", "") == "1"
DIRECT = "C-1001"
STORES = ("quarantine", "archive")
MIGRATED = ("quarantine",)  # tests.crash_world.crash_manifest: archive is exported only
FLOW = FlowSpec(domains=("acme.com", "acme.net"), stores=STORES, size=1200)
PLATFORM_OPS = ("create_account", "import_message", "cancel_account", "move_domain",
                "detach_domain", "credit", "charge", "add_ticket_comment")  # fmt: skip
# Export passes after the first add parts 2, 3, ...: their points are reached by a delta pass.
DATA_POINTS = (
    *(f"{point}-part-{n}" for n in (1, 2)
      for point in ("export-mid", "export-upload", "export-after", "verify-after", "import-after")),
    "export-before-index",
    "export-before-checkpoint",
)  # fmt: skip
STEP_POINTS = tuple(f"{when}-step-{n}" for n in range(1, 16) for when in ("before", "after"))
CRASH_POINTS = (*STEP_POINTS, *(f"platform-after-{op}" for op in PLATFORM_OPS), *DATA_POINTS)
STAGE_POINTS = (None, *STEP_POINTS[:14], *DATA_POINTS)  # `apply --tags data`: steps 1-7
Key = tuple[str, str]  # (store, message id)
Row = tuple[str, str, str]  # (account, store, message id)


# -- reading the sandbox and the export ------------------------------------------------------
def sandbox_rows(world: CrashWorld) -> dict[Row, str]:
    """(account, store, id) -> SHA-256 of every message the sandbox holds (read-only)."""
    with closing(sqlite3.connect(f"{world.sandbox.resolve().as_uri()}?mode=ro", uri=True)) as c:
        rows = c.execute("SELECT account, store, id, sha256 FROM messages").fetchall()
    return {(a, s, i): sha for a, s, i, sha in rows}


def sandbox_value(world: CrashWorld, sql: str, *params: str) -> Any:
    """The first column of the first row of a read-only query, or None."""
    with closing(sqlite3.connect(f"{world.sandbox.resolve().as_uri()}?mode=ro", uri=True)) as c:
        row = c.execute(sql, params).fetchone()
    return None if row is None else row[0]


def account_status(world: CrashWorld, account: str) -> str | None:
    return sandbox_value(world, "SELECT status FROM accounts WHERE id = ?", account)


def new_account(world: CrashWorld) -> str | None:
    """The resold account the transfer created (None before step 3)."""
    return sandbox_value(world, "SELECT id FROM accounts WHERE type = 'resold' ORDER BY seq")


def held(rows: dict[Row, str], account: str | None) -> dict[Key, str]:
    return {(s, i): sha for (a, s, i), sha in rows.items() if a == account}


def exports(world: CrashWorld) -> dict[str, Export]:
    s3 = world.server.client()
    return {store: read_export(s3, world.export_to, NAME, store) for store in STORES}


@contextmanager
def mail_flow(world: CrashWorld) -> Iterator[MailFlow]:
    """One flow for a whole example: it keeps expiring the direct account after the domains
    left it (a new flow would know only the accounts holding them now). Its connection is
    idle between calls (each call is one short transaction), so the runs interleave."""
    with SandboxPlatform(world.sandbox) as platform:
        yield MailFlow(platform, FLOW)


# -- the ledger: where every message went ---------------------------------------------------
@dataclass
class Ledger:
    """Every message ever seen, where it was first seen, and what expiry removed.

    `observe` runs after each action: a message that disappears from every account outside
    an expiry is lost (AssertionError at once); a message's SHA-256 never changes.
    """

    world: CrashWorld
    say: Callable[[str], None] = print  # `hypothesis.note` inside a property
    rows: dict[Row, str] = field(default_factory=dict)
    first_home: dict[Key, str] = field(default_factory=dict)
    digests: dict[Key, str] = field(default_factory=dict)
    expired_rows: set[Row] = field(default_factory=set)
    gone: set[Key] = field(default_factory=set)  # expired from every account
    at_cancel: dict[Key, str] | None = None  # what the direct account held when cancelled

    def observe(self, after: str, *, expiry: bool = False) -> None:
        self.say(after)
        now = sandbox_rows(self.world)
        removed = set(self.rows) - set(now)
        if expiry:
            self.expired_rows |= removed
        else:
            assert not removed, f"{after}: messages vanished without an expiry: {sorted(removed)}"
        for (account, store, msg), sha in now.items():
            key = (store, msg)
            # first seen in both (exported and imported since): it was the direct account's
            home = DIRECT if (DIRECT, store, msg) in now else account
            self.first_home.setdefault(key, home)
            assert self.digests.setdefault(key, sha) == sha, f"{after}: {key} changed its SHA-256"
        present = {(s, i) for _, s, i in now}
        self.gone |= {(s, i) for _, s, i in removed if (s, i) not in present}
        # The runner never writes into the direct account. (It may import into the new one
        # a message that expired from the direct account after it was exported: the import
        # takes the whole export, by design.)
        back = {r for r in self.expired_rows if r[0] == DIRECT and r in now}
        assert not back, f"{after}: expired messages of {DIRECT} came back: {sorted(back)}"
        self.rows = now
        if self.at_cancel is None and account_status(self.world, DIRECT) == "cancelled":
            # Cancelled by the apply that just ended: nothing touched the direct account since.
            assert not expiry, "the direct account was cancelled during an expiry"
            self.at_cancel = held(now, DIRECT)

    def queued(self) -> int:
        return int(sandbox_value(self.world, "SELECT count(*) FROM mail_queue"))

    def deliveries(self) -> int:
        value = sandbox_value(self.world, "SELECT value FROM meta WHERE key = 'mail_seq'")
        return int(value or 0)


# -- running the transfer --------------------------------------------------------------------
def unsafe_now(world: CrashWorld) -> list[str]:
    """`tests.invariants` at an instant (complete=False)."""
    return world.violations(complete=False)


def apply_tags(world: CrashWorld, tags: str, report: Path, crash: str | None = None) -> Run:
    """`apply --tags TAGS` (pre-staging), as `CrashWorld.apply` runs a whole apply."""
    env = dict(world.env)
    if crash:
        env[CRASH_ENV] = crash
    proc = subprocess.run(
        [sys.executable, "-m", "transfer_runner", "apply", str(world.manifests), "--yes",
         "--tags", tags, "--lock-ttl", str(world.lock_ttl), "--report-json", str(report)],
        cwd=world.root, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    doc = json.loads(report.read_text()) if report.is_file() else None
    return Run(proc.returncode, proc.stdout, proc.stderr, doc)


@dataclass
class Transfer:
    """The transfer of one example: runs, and whether a whole apply has completed it."""

    world: CrashWorld
    ledger: Ledger
    complete: bool = False
    runs: list[str] = field(default_factory=list)
    _stages: int = 0

    def run(self, crash: str | None, *, stage: bool = False) -> Run:
        if stage:
            self._stages += 1
            report = self.world.root / f"stage-{self._stages}.json"
            done = apply_tags(self.world, "data", report, crash)
        else:
            done = self.world.apply(crash)
        what = f"{'stage' if stage else 'apply'}({crash or ''})"
        self.runs.append(f"{what}: {'killed' if done.killed else done.status}")
        if done.killed:
            assert crash, str(done)
            unsafe = unsafe_now(self.world)
            assert unsafe == [], f"{what} left an unsafe world: {unsafe}"
            self.world.unlock()
        else:
            self._finished(what, done, stage)
        self.ledger.observe(self.runs[-1])
        return done

    def _finished(self, what: str, done: Run, stage: bool) -> None:
        assert done.returncode == 0, f"{what}\n{done}"
        if self.complete:  # I5: whatever mail arrived since, a done transfer stays done
            assert done.status == "unchanged", f"{what}\n{done}"
        elif not stage:
            assert done.status == "succeeded", f"{what}\n{done}"
            self.complete = True
        else:
            assert done.status in ("succeeded", "unchanged"), f"{what}\n{done}"


def deliver(ledger: Ledger, flow: MailFlow, count: int) -> None:
    flow.deliver(count)
    ledger.observe(f"deliver({count})")


def expire(ledger: Ledger, flow: MailFlow, count: int) -> None:
    flow.expire(count)
    ledger.observe(f"expire({count})", expiry=True)


# -- what must hold at the end ---------------------------------------------------------------
def assert_transfer_end(ledger: Ledger) -> None:
    world = ledger.world
    assert world.violations() == []
    assert account_status(world, DIRECT) == "cancelled"
    assert ledger.at_cancel is not None
    target = new_account(world)
    assert target is not None
    found = exports(world)
    for store, export in found.items():
        assert not export.problems, f"{store}: {export.problems}"
        assert_exported_once(store, export)
    indexed = {
        (store, line["id"]): line["sha256"] for store, e in found.items() for line in e.index or ()
    }
    now = ledger.rows
    # 2. everything the direct account held at cancellation is exported (and imported)
    for key, sha in ledger.at_cancel.items():
        store, msg = key
        assert indexed.get(key) == sha, f"{key} held at cancellation, not exported as {sha}"
        if store in MIGRATED and (target, store, msg) not in ledger.expired_rows:
            assert now.get((target, store, msg)) == sha, f"{key} not imported into {target}"
    # 4. mail that went straight to the new account never enters the export
    straight = {k for k, home in ledger.first_home.items() if home == target}
    assert not (straight & set(indexed)), sorted(straight & set(indexed))
    for store, msg in straight - ledger.gone:
        assert (target, store, msg) in now, f"{(store, msg)} delivered to {target}, now gone"
    # nothing lost: every message ever seen is held somewhere or was expired
    present = {(s, i) for _, s, i in now}
    assert set(ledger.first_home) - present <= ledger.gone
    delivered = {k for k in ledger.first_home if k[1][1:3] == "-d"}
    assert ledger.deliveries() == len(delivered) + ledger.queued()


def assert_exported_once(store: str, export: Export) -> None:
    """3. One index line and one part per message: no message twice, within or across passes."""
    lines = export.index or []
    by_pass: dict[int, Counter[str]] = {}
    for line in lines:
        by_pass.setdefault(int(line.get("pass", 1)), Counter())[line["id"]] += 1
    for number, ids in by_pass.items():
        twice = [i for i, n in ids.items() if n > 1]
        assert not twice, f"{store} pass {number} exports {twice} twice"
    passes_of = Counter(i for ids in by_pass.values() for i in ids)
    assert not [i for i, n in passes_of.items() if n > 1], f"{store}: an id in two passes"
    for line in lines:
        copies = export.members.get(line["id"], [])
        assert [part for part, _ in copies] == [line["part"]], (store, line, copies)


# -- the property ----------------------------------------------------------------------------
CRASH = st.tuples(st.just("crash"), st.sampled_from(CRASH_POINTS))
ACTION = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 5)),
    st.tuples(st.just("expire"), st.integers(0, 2)),
    CRASH,
    st.tuples(st.just("stage"), st.sampled_from(STAGE_POINTS)),  # apply --tags data
)
# 1-6 actions, one of them a kill at least (also in the few simple examples of `make test`).
ACTIONS = st.tuples(st.lists(ACTION, max_size=2), CRASH, st.lists(ACTION, max_size=3)).map(
    lambda parts: [*parts[0], parts[1], *parts[2]]
)


@given(actions=ACTIONS)
# A delta pass killed in its export, then in its import, with mail and expiry in between.
@example(actions=[("crash", "after-step-7"), ("expire", 1), ("deliver", 2),
                  ("crash", "export-mid-part-2"), ("deliver", 3),
                  ("crash", "import-after-part-2")])  # fmt: skip
# Killed between the moves of the two domains: acme.net's mail still reaches the direct account.
@example(actions=[("stage", "export-before-index"), ("deliver", 4),
                  ("crash", "platform-after-move_domain"), ("deliver", 3),
                  ("crash", "verify-after-part-2"), ("deliver", 1)])  # fmt: skip
@settings(
    max_examples=200 if SOAK else 6,
    deadline=None,
    derandomize=not SOAK,  # the same interleavings in every `make test`
    database=None,
    print_blob=SOAK,
    # no explain phase: it replays a failing example dozens of times, seconds each
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_interleaving_of_mail_and_crashes_loses_a_message(
    actions: list[tuple[str, Any]], s3_server: Any
) -> None:
    note(f"actions: {actions}")
    with tempfile.TemporaryDirectory(prefix="live-mail-") as tmp:
        world = CrashWorld(Path(tmp), s3_server).create()
        ledger = Ledger(world, say=note)
        ledger.observe("create")
        transfer = Transfer(world, ledger)
        with mail_flow(world) as flow:
            for kind, arg in actions:
                if kind == "deliver":
                    deliver(ledger, flow, arg)
                elif kind == "expire":
                    if transfer.complete:  # none after the end: see the module's docstring
                        continue
                    expire(ledger, flow, arg)
                else:
                    transfer.run(arg, stage=kind == "stage")
            if not transfer.complete:
                transfer.run(None)  # no crash point: this one must complete the transfer
            event(f"runs killed: {sum('killed' in r for r in transfer.runs)}")
            deliver(ledger, flow, 2)  # after the cut-over: straight into the new account
            writes = world.writes()
            transfer.run(None)  # I5: unchanged, and no platform write
            assert world.writes() == writes
        assert_transfer_end(ledger)


# -- two deterministic cases -----------------------------------------------------------------
def test_an_equal_count_swap_after_the_pre_cutover_import_loses_nothing(
    tmp_path: Path, s3_server: Any
) -> None:
    world = CrashWorld(tmp_path, s3_server).create()
    ledger = Ledger(world)
    ledger.observe("create")
    transfer = Transfer(world, ledger)
    assert transfer.run("after-step-7").killed
    before = held(ledger.rows, DIRECT)
    with mail_flow(world) as flow:
        expire(ledger, flow, 1)  # one per store, the oldest
        deliver(ledger, flow, 2)  # round robin: one quarantine, one archive
    after = held(ledger.rows, DIRECT)
    for store in STORES:
        old = {k for k in before if k[0] == store}
        new = {k for k in after if k[0] == store}
        assert len(old) == len(new) and old != new  # equal counts, other id sets
    arrived = set(after) - set(before)
    assert len(arrived) == 2
    transfer.run(None)
    assert transfer.complete
    assert ledger.at_cancel == after
    assert_transfer_end(ledger)
    target = new_account(world)
    indexed = {(s, line["id"]) for s, e in exports(world).items() for line in e.index or ()}
    assert arrived <= indexed
    assert {k for k in arrived if k[0] in MIGRATED} <= set(held(ledger.rows, target))


def test_mail_flowing_during_a_whole_apply_loses_nothing(tmp_path: Path, s3_server: Any) -> None:
    """A thread delivers as fast as it can while one `apply` runs from start to end: the
    export passes stop at their limit, and the final pass after the move catches the rest."""
    world = CrashWorld(tmp_path, s3_server).create()
    ledger = Ledger(world)
    with mail_flow(world) as flow:
        deliver(ledger, flow, 4)  # before the run: certainly in the direct account
    stop = threading.Event()
    counts: list[int] = []
    errors: list[BaseException] = []

    def flow_main() -> None:
        try:
            with mail_flow(world) as flow:
                while not stop.is_set():
                    counts.append(flow.deliver(1).delivered)
                    stop.wait(0.001)  # pacing only: leave the runner some of both cores
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    thread = threading.Thread(target=flow_main, name="live-mail", daemon=True)
    thread.start()
    try:
        run = world.apply()
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert run.returncode == 0 and run.status == "succeeded", str(run)
    ledger.observe("apply")  # nothing expires here: the direct account as at cancellation
    with mail_flow(world) as flow:
        deliver(ledger, flow, 2)  # after the run: certainly in the new account
    assert_transfer_end(ledger)
    by_module = {s["module"]: s for s in run.steps}
    assert 1 <= by_module["data.export"]["outputs"]["passes_run"] <= 4  # SyncPolicy.max_passes
    assert by_module["data.final_sync"]["status"] == "changed"  # the delta mail left behind
    assert len(counts) > 0


def test_an_imported_copy_that_expires_before_the_end_is_imported_again(
    tmp_path: Path, s3_server: Any
) -> None:
    """Killed after the domains moved (the import of step 7 done), then retention expires the
    oldest quarantine message twice: the direct account's original, then the new account's
    imported copy. The direct account no longer holds it, so nothing is missing and the resume
    completes (it used to re-import it under the same idempotency key, a replay, and fail on a
    count: "after import A-1's quarantine holds 2 messages, fewer than the 3 exported")."""
    world = CrashWorld(tmp_path, s3_server).create()
    ledger = Ledger(world)
    ledger.observe("create")
    with mail_flow(world) as flow:  # opened before the move: it expires both accounts
        if not world.apply("after-step-8").killed:
            pytest.fail("after-step-8 was not reached")
        world.unlock()
        ledger.observe("apply(after-step-8): killed")
        flow.expire(1)  # the oldest of each store: the direct account's original
        flow.expire(1)  # the next oldest: the new account's copy of the quarantine one
    ledger.observe("expire(1) twice", expiry=True)
    target = new_account(world)
    originals = {(s, i) for a, s, i in ledger.expired_rows if a == DIRECT and s in MIGRATED}
    if len(originals) != 1 or {(target, *k) for k in originals} - ledger.expired_rows:
        pytest.fail(f"not the expiry this test needs: {sorted(ledger.expired_rows)}")
    transfer = Transfer(world, ledger)
    transfer.run(None)
    assert_transfer_end(ledger)
