"""Transfers on the S3 state: one object per transfer, and the write-through cache of the
transfers whose lease this store holds.

`transfers/<name>.json` holds the transfer's record, its lease, the latest record of each step
and its log (events and step records, in the order written); every write of it is conditional
on the ETag last read or written. While this store holds a transfer's lease it keeps that
object in memory: reads are answered from memory, and what is recorded is buffered until the
next conditional write of the object, which `renew_lock` and `release_lock` make (the engine
renews after each step whose record must survive a crash, and before a write that cannot be
undone). That write is also the lease check: if the object changed since (the lease expired
and was taken over, or `unlock` removed it), it fails with 412 and the lease is lost. Nothing
is read before a write.

The log is bounded: past LOG_KEEP entries a write first moves them to an immutable
`history/<name>/<seq>.json`, named in the object's `history`. Events about a transfer written
without its lease (`locked`, `drift`, a completed transfer's `transfer_finished`, `unlocked`)
are immutable objects of their own, `transfer-events/<name>/<seq>.json`, so that they never
change the object under its holder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer_runner.errors import StateError
from transfer_runner.state.base import LockInfo
from transfer_runner.state.s3_objects import UNREAD, S3Objects, Versioned, segment, without_nonce
from transfer_runner.utc import fixed_utc, parse_utc

__all__ = [
    "LOG_KEEP",
    "TransferDocs",
    "Edit",
    "doc_key",
    "lock_info",
    "logged_event",
    "loose_event",
]

_EVENT_KEYS = ("index", "name", "module", "status", "message")

LOG_KEEP = 64  # log entries kept in a transfer's object before they move to a history object
_SEEN_KEEP = 256  # objects read just before their lease is taken (saves acquire's read)
_LOCK_FIELDS = ("name", "owner", "run_id", "host", "acquired_at", "expires_at")

Edit = Callable[[dict[str, Any]], dict[str, Any]]
"""A change of a transfer's object: returns the new body (never changes the one given)."""


@dataclass
class _Held:
    """A transfer whose lease this store holds: its object as last written, and its ETag."""

    run_id: str
    doc: dict[str, Any]
    etag: str
    lock: threading.Lock = field(default_factory=threading.Lock)


