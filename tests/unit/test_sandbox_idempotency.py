"""Idempotency keys under concurrency: threads and processes with one key make one write.
(Replays and reused keys are in the contract suite, tests/contracts/platform.py.)"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from transfer_runner.platforms.base import NewAccount
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

NEW = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))
RAW = b"Message-ID: <x@y>\r\nSubject: hello\r\n\r\nbody\r\n"

Call = Callable[[SandboxPlatform, str], Any]


# Each write with one request, and the same write with another request.
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
