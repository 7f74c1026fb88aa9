"""A small HTTP transport for the platform REST API: pooling, timeouts, bounded retries.

Retry rules (`Transport.request`, with the runner's one `transfer_runner.retries.RetryPolicy`):

- Retried: 429 (after `Retry-After`, seconds or HTTP-date, capped at 60 s), 500, 502, 503, 504 and
  connection failures (refused, reset, dropped without a reply, read timeout), with
  exponential backoff and full jitter, at most `policy.attempts` attempts in all.
- Only *safe* requests are retried: reads (GET/HEAD, and the reads sent as POST because their
  query is a body, such as `fetch_messages`) always, writes only when they carry an
  `Idempotency-Key` header. A keyed write may be retried even after a 500, a reset or a timeout
  that came after the server acted, because the platform replays the first result for a
  repeated key instead of acting twice. A write without a key is never retried (after a
  dropped connection nobody knows whether it happened, and the error says so).
- Everything else (4xx, redirects, TLS failures) fails at once.

Replies are bounded: the transport asks for no content encoding (`Accept-Encoding: identity`)
and refuses a reply that has one (a small gzip reply can inflate to GiBs), refuses a
`Content-Length` over `max_reply_bytes` before reading the body, and stops reading a body
without one as soon as it passes that (`MAX_REPLY_BYTES`, 96 MiB: above the contract's largest
message, 64 MiB, fetched alone). Such a refusal is not retried.

Failures become `transfer_runner.errors` leaves (see `problem_error`). Messages name the
endpoint (`create_account (POST /v1/accounts)`) and the problem's title and detail. The bearer
token is held in a `_Secret` whose repr is masked, is never logged (urllib3 logs no headers) and
is scrubbed from any text taken from a response before it reaches a message.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    ProtocolError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)

from transfer_runner.errors import (
    ConfigError,
    PlatformError,
)
from transfer_runner.platforms.http.replies import (
    Response,
    parse_retry_after,
    problem_error,
)
from transfer_runner.retries import RetryPolicy

__all__ = [  # Response, parse_retry_after and problem_error are replies', re-exported
    "Endpoint",
    "Response",
    "HTTP_RETRIES",
    "MAX_REPLY_BYTES",
    "MAX_REPLY_ENV",
    "MAX_RETRY_AFTER_S",
    "Transport",
    "RETRY_STATUSES",
    "parse_retry_after",
    "problem_error",
    "check_base_url",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MASK = "****"
_NOISE = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")


@dataclass(frozen=True)
class Endpoint:
    """One REST endpoint: the Protocol method it serves, its HTTP method and path template."""

    name: str
    method: str
    template: str
    read: bool = False  # a read sent as POST (its query in the body): retried as a GET is

    @property
    def label(self) -> str:
        """`create_account (POST /v1/accounts)`: how messages name the endpoint."""
        return f"{self.name} ({self.method} {self.template})"

    def path(self, params: Mapping[str, str]) -> str:
        """The template with every parameter percent-encoded as one path segment."""
        values = {k: quote(str(v), safe="") for k, v in params.items()}
        try:
            return self.template.format(**values)
        except KeyError as exc:  # a programming error in the adapter, not user input
            raise ValueError(f"{self.template}: missing path parameter {exc}") from exc


HTTP_RETRIES = RetryPolicy(attempts=6, base_delay_s=0.2, max_delay_s=10.0)
MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this many seconds
MAX_REPLY_BYTES = 96 * 1024 * 1024  # a reply's body (a 64 MiB message fetched alone fits)
MAX_REPLY_ENV = "TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB"
_READ_CHUNK = 1024 * 1024


class _Secret:
    """A string that never shows itself in a repr, str or traceback's locals."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__


@dataclass(frozen=True)
class _Failure:
    """Why one attempt failed, and whether trying again could help."""

    cause: str
    status: int | None
    retry_after: float | None = None
    error: PlatformError | None = None  # the mapped error, for HTTP replies


