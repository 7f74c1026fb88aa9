"""JSON objects in one S3 bucket and prefix, written only with conditional requests.

The S3 state store (`state/s3.py`) is built on three primitives: `create` (`If-None-Match: *`,
first writer wins), `replace` (`If-Match` on the ETag read) and `mutate`, the optimistic loop
that re-reads and re-applies a change until its conditional write lands. Every body carries a
fresh `nonce`, so that ETags never repeat and a write whose response was lost (then retried by
botocore and refused with 412) is recognised as our own by reading it back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from botocore.exceptions import BotoCoreError, ClientError

from transfer_runner.errors import ConfigError, StateError
from transfer_runner.retries import RetryPolicy
from transfer_runner.state.codec import to_json

log = logging.getLogger(__name__)
# A state object (a run, a transfer's record and steps, a lock) is kilobytes; one far larger
# was not written by a runner, and is refused before it fills memory.
MAX_STATE_OBJECT = 64 << 20

__all__ = [
    "Versioned",
    "S3Objects",
    "segment",
    "unsegment",
    "MAX_ATTEMPTS",
    "NONCE",
    "probe_conditional_writes",
    "UNREAD",
    "without_nonce",
]

MAX_ATTEMPTS = 10  # per optimistic update or 409 ConditionalRequestConflict, then StateError
NONCE = "nonce"
CONFLICT_POLICY = RetryPolicy(attempts=MAX_ATTEMPTS, base_delay_s=0.02, max_delay_s=0.5)
_READ_WORKERS = 16
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_WRONG_ETAG = '"00000000000000000000000000000000"'


@dataclass(frozen=True)
class Versioned:
    """An object's JSON body and the ETag it was read with."""

    body: dict[str, Any]
    etag: str


Change = Callable[[Versioned | None], dict[str, Any] | None]


class _Unread:
    """`mutate`'s default: nothing was read before; read first."""


UNREAD = _Unread()


class _Precondition(Exception):
    """412 (or 404 for `If-Match` on a missing key): the object is not what we read."""


class _Missing(Exception):
    """404: no such key."""


def segment(text: str) -> str:
    """One key segment for a name: percent-encoded, never containing `/` or `_`, never empty.

    `_` is kept free as a separator inside key names and `~` stands for the empty name; `.`
    and `..` are encoded so that no segment is a path step a client might normalise away.
    """
    if not text:
        return "~"
    quoted = quote(text, safe="").replace("_", "%5F").replace("~", "%7E")
    if quoted in (".", ".."):
        return quoted.replace(".", "%2E")
    return quoted


def unsegment(text: str) -> str:
    """The name that `segment` encoded."""
    return "" if text == "~" else unquote(text)


def backoff(attempt: int) -> None:
    """Sleep before retry `attempt` + 1 of a conflicting write (`CONFLICT_POLICY`)."""
    time.sleep(CONFLICT_POLICY.delay(attempt + 1))


