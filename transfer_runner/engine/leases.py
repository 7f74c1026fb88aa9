"""Who holds a transfer's lease, whether that process is gone, and the heartbeat that renews
our own while the transfer runs.

A lease names its process by pid and by `machine`: the kernel's boot id and the process's pid
namespace. A pid means one process only within that pair, so a run that finds a lease with our
`machine` and a pid no process has any more knows its holder is dead (stopped at once, killed,
crashed) and may take the lease over at once instead of waiting out its lifetime. Anything less
certain (another machine or container, no /proc, a pid now reused) waits for the expiry.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from pathlib import Path

from transfer_runner.modules.context import RunContext
from transfer_runner.state.base import LockInfo, StateStore, TransferRecord

__all__ = ["Heartbeat", "acquire_lease", "holder_gone", "this_machine"]

log = logging.getLogger(__name__)


@functools.cache
def this_machine() -> str:
    """`boot-id/pid-namespace`, or "" where the system does not tell (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


def holder_gone(lock: LockInfo) -> bool:
    """Whether `lock` is held by a process of this machine that no longer exists."""
    if not lock.pid or not lock.machine or lock.machine != this_machine():
        return False
    if lock.pid == os.getpid():
        return False
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def acquire_lease(
    state: StateStore,
    name: str,
    owner: str,
    run_id: str,
    ttl_s: float,
    record: TransferRecord | None = None,
) -> bool:
    """Take the transfer's lease: free, expired, or held by a process of this machine that is
    gone (a run stopped at once or killed), which is taken over without waiting for expiry,
    by compare-and-set on the dead holder's run, and recorded as a `lock_taken_over` event.
    `record` (the transfer marked running) is written with the lease."""
    host = socket.gethostname()
    pid, machine = os.getpid(), this_machine()
    if state.acquire_lock(name, owner, run_id, host, ttl_s, pid=pid, machine=machine,
                          record=record):  # fmt: skip
        return True
    stale = state.get_lock(name)
    if stale is None or not holder_gone(stale):
        return False
    taken = state.acquire_lock(name, owner, run_id, host, ttl_s, pid=pid, machine=machine,
                               replacing=stale.run_id, record=record)  # fmt: skip
    if taken:
        log.warning("%s: took over the lock of run %s (pid %s is gone)", name, stale.run_id,
                    stale.pid)  # fmt: skip
        state.append_event(
            run_id, name, "lock_taken_over",
            {"from_run": stale.run_id, "owner": stale.owner, "pid": stale.pid},
        )  # fmt: skip
    return taken


class Heartbeat:
    """Renews a transfer's lease every third of its lifetime while the transfer runs."""

    def __init__(self, run: RunContext, name: str, ttl_s: float) -> None:
        self._run, self._name, self._ttl = run, name, ttl_s
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                held = self._run.state.renew_lock(self._name, self._run.run_id, self._ttl)
                log.debug("%s: lease renewed for %.0f s: %s", self._name, self._ttl, held)
            except Exception:  # a failed renewal must stop the transfer, never pass silently
                log.exception("could not renew the lock on %s", self._name)
                held = False
            if not held:
                log.error("lost the lock on %s", self._name)
                self.lost.set()
                return