class TransferDocs:
    """Reads and writes of transfers' objects, and the leases held through them."""

    def __init__(self, objects: S3Objects, seq: Callable[[], tuple[datetime, str]]) -> None:
        self._objects = objects
        self._seq = seq  # a fresh (time, sortable unique sequence) for a log entry
        self._held: dict[str, _Held] = {}
        self._seen: OrderedDict[str, Versioned | None] = OrderedDict()
        self._guard = threading.Lock()

    # -- reads -----------------------------------------------------------------------------
    def read(self, name: str) -> dict[str, Any] | None:
        """The transfer's object: from memory while this store holds its lease, else read
        now (one GET, remembered for a lease taken just after)."""
        held = self._held.get(name)
        if held is not None:
            return held.doc
        found = self._objects.get(doc_key(name), "read transfer")
        with self._guard:
            self._seen[name] = found
            self._seen.move_to_end(name)
            while len(self._seen) > _SEEN_KEEP:
                self._seen.popitem(last=False)
        return found.body if found is not None else None

    def holds(self, name: str) -> bool:
        return name in self._held

    # -- writes ----------------------------------------------------------------------------
    def edit(self, name: str, change: Edit, what: str) -> None:
        """Change the transfer's object: buffered while this store holds its lease (durable
        at the next renewal or release), else written now, conditionally, unless another
        runner holds a live lease on it (StateError: never write under someone's lease)."""
        held = self._held.get(name)
        if held is not None:
            with held.lock:
                held.doc = change(held.doc)
            return

        def direct(current: Versioned | None) -> dict[str, Any]:
            lock = _body(current, name).get("lock")
            if lock and parse_utc(lock["expires_at"]) >= datetime.now(UTC):
                raise StateError(
                    f"state {self._objects.url}: {what} refused: {name} is locked by "
                    f"{lock['owner']} (run {lock['run_id']}), and this store does not hold it"
                )
            return self._spilled(name, change(_body(current, name)))

        self._objects.mutate(doc_key(name), direct, what)

    def entry(self, kind: str, **values: Any) -> dict[str, Any]:
        """A new log entry: its sequence and time, then `values`."""
        at, seq = self._seq()
        return {"seq": seq, "at": fixed_utc(at), "kind": kind, **values}

    # -- leases ----------------------------------------------------------------------------
    def acquire(
        self,
        name: str,
        holder: dict[str, Any],
        ttl_s: float,
        replacing: str | None,
        record: dict[str, Any] | None = None,
    ) -> bool:
        """Take the lease (see `StateStore.acquire_lock`), writing `record` with it; this
        store then holds the object."""
        run_id = holder["run_id"]
        with self._guard:
            seen: Any = self._seen.pop(name, UNREAD)
        held = self._held.get(name)
        if held is not None:
            seen = Versioned(held.doc, held.etag)
        written: list[dict[str, Any]] = []

        def change(current: Versioned | None) -> dict[str, Any] | None:
            now = datetime.now(UTC)
            doc = _body(current, name)
            lock = doc.get("lock")
            if (
                lock
                and lock["run_id"] not in (run_id, replacing)
                and parse_utc(lock["expires_at"]) >= now
            ):
                return None
            expires = fixed_utc(now + timedelta(seconds=ttl_s))
            new = {"name": name, **holder, "acquired_at": fixed_utc(now), "expires_at": expires}
            changed = {**doc, "lock": new, **({"record": record} if record else {})}
            written[:] = [self._spilled(name, changed)]
            return written[0]

        etag, _ = self._objects.mutate(doc_key(name), change, "acquire lock", seen)
        if etag is None:
            return False
        self._held[name] = _Held(run_id, written[0], etag)
        return True

    def renew(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our lease, writing what was buffered; False if we no longer hold it."""

        def extend(lock: dict[str, Any] | None) -> dict[str, Any] | None:
            if not lock or lock["run_id"] != run_id:
                return None
            return {**lock, "expires_at": fixed_utc(datetime.now(UTC) + timedelta(seconds=ttl_s))}

        return self._write_lock(name, run_id, extend, "renew lock", keep=True) is not None

    def release(self, name: str, run_id: str | None) -> LockInfo | None:
        """Remove the lease (ours, or anyone's when `run_id` is None), writing what was
        buffered; returns the lease removed."""

        def remove(lock: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if not lock or (run_id and lock["run_id"] != run_id) else {}

        what = "release lock" if run_id else "force unlock"
        return self._write_lock(name, run_id, remove, what, keep=False)

    def _write_lock(
        self,
        name: str,
        run_id: str | None,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        what: str,
        *,
        keep: bool,
    ) -> LockInfo | None:
        """Write the object with its lease changed by `change` ({} removes it, None leaves
        the object alone). From memory, conditionally on our last write, while held: a 412
        means the lease is lost. Returns the lease as it was before, or None if unchanged."""
        held = self._held.get(name)
        if held is None or (run_id is not None and held.run_id != run_id):
            return self._write_unheld(name, change, what)
        with held.lock:
            before = held.doc.get("lock")
            lock = change(before)
            if lock is None:
                return None
            body = self._spilled(name, {**held.doc, "lock": lock or None})
            etag = self._objects.replace(doc_key(name), body, held.etag, what)
            if etag is not None and keep:
                held.doc, held.etag = body, etag
            else:  # released, or lost to someone else's write
                self._held.pop(name, None)
        if etag is None:  # the lease was lost; `unlock` goes on without our copy
            return None if run_id else self._write_unheld(name, change, what)
        return lock_info(before) if before else None

    def _write_unheld(
        self,
        name: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        what: str,
    ) -> LockInfo | None:
        seen: list[dict[str, Any]] = []

        def direct(current: Versioned | None) -> dict[str, Any] | None:
            if current is None:
                return None
            lock = change(current.body.get("lock"))
            if lock is None:
                return None
            seen[:] = [current.body["lock"]]
            return {**without_nonce(current.body), "lock": lock or None}

        etag, _ = self._objects.mutate(doc_key(name), direct, what)
        return lock_info(seen[0]) if etag is not None and seen else None

    # -- the log ---------------------------------------------------------------------------
    def _spilled(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc`, its log moved to a new history object first when it is over LOG_KEEP."""
        log = doc.get("log") or []
        if len(log) <= LOG_KEEP:
            return doc
        key = f"history/{segment(name)}/{log[-1]['seq']}.json"
        if not self._objects.create(key, {"entries": log}, "move log to history"):
            raise StateError(f"state {self._objects.url}: {key} already exists")
        return {**doc, "log": [], "history": [*doc.get("history", []), key]}

    def history(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """Every log entry of the transfer, the moved ones first, in the order written."""
        moved = self._objects.get_many(doc.get("history") or [], "read history")
        entries = [e for found in moved if found for e in found.body.get("entries", [])]
        return entries + list(doc.get("log") or [])


def doc_key(name: str) -> str:
    return f"transfers/{segment(name)}.json"


def lock_info(body: dict[str, Any]) -> LockInfo:
    values = {k: body[k] for k in _LOCK_FIELDS}
    values["acquired_at"] = parse_utc(values["acquired_at"])
    values["expires_at"] = parse_utc(values["expires_at"])
    return LockInfo(**values, pid=body.get("pid"), machine=body.get("machine", ""))


def _body(current: Versioned | None, name: str) -> dict[str, Any]:
    if current is None:
        return {"name": name, "record": None, "lock": None, "latest": {}, "log": [],
                "history": []}  # fmt: skip
    return without_nonce(current.body)


def loose_event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """An event object (no transfer's, or written without the transfer's lease)."""
    seq = key.rsplit("/", 1)[1].removesuffix(".json")
    at, run_id, transfer = parse_utc(body["at"]), body["run_id"], body.get("transfer")
    return {"seq": seq, "at": at, "run_id": run_id, "transfer": transfer, "kind": body["kind"],
            "data": body["data"]}  # fmt: skip


def logged_event(transfer: str, entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of a transfer's log as an event, shaped as the SQLite store's; a step record
    reads back as a `step` event."""
    common = {"seq": entry["seq"], "at": parse_utc(entry["at"]), "transfer": transfer}
    if entry["kind"] == "step":
        step = entry["step"]
        data = {name: step.get(name, "") for name in _EVENT_KEYS}
        return {**common, "run_id": step["run_id"], "kind": "step", "data": data}
    return {**common, "run_id": entry["run_id"], "kind": entry["kind"], "data": entry["data"]}