class Transport:
    """HTTP(S) requests to one base URL with a bearer token, pooled and retried safely.

    `sleep`, `rng` and `clock` are injectable so tests run without waiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        pool_size: int = 32,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.base_url = check_base_url(base_url)
        if timeout <= 0 or max_reply_bytes < 1:
            raise ConfigError(
                f"timeout and reply limit must be positive: {timeout}, {max_reply_bytes}"
            )
        self.max_reply_bytes = max_reply_bytes
        if token is not None and (not token.strip() or any(c in token for c in "\r\n\0")):
            raise ConfigError("the platform token must be non-empty and on one line")
        self._token = _Secret(token) if token else None
        self.policy = policy or HTTP_RETRIES
        self.max_retry_after_s = max_retry_after_s
        self.timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        # block=False: more concurrent requests than pool_size open extra connections rather
        # than wait; pool_size should be at least the number of forks.
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=max(1, pool_size), block=False, cert_reqs="CERT_REQUIRED"
        )
        self._sleep, self._clock = sleep, clock
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()

    def request(
        self,
        endpoint: Endpoint,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str | int | None] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        idempotency_key: str | None = None,
    ) -> Response:
        """Send one request, retrying when safe; a 2xx `Response` or a PlatformError leaf."""
        path = endpoint.path(params or {})
        pairs = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if pairs:
            path = f"{path}?{urlencode(pairs, quote_via=quote)}"
        if idempotency_key is not None and not _good_key(idempotency_key):
            detail = "every write needs a non-empty, one-line idempotency key"
            raise PlatformError(endpoint.label, detail, 400)
        headers = self._headers(accept, content_type, idempotency_key)
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        safe = endpoint.method in _SAFE_METHODS or endpoint.read or "Idempotency-Key" in headers
        attempts = self.policy.attempts if safe else 1
        last: _Failure | None = None
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(endpoint, path, body, headers)
            if isinstance(outcome, Response):
                return outcome
            last = outcome
            if not self._retryable(outcome):
                break
            if attempt < attempts:
                self._wait(endpoint, path, outcome, attempt, attempts)
        assert last is not None
        raise self._give_up(endpoint, last, attempt, safe)

    # -- one attempt -----------------------------------------------------------------------
    def _headers(
        self, accept: str, content_type: str | None, idempotency_key: str | None
    ) -> dict[str, str]:
        headers = {"Accept": accept, "Accept-Encoding": "identity", "User-Agent": "transfer-runner"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.value}"
        if content_type:
            headers["Content-Type"] = content_type
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _attempt(
        self, endpoint: Endpoint, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response | _Failure:
        started = time.monotonic()
        try:
            reply = self._pool.request(
                endpoint.method,
                self.base_url + path,
                body=body,
                headers=headers,
                timeout=self.timeout,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
            try:
                data = self._read(reply)
            finally:
                reply.release_conn()
        except _Refused as exc:
            cause = self._scrub(exc.reason)
            return _Failure(cause, None, error=PlatformError(endpoint.label, cause, exc.args[1]))
        except (SSLError, ProxyError) as exc:
            return self._fatal(endpoint, f"TLS/proxy error: {self._describe(exc)}")
        except (Urllib3Timeout, ProtocolError, http.client.HTTPException, OSError) as exc:
            log.debug("%s %s: %s", endpoint.method, path, self._describe(exc))
            return _Failure(f"connection error: {self._describe(exc)}", None)
        except HTTPError as exc:
            return self._fatal(endpoint, f"HTTP error: {self._describe(exc)}")
        elapsed = time.monotonic() - started
        log.debug("%s %s -> %s in %.3f s", endpoint.method, path, reply.status, elapsed)
        response = Response(reply.status, {k.lower(): v for k, v in reply.headers.items()}, data)
        if 200 <= reply.status < 300:
            return response
        return self._http_failure(endpoint, response)

    def _read(self, reply: Any) -> bytes:
        """The body as sent, at most `max_reply_bytes` of it (`_Refused` beyond, and for a
        content encoding: none is asked for, so none is decoded)."""
        limit, encoding = self.max_reply_bytes, reply.headers.get("content-encoding", "")
        length = reply.headers.get("content-length", "").strip()
        declared = int(length) if length.isascii() and length.isdigit() else None
        too_long = declared is not None and declared > limit
        chunks, total = [], 0
        if encoding.strip().lower() not in ("", "identity"):
            reply.close()  # the rest is never read: the connection is not reused
            detail = (
                f"Content-Encoding {encoding[:40]!r}, not asked for (Accept-Encoding: identity)"
            )
            raise _Refused(f"the reply has {detail}", reply.status)
        while not too_long and (chunk := reply.read(_READ_CHUNK, decode_content=False)):
            total += len(chunk)
            chunks.append(chunk)
            too_long = total > limit
        if too_long:
            reply.close()
            size = "longer" if declared is None else f"{declared:,} bytes, more"
            limits = f"than the limit of {limit:,} bytes ({MAX_REPLY_ENV} raises it)"
            raise _Refused(f"the reply is {size} {limits}; it was not read", reply.status)
        return b"".join(chunks)

    @staticmethod
    def _fatal(endpoint: Endpoint, cause: str) -> _Failure:
        return _Failure(cause, None, error=PlatformError(endpoint.label, cause))

    def _http_failure(self, endpoint: Endpoint, response: Response) -> _Failure:
        error = problem_error(endpoint.label, response, scrub=self._scrub)
        retry_after = None
        if response.status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        return _Failure(
            f"HTTP {response.status}: {error.detail}", response.status, retry_after, error
        )

    # -- retrying --------------------------------------------------------------------------
    @staticmethod
    def _retryable(failure: _Failure) -> bool:
        if failure.status is None:
            return failure.error is None  # connection errors, not TLS or malformed requests
        return failure.status in RETRY_STATUSES

    def _wait(
        self, endpoint: Endpoint, path: str, failure: _Failure, attempt: int, attempts: int
    ) -> None:
        if failure.retry_after is not None:
            delay = min(failure.retry_after, self.max_retry_after_s)
        else:
            delay = self.policy.delay(attempt, self._rng)
        log.info(
            "%s %s: %s (attempt %d of %d), retrying in %.2f s",
            endpoint.method,
            path,
            failure.status if failure.status is not None else "connection error",
            attempt,
            attempts,
            delay,
        )
        self._sleep(delay)

    def _give_up(
        self, endpoint: Endpoint, last: _Failure, attempt: int, safe: bool
    ) -> PlatformError:
        if attempt > 1 and self._retryable(last):
            detail = f"gave up after {attempt} attempts; last: {last.cause}"
            return PlatformError(endpoint.label, detail, last.status)
        if last.error is not None:
            return last.error
        if safe:
            return PlatformError(endpoint.label, last.cause, last.status)
        detail = (
            f"{last.cause} (a write without an Idempotency-Key is never retried: "
            "it may or may not have happened)"
        )
        return PlatformError(endpoint.label, detail, last.status)

    # -- secrets ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._token is not None and self._token.value:
            text = text.replace(self._token.value, _MASK)
        return text

    def _describe(self, exc: BaseException) -> str:
        text = _NOISE.sub("", str(exc)) or type(exc).__name__
        return self._scrub(f"{type(exc).__name__}: {text}")


class _Refused(Exception):
    """A reply the transport does not read: (reason, HTTP status)."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


def _good_key(key: object) -> bool:
    return isinstance(key, str) and bool(key.strip()) and not any(c in key for c in "\r\n\0")


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; ConfigError for anything but plain http(s)."""
    parts = urlsplit(url.strip())
    shown = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"platform URL {shown!r}: the scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"platform URL {shown}: credentials in the URL are refused (secrets never go in "
            "URLs or manifests); set TRANSFER_RUNNER_PLATFORM_TOKEN instead"
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"platform URL {shown}: a query string or fragment is refused (secrets never go "
            "in URLs); set TRANSFER_RUNNER_PLATFORM_TOKEN for the token"
        )
    if not parts.hostname:
        raise ConfigError(f"platform URL {url!r} has no host")
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise ConfigError(f"platform URL {shown}: bad port: {exc}") from exc
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