class S3Objects:
    """JSON objects under `s3://bucket/prefix/`; keys given to methods are relative."""

    def __init__(self, client: Any, bucket: str, prefix: str, url: str) -> None:
        self.client, self.bucket, self.url = client, bucket, url
        self.prefix = f"{prefix}/" if prefix else ""

    # -- errors ----------------------------------------------------------------------------
    def call(self, what: str, operation: str, **kwargs: Any) -> Any:
        """One S3 request; 409 ConditionalRequestConflict retried (bounded), 412 and 404
        raised as `_Precondition`/`_Missing`, anything else as a StateError naming the URL."""
        log.debug("state: %s s3://%s/%s (%s)", operation, self.bucket, kwargs.get("Key", ""), what)
        for attempt in range(MAX_ATTEMPTS):
            try:
                return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
            except ClientError as exc:
                status, code = _status(exc), _code(exc)
                if status == 409 and code == "ConditionalRequestConflict":
                    backoff(attempt)
                    continue
                if status == 412 or code == "PreconditionFailed":
                    raise _Precondition from exc
                if status == 404 and code in _NOT_FOUND:
                    raise _Missing from exc
                raise StateError(f"state {self.url}: {what} failed: {_describe(exc)}") from exc
            except BotoCoreError as exc:
                raise StateError(f"state {self.url}: {what} failed: {exc}") from exc
        raise StateError(
            f"state {self.url}: {what} failed: the server reported a conflicting conditional "
            f"write {MAX_ATTEMPTS} times in a row (409 ConditionalRequestConflict)"
        )

    def check_bucket(self) -> None:
        """StateError unless the bucket exists and we may use it."""
        try:
            self.call("open", "head_bucket")
        except _Missing:
            raise StateError(f"state {self.url}: bucket {self.bucket!r} does not exist") from None
        except _Precondition:  # pragma: no cover - HEAD bucket takes no precondition
            raise StateError(f"state {self.url}: unexpected 412 on HEAD bucket") from None

    # -- single objects --------------------------------------------------------------------
    def get(self, key: str, what: str = "read") -> Versioned | None:
        """The object at `key` with its ETag, or None if there is none."""
        try:
            response = self.call(what, "get_object", Key=self.prefix + key)
            raw = response["Body"].read(MAX_STATE_OBJECT + 1)
        except _Missing:
            return None
        except _Precondition:  # pragma: no cover - GET here takes no precondition
            raise StateError(f"state {self.url}: unexpected 412 reading {key}") from None
        except BotoCoreError as exc:  # the body stream broke half-way
            raise StateError(f"state {self.url}: {what} {key} failed: {exc}") from exc
        if len(raw) > MAX_STATE_OBJECT:
            raise StateError(
                f"state {self.url}: {key} is larger than {MAX_STATE_OBJECT >> 20} MiB: not a "
                "state object this runner wrote; refused unread"
            )
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise StateError(f"state {self.url}: {key} is not a JSON state object") from exc
        if not isinstance(body, dict):
            raise StateError(f"state {self.url}: {key} is not a JSON state object")
        return Versioned(body, str(response["ETag"]))

    def create(self, key: str, body: dict[str, Any], what: str = "write") -> str | None:
        """Write `key` only if it does not exist (`If-None-Match: *`); its new ETag, or None
        if it exists."""
        body = _with_nonce(body)
        try:
            return self._put(what, key, body, IfNoneMatch="*")
        except _Precondition:
            return self._landed(key, body, what)

    def replace(self, key: str, body: dict[str, Any], etag: str, what: str = "write") -> str | None:
        """Overwrite `key` only if its ETag is still `etag`; its new ETag, or None if it
        changed or vanished."""
        body = _with_nonce(body)
        try:
            return self._put(what, key, body, IfMatch=etag)
        except (_Precondition, _Missing):
            return self._landed(key, body, what)

    def delete_any(self, key: str, what: str = "delete") -> None:
        """Delete `key` whatever it holds (only for probe objects nobody else writes)."""
        with contextlib.suppress(_Precondition, _Missing):
            self.call(what, "delete_object", Key=self.prefix + key)

    def mutate(
        self, key: str, change: Change, what: str, seen: Versioned | None | _Unread = UNREAD
    ) -> tuple[str | None, Versioned | None]:
        """Read `key`, compute its new body with `change` (None: leave it), write it
        conditionally on what was read; on conflict re-read and re-apply, up to MAX_ATTEMPTS.
        `seen` is what the caller read a moment ago (saves the first read; a stale one costs
        a conflict and a re-read).

        Returns (the new ETag, or None when `change` left it; what `change` last saw).
        """
        for attempt in range(MAX_ATTEMPTS):
            current = self.get(key, what) if isinstance(seen, _Unread) else seen
            seen = UNREAD
            body = change(current)
            if body is None:
                return None, current
            if current is None:
                written = self.create(key, body, what)
            else:
                written = self.replace(key, body, current.etag, what)
            if written:
                return written, current
            backoff(attempt)
        raise StateError(
            f"state {self.url}: {what}: {key} kept changing under us; gave up after "
            f"{MAX_ATTEMPTS} attempts"
        )

    def _put(self, what: str, key: str, body: dict[str, Any], **condition: str) -> str:
        response = self.call(
            what,
            "put_object",
            Key=self.prefix + key,
            Body=to_json(body).encode("utf-8"),
            ContentType="application/json",
            **condition,
        )
        return str(response["ETag"])

    def _landed(self, key: str, body: dict[str, Any], what: str) -> str | None:
        """After a 412: the ETag if the object holds our own body (a retried request whose
        first attempt had succeeded), None if someone else's write is there."""
        current = self.get(key, what)
        if current is not None and current.body.get(NONCE) == body[NONCE]:
            return current.etag
        return None

    # -- many objects ----------------------------------------------------------------------
    def keys(self, under: str, what: str = "list") -> list[str]:
        """Every key under `under` (relative, sorted), following all pages."""
        found: list[str] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            try:
                page = self.call(what, "list_objects_v2", Prefix=self.prefix + under, **extra)
            except (_Missing, _Precondition):
                raise StateError(f"state {self.url}: bucket {self.bucket!r} is gone") from None
            found += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(found)

    def first_key(self, under: str, delimiter: str = "") -> str | None:
        """The first key under `under` (relative), or None; with `delimiter`, the first
        "directory" below `under` counts as a key."""
        extra = {"Delimiter": delimiter} if delimiter else {}
        try:
            page = self.call("list", "list_objects_v2", Prefix=self.prefix + under, MaxKeys=1,
                             **extra)  # fmt: skip
        except (_Missing, _Precondition):
            raise StateError(f"state {self.url}: bucket {self.bucket!r} is gone") from None
        found = [c["Key"] for c in page.get("Contents", [])]
        found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return found[0][len(self.prefix) :] if found else None

    def get_many(self, keys: Iterable[str], what: str = "read") -> list[Versioned | None]:
        """The objects at `keys`, in the same order, read concurrently."""
        wanted = list(keys)
        if len(wanted) <= 1:
            return [self.get(key, what) for key in wanted]
        with ThreadPoolExecutor(min(_READ_WORKERS, len(wanted))) as pool:
            return list(pool.map(lambda key: self.get(key, what), wanted))


