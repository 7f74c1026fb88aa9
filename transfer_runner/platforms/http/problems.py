"""RFC 9457 problem replies of the sandbox server, and the mapping from platform errors.

The mapping is the inverse of the adapter's (`replies.problem_error`): NotFound -> 404
not-found, AccountCancelled -> 409 account-cancelled with the account id in `account`, a
Conflict about a reused idempotency key -> 409 idempotency-key-reused, any other Conflict ->
409 conflict, any other PlatformError -> its status (400 when it has none; a 422, a request
well-formed but naming what cannot exist, is `unprocessable`).

One problem is the sandbox server's own, not the contract's: 421 `/problems/misdirected-request`,
for a `Host` header the server does not answer to (`sandbox serve`'s defence against DNS
rebinding); a provider's panel behind its own front end never sends it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from werkzeug.wrappers import Response

from transfer_runner import errors
from transfer_runner.platforms.http.wire import PROBLEM_TYPES

__all__ = ["problem", "error_response", "PROBLEM_CONTENT_TYPE"]

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    "not-found": "Not found",
    "conflict": "Conflict",
    "account-cancelled": "Account cancelled",
    "idempotency-key-reused": "Idempotency key reused",
    "unauthorized": "Unauthorized",
    "bad-request": "Bad request",
    "method-not-allowed": "Method not allowed",
    "payload-too-large": "Payload too large",
    "unprocessable": "Unprocessable content",
    "rate-limited": "Rate limited",
    "unavailable": "Unavailable",
    "internal": "Internal server error",
    "misdirected-request": "Misdirected request",
}
# The contract's problem types, and the sandbox server's own (see the module's docstring).
_TYPES = {**PROBLEM_TYPES, "misdirected-request": "/problems/misdirected-request"}
_SLUG_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    409: "conflict",
    413: "payload-too-large",
    422: "unprocessable",
    429: "rate-limited",
    503: "unavailable",
}
_KEY_REUSED = re.compile(r"idempotency key .* was already used")


def problem(
    status: int, slug: str, detail: str, *, headers: Mapping[str, str] | None = None, **extra: str
) -> Response:
    """An RFC 9457 `application/problem+json` response."""
    body = {"type": _TYPES[slug], "title": _TITLES[slug], "status": status}
    body.update(detail=detail, **extra)
    return Response(
        json.dumps(body),
        status=status,
        headers=dict(headers or {}),
        content_type=PROBLEM_CONTENT_TYPE,
    )


def error_response(exc: errors.PlatformError) -> Response:
    """The problem reply for a platform error (see the contract's error mapping)."""
    if isinstance(exc, errors.NotFound):
        return problem(404, "not-found", exc.detail)
    if isinstance(exc, errors.AccountCancelled):
        return problem(409, "account-cancelled", exc.detail, account=exc.account)
    if isinstance(exc, errors.Conflict):
        slug = "idempotency-key-reused" if _KEY_REUSED.search(exc.detail) else "conflict"
        return problem(409, slug, exc.detail)
    status = exc.status if exc.status is not None and 400 <= exc.status <= 599 else 400
    slug = _SLUG_BY_STATUS.get(status, "internal" if status >= 500 else "bad-request")
    return problem(status, slug, exc.detail)
