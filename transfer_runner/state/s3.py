"""The shared state store on S3 (`s3://BUCKET/PREFIX`), for runners on many machines.

Layout under PREFIX (names percent-encoded, `_` kept free as a separator)::

    runs/<run>.json                                  one object per run (If-None-Match, If-Match)
    run-index/<command>/<started>_<run>.json         empty marker, so last_run lists one prefix
    transfers/<name>/record.json                     the transfer record (If-Match on its ETag)
    transfers/<name>/steps/<seq>_<run>_<index>_<task>.json   one immutable object per step
    transfers/<name>/events/<seq>.json               immutable events of a transfer
    events/<seq>.json                                immutable events of no transfer
    tickets/<ticket>.json                            ticket claims (If-None-Match: first wins)
    locks/<name>.json                                leases (see state/s3_locks.py)

`<seq>` is a fixed-width UTC time, strictly increasing within a process, then a random
suffix, so keys sort in the order written and appends never conflict. A step's event is the
step object itself (read back as a `step` event), which makes "the step and its event" one
atomic write. Every other write is conditional; nothing is ever read-then-written blindly.
Credentials, region and endpoint come from boto3's standard chain only.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.s3_client import S3Settings, make_s3_client, parse_s3_url
from transfer_runner.state.base import LockInfo, RunInfo, StepRecord, TransferRecord
from transfer_runner.state.codec import run_body, run_from, step_from, to_json, transfer_from
from transfer_runner.state.s3_locks import S3Locks
from transfer_runner.state.s3_objects import (
    NONCE,
    S3Objects,
    Versioned,
    probe_conditional_writes,
    segment,
    unsegment,
)
from transfer_runner.utc import fixed_utc, parse_utc

__all__ = ["S3StateStore", "probe_conditional_writes"]

_EVENT_KEYS = ("index", "name", "module", "status", "message")


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
            delete_if_match = read_only or probe_conditional_writes(self._objects)
        except BaseException:
            self._client.close()
            raise
        self._locks = S3Locks(self._objects, delete_if_match=delete_if_match)

    @property
    def release_by_delete(self) -> bool:
        """False when the server ignores `If-Match` on DELETE and releases write a marker."""
        return self._locks.delete_if_match

    def close(self) -> None:
        """Close the HTTP connections; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._client.close()

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
            return {**_strip(current.body), "finished_at": finished, "totals": dict(totals)}

        self._objects.mutate(_run_key(run_id), change, "finish run")

    def get_run(self, run_id: str) -> RunInfo | None:
        found = self._objects.get(_run_key(run_id), "read run")
        return run_from(found.body) if found else None

    def last_run(self) -> RunInfo | None:
        """The most recently started apply run, or None."""
        markers = self._objects.keys("run-index/apply/", "read runs")
        if not markers:
            return None
        stem = markers[-1].rsplit("/", 1)[1].removesuffix(".json")
        return self.get_run(unsegment(stem.split("_", 1)[1]))

    # -- transfers -----------------------------------------------------------------------
    def get_transfer(self, name: str) -> TransferRecord | None:
        found = self._objects.get(_record_key(name), "read transfer")
        return transfer_from(found.body) if found else None

    def list_transfers(self) -> list[TransferRecord]:
        keys = [k for k in self._objects.keys("transfers/", "read transfers")
                if k.endswith("/record.json")]  # fmt: skip
        found = self._objects.get_many(keys, "read transfers")
        return sorted((transfer_from(f.body) for f in found if f), key=lambda t: t.name)

    def set_transfer(self, record: TransferRecord) -> None:
        """Replace the record, conditionally on the ETag read (re-applied on conflict)."""
        self._writable("set transfer")
        body = {
            "name": record.name,
            "manifest_sha256": record.manifest_sha256,
            "status": record.status,
            "updated_at": fixed_utc(record.updated_at),
            "last_run_id": record.last_run_id,
            "playbook_sha256": record.playbook_sha256,
        }
        self._objects.mutate(_record_key(record.name), lambda _current: body, "set transfer")

    # -- steps ---------------------------------------------------------------------------
    def record_step(self, step: StepRecord) -> None:
        """Store the step as one immutable object, which is also its `step` event."""
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
        to_json(body)  # refuse what cannot be stored before a sequence number is used
        at = self._tick()
        tail = f"{segment(step.run_id)}_{step.index}_{segment(step.name)}"
        key = f"{_transfer_dir(step.transfer)}steps/{_seq(at)}_{tail}.json"
        self._create_unique(key, {**body, "at": fixed_utc(at)}, "record step")

    def latest_steps(self, transfer: str) -> dict[str, StepRecord]:
        """The last record of each step (by task name) of a transfer, across runs."""
        last: dict[str, str] = {}
        for key in self._objects.keys(f"{_transfer_dir(transfer)}steps/", "read steps"):
            last[_step_key_parts(key)[3]] = key  # keys sort in the order written
        keys = sorted(last.values())
        found = self._objects.get_many(keys, "read steps")
        return {s.name: s for s in (step_from(f.body) for f in found if f)}

    def run_steps(self, run_id: str) -> list[StepRecord]:
        """Every step recorded by a run, in the order recorded."""
        mine = [k for k in self._step_keys() if _step_key_parts(k)[1] == run_id]
        mine.sort(key=lambda k: _step_key_parts(k)[0])
        return [step_from(f.body) for f in self._objects.get_many(mine, "read steps") if f]

    def _step_keys(self) -> list[str]:
        return [k for k in self._objects.keys("transfers/", "read steps") if "/steps/" in k]

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
            kept = {k: v for k, v in current.body.items() if k != NONCE}
            return {**kept, "released": True, "released_at": fixed_utc(_now())}

        written, _ = self._objects.mutate(
            f"tickets/{segment(ticket_id)}.json", release, "release ticket"
        )
        return written

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
        """Append one immutable event object under a fresh, sortable key."""
        self._writable("append event")
        at = self._tick()
        body = {
            "at": fixed_utc(at),
            "run_id": run_id,
            "transfer": transfer,
            "kind": kind,
            "data": data,
        }
        where = "events/" if transfer is None else f"{_transfer_dir(transfer)}events/"
        self._create_unique(f"{where}{_seq(at)}.json", body, "append event")

    def events(self, transfer: str | None = None) -> list[dict[str, Any]]:
        """Events in the order appended: dicts with seq (a sortable string), at, run_id,
        transfer, kind, data; each recorded step reads back as a `step` event."""
        if transfer is None:
            keys = self._objects.keys("events/", "read events") + [
                k
                for k in self._objects.keys("transfers/", "read events")
                if "/events/" in k or "/steps/" in k
            ]
        else:
            base = _transfer_dir(transfer)
            keys = self._objects.keys(f"{base}events/", "read events")
            keys += self._objects.keys(f"{base}steps/", "read events")
        keys.sort(key=_key_seq)
        found = self._objects.get_many(keys, "read events")
        return [_event(k, f.body) for k, f in zip(keys, found, strict=True) if f]

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
    ) -> bool:
        """Take the lease if free, expired, already ours, or held by the run `replacing`;
        False if another live lease holds it."""
        self._writable("acquire lock")
        holder = {"owner": owner, "run_id": run_id, "host": host, "pid": pid, "machine": machine}
        return self._locks.acquire(name, holder, ttl_s, replacing)

    def renew_lock(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our own lease; False if we no longer hold it."""
        self._writable("renew lock")
        return self._locks.renew(name, run_id, ttl_s)

    def release_lock(self, name: str, run_id: str) -> None:
        """Release our own lease (no-op if we do not hold it)."""
        self._writable("release lock")
        self._locks.release(name, run_id)

    def get_lock(self, name: str) -> LockInfo | None:
        return self._locks.get(name)

    def force_unlock(self, name: str) -> LockInfo | None:
        """Remove a lock whoever holds it; returns what was removed."""
        self._writable("force unlock")
        return self._locks.force_remove(name)

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

    def _create_unique(self, key: str, body: dict[str, Any], what: str) -> None:
        if not self._objects.create(key, body, what):  # a random suffix collided: a bug
            raise StateError(f"state {self.url}: {what}: {key} already exists")


# -- keys ----------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _key_time(moment: datetime) -> str:
    return fixed_utc(moment).replace("-", "").replace(":", "")


def _seq(moment: datetime) -> str:
    return f"{_key_time(moment)}-{uuid.uuid4().hex[:8]}"


def _run_key(run_id: str) -> str:
    return f"runs/{segment(run_id)}.json"


def _transfer_dir(name: str) -> str:
    return f"transfers/{segment(name)}/"


def _record_key(name: str) -> str:
    return f"{_transfer_dir(name)}record.json"


def _key_seq(key: str) -> str:
    return key.rsplit("/", 1)[1].removesuffix(".json").split("_", 1)[0]


def _step_key_parts(key: str) -> tuple[str, str, int, str]:
    """(seq, run id, index, task name) from a step object's key."""
    seq, run, index, task = key.rsplit("/", 1)[1].removesuffix(".json").split("_")
    return seq, unsegment(run), int(index), unsegment(task)


# -- bodies -> records ---------------------------------------------------------------------
def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != NONCE}


def _event(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """An event dict, shaped as the SQLite store's; a step object becomes a `step` event."""
    common = {"seq": _key_seq(key), "at": parse_utc(body["at"]), "run_id": body["run_id"]}
    if "/steps/" in key:
        data = {name: body.get(name, "") for name in _EVENT_KEYS}
        return {**common, "transfer": body["transfer"], "kind": "step", "data": data}
    return {**common, "transfer": body.get("transfer"), "kind": body["kind"], "data": body["data"]}
