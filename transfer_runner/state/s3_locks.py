"""Transfer leases on S3 (invariant I6): one object per transfer, changed only conditionally.

`locks/<name>.json` holds owner, run id, host and the lease expiry. It is created with
`If-None-Match: *` (first runner wins); renewed and taken over (only once its lease expired)
with `If-Match` on the ETag read; released with `DeleteObject(IfMatch=...)`. On a server that
ignores `If-Match` on DELETE (found by the probe at open), a release instead overwrites the
lock, still with `If-Match`, by a `released` marker that every reader treats as no lock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from transfer_runner.errors import StateError
from transfer_runner.state.base import LockInfo
from transfer_runner.state.s3_objects import (
    MAX_ATTEMPTS,
    NONCE,
    S3Objects,
    Versioned,
    backoff,
    segment,
)
from transfer_runner.utc import fixed_utc, parse_utc

__all__ = ["S3Locks"]

_FIELDS = ("name", "owner", "run_id", "host", "acquired_at", "expires_at")
_OPTIONAL = {"pid": None, "machine": ""}  # written since state v3; absent from older leases


class S3Locks:
    """Acquire, renew, release, read and force-remove transfer leases."""

    def __init__(self, objects: S3Objects, *, delete_if_match: bool = True) -> None:
        self._objects = objects
        self.delete_if_match = delete_if_match

    def acquire(
        self, name: str, holder: dict[str, Any], ttl_s: float, replacing: str | None = None
    ) -> bool:
        """Take the lease for `holder` (owner, run_id, host, pid, machine) if free, released,
        expired, already this run's, or held by the run `replacing`."""
        run_id = holder["run_id"]

        def change(current: Versioned | None) -> dict[str, Any] | None:
            now = datetime.now(UTC)
            held = _live(current)
            if (
                held
                and held["run_id"] not in (run_id, replacing)
                and parse_utc(held["expires_at"]) >= now
            ):
                return None
            expires = now + timedelta(seconds=ttl_s)
            return {
                "name": name,
                **holder,
                "acquired_at": fixed_utc(now),
                "expires_at": fixed_utc(expires),
            }

        written, _ = self._objects.mutate(_key(name), change, "acquire lock")
        return written

    def renew(self, name: str, run_id: str, ttl_s: float) -> bool:
        """Extend our lease; False if the lock is gone or another run holds it now."""

        def change(current: Versioned | None) -> dict[str, Any] | None:
            held = _live(current)
            if not held or held["run_id"] != run_id:
                return None
            expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
            return {**_record(held), "expires_at": fixed_utc(expires)}

        written, _ = self._objects.mutate(_key(name), change, "renew lock")
        return written

    def release(self, name: str, run_id: str) -> None:
        """Remove our lease; a no-op if we do not hold it."""
        self._remove(name, run_id, "release lock")

    def force_remove(self, name: str) -> LockInfo | None:
        """Remove the lease whoever holds it; returns what was removed."""
        return self._remove(name, None, "force unlock")

    def get(self, name: str) -> LockInfo | None:
        """The live or expired lease on `name`, or None (released counts as none)."""
        held = _live(self._objects.get(_key(name), "read lock"))
        return _info(held) if held else None

    def _remove(self, name: str, run_id: str | None, what: str) -> LockInfo | None:
        key = _key(name)
        for attempt in range(MAX_ATTEMPTS):
            current = self._objects.get(key, what)
            held = _live(current)
            if current is None or held is None or (run_id and held["run_id"] != run_id):
                return None
            if self.delete_if_match:
                done = self._objects.delete(key, current.etag, what)
            else:
                marker = {**_record(held), "released": True}
                done = self._objects.replace(key, marker, current.etag, what)
            if done:
                return _info(held)
            backoff(attempt)
        raise StateError(
            f"state {self._objects.url}: {what} {name}: the lock kept changing under us; "
            f"gave up after {MAX_ATTEMPTS} attempts"
        )


def _key(name: str) -> str:
    return f"locks/{segment(name)}.json"


def _live(current: Versioned | None) -> dict[str, Any] | None:
    if current is None or current.body.get("released"):
        return None
    return current.body


def _record(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != NONCE}


def _info(body: dict[str, Any]) -> LockInfo:
    values = {k: body[k] for k in _FIELDS} | {k: body.get(k, v) for k, v in _OPTIONAL.items()}
    values["acquired_at"] = parse_utc(values["acquired_at"])
    values["expires_at"] = parse_utc(values["expires_at"])
    return LockInfo(**values)
