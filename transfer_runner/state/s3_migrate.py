"""`transfer-runner migrate-state`: an S3 state written by a transfer-runner from before
2026-12 (layout 1: an object per step, event and lease) moved to layout 2 (an object per
transfer, `state/s3_transfers.py`), nothing lost.

Runs, ticket claims and events of no transfer keep their objects. Each transfer's record, step
objects and event objects become one `transfers/NAME.json`: its record, the latest record of
each step, and every step and event in its log in the order written. It refuses while any
lease of layout 1 is live (a runner of the old version may be at work; wait, or `unlock` with
that version); expired and released leases are dropped. The old objects stay where they were
(nothing reads them any more; delete `transfers/NAME/` and `locks/` when satisfied). Run again,
it does nothing: a transfer already moved is left as it is, and `layout.json` is written last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.s3_client import S3Settings, make_s3_client, parse_s3_url
from transfer_runner.state.s3 import LAYOUT
from transfer_runner.state.s3_objects import S3Objects, unsegment, without_nonce
from transfer_runner.state.s3_transfers import doc_key
from transfer_runner.utc import parse_utc

__all__ = ["Migrated", "migrate_state"]


@dataclass(frozen=True)
class Migrated:
    """What `migrate_state` did."""

    url: str
    transfers: int  # moved now
    already: int  # moved by an earlier run
    steps: int
    events: int
    marked: bool  # layout.json written now (False: the prefix was in layout 2 already)


def migrate_state(url: str, *, client: Any = None) -> Migrated:
    """Move the S3 state at `url` from layout 1 to layout 2 (see the module's docstring)."""
    try:
        bucket, prefix = parse_s3_url(url)
    except ConfigError as exc:
        raise ConfigError(f"bad state URL: {exc}") from exc
    s3 = client if client is not None else make_s3_client(S3Settings(url))
    objects = S3Objects(s3, bucket, prefix, url)
    objects.check_bucket()
    marker = objects.get("layout.json", "read layout")
    if marker is not None:
        if marker.body.get("layout") != LAYOUT:
            raise ConfigError(f"state {url} has layout {marker.body.get('layout')!r}")
        return Migrated(url, 0, 0, 0, 0, marked=False)
    _refuse_live_leases(objects)
    grouped: dict[str, list[str]] = {}
    for key in objects.keys("transfers/", "read transfers"):
        parts = key.split("/")
        if len(parts) >= 3:  # transfers/<name>/record.json, .../steps/..., .../events/...
            grouped.setdefault(parts[1], []).append(key)
    moved = already = steps = events = 0
    for name_segment, keys in sorted(grouped.items()):
        doc, counts = _document(objects, unsegment(name_segment), keys)
        if objects.create(doc_key(doc["name"]), doc, "migrate transfer"):
            moved += 1
        else:
            already += 1
        steps, events = steps + counts[0], events + counts[1]
    objects.create("layout.json", {"layout": LAYOUT}, "mark layout")
    return Migrated(url, moved, already, steps, events, marked=True)


def _refuse_live_leases(objects: S3Objects) -> None:
    now = datetime.now(UTC)
    keys = objects.keys("locks/", "read locks")
    for found in objects.get_many(keys, "read locks"):
        if found is None or found.body.get("released"):
            continue
        if parse_utc(found.body["expires_at"]) >= now:
            raise StateError(
                f"state {objects.url}: {found.body.get('name')} is locked by "
                f"{found.body.get('owner')} (run {found.body.get('run_id')}) until "
                f"{found.body['expires_at']}: a runner of the older version may be at work; "
                "let it finish (or `unlock` it with that version), then migrate"
            )


def _document(
    objects: S3Objects, name: str, keys: list[str]
) -> tuple[dict[str, Any], tuple[int, int]]:
    """The layout-2 object of one transfer from its layout-1 objects; (steps, events) moved."""
    record_keys = [k for k in keys if k.endswith("/record.json")]
    step_keys = sorted(k for k in keys if "/steps/" in k)
    event_keys = sorted(k for k in keys if "/events/" in k)
    record = objects.get(record_keys[0], "read record") if record_keys else None
    log: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    for key, found in zip(step_keys, objects.get_many(step_keys, "read steps"), strict=True):
        if found is None:
            continue
        seq = key.rsplit("/", 1)[1].removesuffix(".json").split("_", 1)[0]
        body = without_nonce(found.body)
        at = body.pop("at")
        log.append({"seq": seq, "at": at, "kind": "step", "step": body})
        latest[body["name"]] = {**body, "seq": seq}  # keys sort in the order written
    for key, found in zip(event_keys, objects.get_many(event_keys, "read events"), strict=True):
        if found is None:
            continue
        seq = key.rsplit("/", 1)[1].removesuffix(".json")
        body = found.body
        log.append({"seq": seq, "at": body["at"], "kind": body["kind"], "run_id": body["run_id"],
                    "data": body["data"]})  # fmt: skip
    doc = {
        "name": name,
        "record": without_nonce(record.body) if record is not None else None,
        "lock": None,
        "latest": latest,
        "log": sorted(log, key=lambda entry: entry["seq"]),
        "history": [],
    }
    return doc, (len(step_keys), len(event_keys))
