"""The shared state store on S3 (`s3://BUCKET/PREFIX`), for runners on many machines.

Layout under PREFIX (names percent-encoded, `_` kept free as a separator)::

    layout.json                                      the layout's version (LAYOUT)
    runs/<run>.json                                  one object per run (If-None-Match, If-Match)
    run-index/<command>/<started>_<run>.json         empty marker, so last_run lists one prefix
    transfers/<name>.json                            a transfer: record, lease, latest steps, log
    history/<name>/<seq>.json                        a transfer's older log entries (immutable)
    transfer-events/<name>/<seq>.json                events written without the lease (immutable)
    events/<seq>.json                                immutable events of no transfer
    tickets/<ticket>.json                            ticket claims (If-None-Match: first wins)

A transfer is one object (state/s3_transfers.py): its lease is checked by the conditional
write of the object itself, and the runner that holds the lease keeps the object in memory,
so a transfer of 15 steps costs about 15 state requests (measured in tests/integration/
test_state_requests.py). `<seq>` is a fixed-width UTC time, strictly increasing within a
process, then a random suffix, so entries sort in the order written. Every write is
conditional; nothing is ever read-then-written blindly. Credentials, region and endpoint come
from boto3's standard chain only.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.s3_client import S3Settings, make_s3_client, parse_s3_url
from transfer_runner.state.base import (
    LockInfo,
    RunInfo,
    StepRecord,
    TransferRecord,
    TransferState,
)
from transfer_runner.state.codec import (
    run_body,
    run_from,
    step_from,
    to_json,
    transfer_body,
    transfer_from,
)
from transfer_runner.state.s3_objects import (
    S3Objects,
    Versioned,
    probe_conditional_writes,
    segment,
    unsegment,
    without_nonce,
)
from transfer_runner.state.s3_transfers import (
    TransferDocs,
    lock_info,
    logged_event,
    loose_event,
)
from transfer_runner.utc import fixed_utc

__all__ = ["LAYOUT", "S3StateStore", "probe_conditional_writes"]

LAYOUT = 2  # 1: an object per step, event and lock (before 2026-12); 2: an object per transfer


class S3StateStore:
    """StateStore on an S3 bucket and prefix. `read_only=True` never writes (not even the probe).

    `client` is for tests; by default the client comes from boto3's standard chain.
    """

    def __init__(self, url: str, *, read_only: bool = False, client: Any = None) -> None:
        try:
            bucket, prefix = parse_s3_url(url)
        except ConfigError as exc:
            raise ConfigError(f"bad state URL: {exc}") from exc
        self.url, self.read_only = url, read_only
        self._client = client if client is not None else make_s3_client(S3Settings(url))
        self._objects = S3Objects(self._client, bucket, prefix, url)
        self._clock_lock = threading.Lock()
        self._last_tick = datetime.min.replace(tzinfo=UTC)
        self._closed = False
        try:
            self._objects.check_bucket()
            if not read_only:
                probe_conditional_writes(self._objects)
            self._check_layout()
        except BaseException:
            self._client.close()
            raise
        self._docs = TransferDocs(self._objects, self._next_seq)

    def close(self) -> None:
        """Close the HTTP connections; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def _check_layout(self) -> None:
        """Refuse a prefix written in another layout; mark a new one (writable) as ours."""
        found = self._objects.get("layout.json", "read layout")
        if found is not None:
            version = found.body.get("layout")
            if version != LAYOUT:
                raise ConfigError(
                    f"state {self.url} has layout {version!r}; this transfer-runner reads "
                    f"layout {LAYOUT}: use the transfer-runner that wrote it"
                )
            return
        step_dirs = (self._objects.first_key("transfers/", "/") or "").endswith("/")
        if step_dirs or self._objects.first_key("locks/"):
            raise ConfigError(
                f"state {self.url} was written by a transfer-runner from before 2026-12 (layout "
                f"1: an object per step); this one keeps an object per transfer (layout "
                f"{LAYOUT}): move it with `transfer-runner --state {self.url} migrate-state` "
                "(nothing is lost), or give this one a new state prefix"
            )
        if not self.read_only:
            self._objects.create("layout.json", {"layout": LAYOUT}, "mark layout")

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None:
        """Record a new run; StateError if its id is already used."""
        self._writable("start run")
        body = run_body(run)
        if not self._objects.create(_run_key(run.id), body, "start run"):
            raise StateError(f"run {run.id} already exists in {self.url}")
        marker = f"run-index/{segment(run.command)}/{_key_time(run.started_at)}_{segment(run.id)}"
        self._objects.create(f"{marker}.json", {"run_id": run.id}, "start run")

    def finish_run(self, run_id: str, finished_at: datetime, totals: dict[str, int]) -> None:
        """Set a run's end time and totals; StateError if the run is unknown."""
        self._writable("finish run")
        finished = fixed_utc(finished_at)

        def change(current: Versioned | None) -> dict[str, Any]:
            if current is None:
                raise StateError(f"no run {run_id} in {self.url}")
            return {**without_nonce(current.body), "finished_at": finished, "totals": dict(totals)}

        self._objects.mutate(_run_key(run_id), change, "finish run")

    def get_run(self, run_id: str) -> RunInfo | None:
        found = self._objects.get(_run_key(run_id), "read run")
        return run_from(found.body) if found else None

    def last_run(self) -> RunInfo | None:
        """The most recently started apply run, or None."""
        runs = self.recent_runs(1)
        return runs[0] if runs else None

    def recent_runs(self, limit: int) -> list[RunInfo]:
        """The `limit` most recently started apply runs, newest first (markers sort by time)."""
        markers = self._objects.keys("run-index/apply/", "read runs")[::-1][: max(0, limit)]
        stems = [m.rsplit("/", 1)[1].removesuffix(".json") for m in markers]
        runs = [self.get_run(unsegment(stem.split("_", 1)[1])) for stem in stems]
        return [run for run in runs if run is not None]

    # -- transfers -----------------------------------------------------------------------
    def get_transfer(self, name: str) -> TransferRecord | None:
        doc = self._docs.read(name)
        return _record(doc)

    def transfer_state(self, name: str) -> TransferState:
        """Record, latest steps and lease in one read (none while this store holds the lease)."""
        doc = self._docs.read(name)
        lock = (doc or {}).get("lock")
        return TransferState(_record(doc), _latest(doc), lock_info(lock) if lock else None)

    def list_transfers(self) -> list[TransferRecord]:
        found = [_record(doc) for doc in self._all_docs()]
        return sorted((r for r in found if r is not None), key=lambda t: t.name)

    def set_transfer(self, record: TransferRecord) -> None:
        """Replace the record (buffered under this store's lease, else written conditionally)."""
        self._writable("set transfer")
        body = transfer_body(record)
        self._docs.edit(record.name, lambda doc: {**doc, "record": body}, "set transfer")

    # -- steps ---------------------------------------------------------------------------
    def record_step(self, step: StepRecord) -> None:
        """Add the step to the transfer's latest steps and its log (which is its `step`
        event); under this store's lease, durable at the next renewal or release."""
        self._writable("record step")
        body = {
            "run_id": step.run_id,
            "transfer": step.transfer,
            "index": step.index,
            "name": step.name,
            "module": step.module,
            "status": step.status,
            "started_at": fixed_utc(step.started_at),
            "ended_at": fixed_utc(step.ended_at),
            "outputs": step.outputs,
            "message": step.message,
        }
        to_json(body)  # refuse what cannot be stored before anything is changed
        entry = self._docs.entry("step", step=body)

        def add(doc: dict[str, Any]) -> dict[str, Any]:
            latest = {**doc.get("latest", {}), step.name: {**body, "seq": entry["seq"]}}
            return {**doc, "latest": latest, "log": [*doc.get("log", []), entry]}

        self._docs.edit(step.transfer, add, "record step")

    def latest_steps(self, transfer: str) -> dict[str, StepRecord]:
        """The last record of each step (by task name) of a transfer, across runs."""
        return _latest(self._docs.read(transfer))

    def run_steps(self, run_id: str) -> list[StepRecord]:
        """Every step recorded by a run, in the order recorded."""
        entries = [e for doc in self._all_docs() for e in self._docs.history(doc)]
        mine = [e for e in entries if e["kind"] == "step" and e["step"]["run_id"] == run_id]
        return [step_from(e["step"]) for e in sorted(mine, key=lambda e: e["seq"])]

    def _all_docs(self) -> list[dict[str, Any]]:
        keys = [k for k in self._objects.keys("transfers/", "read transfers")
                if k.endswith(".json") and k.count("/") == 1]  # fmt: skip
        return [f.body for f in self._objects.get_many(keys, "read transfers") if f]

    # -- ticket claims -------------------------------------------------------------------
    def claim_ticket(self, ticket_id: str, transfer: str) -> str:
        """Claim a ticket for a transfer; returns the transfer that holds it (first wins)."""
        self._writable("claim ticket")
        key = f"tickets/{segment(ticket_id)}.json"
        body = {"ticket": ticket_id, "transfer": transfer, "claimed_at": fixed_utc(_now())}
        if self._objects.create(key, body, "claim ticket"):
            return transfer

        def claim(current: Versioned | None) -> dict[str, Any] | None:
            released = current is None or current.body.get("released")
            return body if released else None  # a claim released by `abort` is free again

        written, seen = self._objects.mutate(key, claim, "claim ticket")
        if written:
            return transfer
        if seen is None:
            raise StateError(f"state {self.url}: ticket claim {ticket_id} vanished while read")
        return str(seen.body["transfer"])

    def release_ticket(self, ticket_id: str, transfer: str) -> bool:
        """Release `transfer`'s claim on a ticket (`abort`): the claim object is marked
        released (conditionally on what was read), which every reader treats as no claim."""
        self._writable("release ticket")

        def release(current: Versioned | None) -> dict[str, Any] | None:
            if current is None or current.body.get("released"):
                return None
            if current.body.get("transfer") != transfer:
                return None
            kept = without_nonce(current.body)
            return {**kept, "released": True, "released_at": fixed_utc(_now())}

        written, _ = self._objects.mutate(
            f"tickets/{segment(ticket_id)}.json", release, "release ticket"
        )
        return written is not None

    def ticket_claim(self, ticket_id: str) -> str | None:
        """The transfer that claimed a ticket, or None (none, or released)."""
        found = self._objects.get(f"tickets/{segment(ticket_id)}.json", "read ticket claim")
        if found is None or found.body.get("released"):
            return None
        return str(found.body["transfer"])

    # -- events --------------------------------------------------------------------------
    def append_event(
        self, run_id: str, transfer: str | None, kind: str, data: dict[str, Any]
    ) -> None:
        """Append an event: to the transfer's log under this store's lease (buffered), else
        as an immutable object under a fresh, sortable key."""
        self._writable("append event")
        if transfer is not None and self._docs.holds(transfer):
            entry = self._docs.entry(kind, run_id=run_id, data=data)
            to_json(entry)
            self._docs.edit(transfer, lambda d: {**d, "log": [*d.get("log", []), entry]}, kind)
            return
        at, seq = self._next_seq()
        body = {"at": fixed_utc(at), "run_id": run_id, "transfer": transfer, "kind": kind,
                "data": data}  # fmt: skip
        where = "events/" if transfer is None else f"transfer-events/{segment(transfer)}/"
        if not self._objects.create(f"{where}{seq}.json", body, "append event"):
            raise StateError(f"state {self.url}: append event: {where}{seq}.json exists")

    def events(self, transfer: str | None = None) -> list[dict[str, Any]]:
        """Events in the order appended: dicts with seq (a sortable string), at, run_id,
        transfer, kind, data; each recorded step reads back as a `step` event."""
        if transfer is None:
            docs = self._all_docs()
            keys = self._objects.keys("events/", "read events")
            keys += self._objects.keys("transfer-events/", "read events")
        else:
            doc = self._docs.read(transfer)
            docs = [doc] if doc else []
            keys = self._objects.keys(f"transfer-events/{segment(transfer)}/", "read events")
        found = self._objects.get_many(keys, "read events")
        loose = [loose_event(k, f.body) for k, f in zip(keys, found, strict=True) if f]
        logged = [logged_event(d["name"], e) for d in docs for e in self._docs.history(d)]
        return sorted(loose + logged, key=lambda e: e["seq"])

    # -- locks ---------------------------------------------------------------------------
    def acquire_lock(
        self,
        name: str,
        owner: str,
        run_id: str,
        host: str,
        ttl_s: float,
        *,
        pid: int | None = None,
        machine: str = "",
        replacing: str | None = None,
        record: TransferRecord | None = None,
    ) -> bool:
        """Take the lease if free, expired, already ours, or held by the run `replacing`
        (with `record`, in the same write); False if another live lease holds it. This store
        then keeps the transfer in memory."""
        self._writable("acquire lock")
        holder = {"owner": owner, "run_id": run_id, "host": host, "pid": pid, "machine": machine}
        body = transfer_body(record) if record is not None else None
        return self._docs.acquire(name, holder, ttl_s, replacing, body)

    def renew_lock(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our own lease and make durable what was recorded under it; False if we no
        longer hold it (the conditional write found the transfer changed by someone else)."""
        self._writable("renew lock")
        return self._docs.renew(name, run_id, ttl_s)

    def release_lock(self, name: str, run_id: str) -> None:
        """Release our own lease, writing what was recorded under it (no-op if not ours)."""
        self._writable("release lock")
        self._docs.release(name, run_id)

    def get_lock(self, name: str) -> LockInfo | None:
        lock = (self._docs.read(name) or {}).get("lock")
        return lock_info(lock) if lock else None

    def force_unlock(self, name: str) -> LockInfo | None:
        """Remove a lock whoever holds it; returns what was removed."""
        self._writable("force unlock")
        return self._docs.release(name, None)

    # -- helpers -------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self._closed:
            raise StateError(f"state store {self.url} is closed")
        if self.read_only:
            raise StateError(f"state {self.url} is open read-only; cannot {what}")

    def _tick(self) -> datetime:
        """Now, but strictly after the previous tick of this store (sortable, unique keys)."""
        with self._clock_lock:
            now = max(_now(), self._last_tick + timedelta(microseconds=1))
            self._last_tick = now
            return now

    def _next_seq(self) -> tuple[datetime, str]:
        at = self._tick()
        return at, _seq(at)


# -- keys ----------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _key_time(moment: datetime) -> str:
    return fixed_utc(moment).replace("-", "").replace(":", "")


def _seq(moment: datetime) -> str:
    return f"{_key_time(moment)}-{uuid.uuid4().hex[:8]}"


def _run_key(run_id: str) -> str:
    return f"runs/{segment(run_id)}.json"


# -- bodies -> records ---------------------------------------------------------------------
def _record(doc: dict[str, Any] | None) -> TransferRecord | None:
    record = (doc or {}).get("record")
    return transfer_from(record) if record else None


def _latest(doc: dict[str, Any] | None) -> dict[str, StepRecord]:
    latest = sorted(((doc or {}).get("latest") or {}).values(), key=lambda b: b["seq"])
    return {body["name"]: step_from(body) for body in latest}