def probe_conditional_writes(objects: S3Objects) -> None:
    """Refuse (ConfigError) a bucket that ignores `If-None-Match` or `If-Match` on PUT."""
    key = f".probe/conditional-{uuid.uuid4().hex}.json"
    where = f"state {objects.url}: the bucket"
    try:
        try:
            first = objects.create(key, {"probe": 1}, "probe conditional writes")
            second = first and objects.create(key, {"probe": 2}, "probe conditional writes")
            replaced = objects.replace(key, {"probe": 3}, _WRONG_ETAG, "probe conditional writes")
        except StateError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ClientError) or _status(cause) not in (400, 501):
                raise
            raise ConfigError(
                f"{where} refused a conditional write (If-None-Match / If-Match), which the S3 "
                f"state needs for its locks: {exc}"
            ) from exc
        if not first or second:
            raise ConfigError(
                f"{where} ignores If-None-Match: * on PutObject (a second create of the same "
                "key succeeded), so locks would not be safe; use AWS S3 or a store that honours "
                "conditional writes, or sqlite:PATH state on one machine"
            )
        if replaced:
            raise ConfigError(
                f"{where} ignores If-Match on PutObject (a write with a wrong ETag succeeded), "
                "so state updates would not be safe; use a store that honours conditional writes"
            )
    finally:
        objects.delete_any(key, "remove probe object")


def without_nonce(body: dict[str, Any]) -> dict[str, Any]:
    """An object's body as its writer gave it (the `nonce` this module adds taken out)."""
    return {k: v for k, v in body.items() if k != NONCE}


def _with_nonce(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, NONCE: uuid.uuid4().hex}


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    status = _status(exc)
    head = f"{error.get('Code', 'error')}" + (f" [{status}]" if status else "")
    message = error.get("Message")
    return f"{head}: {message}" if message else head
