"""Reading the platform's replies: a reply as received, an RFC 9457 problem reply mapped to
the `transfer_runner.errors` leaf the runner acts on, and a `Retry-After` header."""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.client
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from transfer_runner.errors import AccountCancelled, Conflict, NotFound, PlatformError

__all__ = ["Response", "decode_fetched", "parse_retry_after", "problem_error", "snippet"]

_MAX_TEXT = 300


@dataclass(frozen=True)
class Response:
    """A successful (2xx) reply; `headers` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, operation: str) -> Any:
        """The body as JSON (PlatformError naming `operation` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlatformError(
                operation, f"the reply is not JSON: {exc}: {snippet(self.body)}", self.status
            ) from exc


# -- problems -> errors ----------------------------------------------------------------------
def problem_error(
    operation: str, response: Response, *, scrub: Callable[[str], str] = str
) -> PlatformError:
    """The errors.py leaf for an RFC 9457 problem reply (or any non-2xx reply)."""
    problem = _problem(response.body)
    slug = _slug(problem.get("type"))
    title = _text(problem.get("title"))
    detail = _text(problem.get("detail"))
    if not problem:
        if 300 <= response.status < 400:
            detail = f"unexpected redirect to {response.headers.get('location', '?')}"
        else:
            detail = snippet(response.body) or http.client.responses.get(response.status, "")
    message = scrub(_join(title, detail) or f"HTTP {response.status}")
    if response.status == 401:
        message += " (the token comes from TRANSFER_RUNNER_PLATFORM_TOKEN)"
    if slug == "not-found" and response.status == 404:
        return NotFound(operation, message)
    if slug in ("conflict", "idempotency-key-reused") and response.status == 409:
        return Conflict(operation, message)
    if slug == "account-cancelled":
        account = _text(problem.get("account")) or "(unnamed)"
        return AccountCancelled(operation, scrub(account))
    return PlatformError(operation, message, response.status)


def _problem(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _slug(type_uri: Any) -> str:
    """`/problems/not-found` or `https://x/problems/not-found` -> `not-found`."""
    if not isinstance(type_uri, str) or "/problems/" not in type_uri:
        return ""
    return type_uri.rsplit("/problems/", 1)[1].strip("/")


def _text(value: Any) -> str:
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) else ""


def _join(title: str, detail: str) -> str:
    if title and detail and title.lower() not in detail.lower():
        return f"{title}: {detail}"
    return detail or title


def snippet(body: bytes) -> str:
    text = body[:_MAX_TEXT].decode("utf-8", "replace").strip()
    return " ".join(text.split())


# -- Retry-After and the base URL ------------------------------------------------------------
def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def decode_fetched(
    operation: str, data: Mapping[str, Any], asked: Sequence[str]
) -> dict[str, bytes]:
    """`fetch_messages`' reply (`messages`: id and base64 `raw`; `missing`: ids) as id -> bytes,
    refusing a reply that answers other ids than asked, twice, or without a body."""
    messages, missing = data.get("messages"), data.get("missing")
    if not isinstance(messages, list) or not isinstance(missing, list):
        raise PlatformError(operation, "the reply lacks the lists 'messages' and 'missing'")
    found: dict[str, bytes] = {}
    for item in messages:
        ident = item.get("id") if isinstance(item, dict) else None
        raw = item.get("raw") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not isinstance(raw, str) or ident in found:
            shown = snippet(json.dumps(item, default=str).encode())
            raise PlatformError(operation, f"a malformed or repeated message: {shown}")
        try:
            found[ident] = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PlatformError(operation, f"message {ident}: bad base64: {exc}") from exc
    if not all(isinstance(i, str) for i in missing) or sorted([*found, *missing]) != sorted(asked):
        raise PlatformError(operation, "the reply answers other message ids than were asked")
    return found
