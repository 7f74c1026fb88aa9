"""Idempotency keys: a repeated request replays the first result and changes nothing; a key
reused for another request is a Conflict; concurrent callers with one key make one write."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from transfer_runner.errors import Conflict
from transfer_runner.platforms.base import NewAccount
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

NEW = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))
RAW = b"Message-ID: <x@y>\r\nSubject: hello\r\n\r\nbody\r\n"

Call = Callable[[SandboxPlatform, str], Any]

# Each write with one request, and the same write with another request.
WRITES: list[tuple[str, Call, Call]] = [
    (
        "create_account",
        lambda p, k: p.create_account(NEW, k),
        lambda p, k: p.create_account(replace(NEW, users=41), k),
    ),
    (
        "cancel_account",
        lambda p, k: p.cancel_account("C-1001", k),
        lambda p, k: p.cancel_account("R-302", k),
    ),
    (
        "attach_domain",
        lambda p, k: p.attach_domain("R-301", "north.example", k),
        lambda p, k: p.attach_domain("R-301", "south.example", k),
    ),
    (
        "detach_domain",
        lambda p, k: p.detach_domain("C-1001", "acme.net", k),
        lambda p, k: p.detach_domain("C-1001", "acme.com", k),
    ),
    (
        "move_domain",
        lambda p, k: p.move_domain("acme.net", "C-1001", "A-1", k),
        lambda p, k: p.move_domain("acme.com", "C-1001", "A-1", k),
    ),
    (
        "add_ticket_comment",
        lambda p, k: p.add_ticket_comment("T-5001", "done", k),
        lambda p, k: p.add_ticket_comment("T-5001", "done!", k),
    ),
    (
        "import_message",
        lambda p, k: p.import_message("A-1", "archive", "m-1", RAW, k),
        lambda p, k: p.import_message("A-1", "archive", "m-1", RAW + b"x", k),
    ),
    (
        "credit",
        lambda p, k: p.credit("C-1001", Decimal("52.00"), "pro-ration", k),
        lambda p, k: p.credit("C-1001", Decimal("52.01"), "pro-ration", k),
    ),
    (
        "charge",
        lambda p, k: p.charge("R-301", Decimal("25.00"), "fee", k),
        lambda p, k: p.charge("R-302", Decimal("25.00"), "fee", k),
    ),
]
IDS = [name for name, _, _ in WRITES]


def _state(sandbox: Path) -> dict[str, Any]:
    dump = dump_sandbox(sandbox)
    dump.pop("writes")
    return dump


@pytest.mark.parametrize(("name", "write", "other"), WRITES, ids=IDS)
def test_a_repeated_key_replays_the_first_result(
    sandbox: Path, platform: SandboxPlatform, name: str, write: Call, other: Call
) -> None:
    first = write(platform, "key-1")
    after_first = _state(sandbox)
    again = write(platform, "key-1")
    assert again == first
    assert _state(sandbox) == after_first
    assert platform.write_calls() == 2


@pytest.mark.parametrize(("name", "write", "other"), WRITES, ids=IDS)
def test_a_key_reused_for_another_request_is_a_conflict(
    sandbox: Path, platform: SandboxPlatform, name: str, write: Call, other: Call
) -> None:
    write(platform, "key-1")
    before = _state(sandbox)
    with pytest.raises(Conflict, match="idempotency key 'key-1' was already used for a"):
        other(platform, "key-1")
    assert _state(sandbox) == before


def test_keys_are_global_across_operations(platform: SandboxPlatform) -> None:
    platform.charge("R-301", Decimal("25.00"), "fee", "global-key")
    with pytest.raises(Conflict, match="'global-key' was already used for charge"):
        platform.credit("R-301", Decimal("25.00"), "fee", "global-key")
    assert platform.find_credit("global-key") is None


def test_an_equal_amount_is_the_same_request(platform: SandboxPlatform) -> None:
    first = platform.charge("R-301", Decimal("25"), "fee", "fee")
    assert platform.charge("R-301", Decimal("25.00"), "fee", "fee") == first
    assert first.amount == Decimal("25.00") and str(first.amount) == "25.00"


def test_a_refused_write_does_not_use_up_its_key(platform: SandboxPlatform) -> None:
    with pytest.raises(Conflict):
        platform.attach_domain("R-301", "acme.com", "attach")
    platform.detach_domain("C-1001", "acme.com", "detach")
    platform.attach_domain("R-301", "acme.com", "attach")
    assert platform.get_account("R-301").domains == ("acme.com",)  # type: ignore[union-attr]


def test_a_replay_answers_even_after_the_world_moved_on(platform: SandboxPlatform) -> None:
    created = platform.create_account(NEW, "acct")
    platform.cancel_account(created.id, "cancel")
    assert platform.create_account(NEW, "acct") == created
    cancelled = platform.get_account(created.id)
    assert platform.cancel_account(created.id, "cancel") == cancelled


def test_import_of_an_existing_id_under_a_new_key_changes_nothing(
    sandbox: Path, platform: SandboxPlatform
) -> None:
    assert platform.import_message("A-1", "archive", "m-1", RAW, "k1") is True
    before = _state(sandbox)
    assert platform.import_message("A-1", "archive", "m-1", RAW + b"other", "k2") is False
    assert platform.fetch_message("A-1", "archive", "m-1") == RAW
    assert _state(sandbox) == before


def test_threads_charging_with_one_key_make_one_charge(sandbox: Path) -> None:
    platform = SandboxPlatform(sandbox)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def charge() -> None:
        barrier.wait()
        results.append(platform.charge("R-301", Decimal("25.00"), "fee", "transfer-fee:acme"))

    threads = [threading.Thread(target=charge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    platform.close()
    assert len(results) == 8 and len({r.id for r in results}) == 1
    dump = dump_sandbox(sandbox)
    assert [c["idempotency_key"] for c in dump["charges"]] == ["transfer-fee:acme"]
    assert dump["writes"] == 8


def test_threads_with_their_own_keys_all_write(sandbox: Path) -> None:
    with SandboxPlatform(sandbox) as platform:
        threads = [
            threading.Thread(
                target=platform.charge, args=("R-301", Decimal("1.00"), "fee", f"fee:{n}")
            )
            for n in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    charges = dump_sandbox(sandbox)["charges"]
    assert sorted(c["id"] for c in charges) == [f"CH-{n}" for n in range(1, 7)]


_CHILD = """
import sys
from decimal import Decimal
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
with SandboxPlatform(sys.argv[1]) as platform:
    print(platform.charge("R-301", Decimal("25.00"), "fee", "transfer-fee:acme").id)
"""


def test_processes_charging_with_one_key_make_one_charge(sandbox: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(sandbox)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=60)[0].strip() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert outputs == ["CH-1"] * 3
    assert len(dump_sandbox(sandbox)["charges"]) == 1
