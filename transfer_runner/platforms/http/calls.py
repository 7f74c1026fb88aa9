"""What every handler of the platform REST API works with: the decoded `Call`, the `Reply`, the
`Route`, and the small checks of a request that many handlers share."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from transfer_runner.domains import normalize_domain
from transfer_runner.errors import PlatformError
from transfer_runner.platforms.base import STORES, Store
from transfer_runner.platforms.http.wire import DOMAIN_PATTERN, MAX_DOMAIN
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = [
    "RFC822",
    "BodyKind",
    "Call",
    "Reply",
    "Route",
    "bad_request",
    "domain_of",
    "json_object",
    "key_of",
    "limit_of",
    "store_of",
]

RFC822 = "message/rfc822"
_DOMAIN = re.compile(DOMAIN_PATTERN)
BodyKind = Literal["none", "json", "message"]


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it."""

    operation: str
    platform: SandboxPlatform
    args: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes = b""
    content_type: str = ""
    key: str | None = None


@dataclass(frozen=True)
class Reply:
    """A success: `data` as JSON, or `raw` bytes of `content_type`; 204 has neither."""

    status: int
    data: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One endpoint: `name` is the Protocol method (and the OpenAPI operationId)."""

    name: str
    method: str
    path: str  # as in the contract: /v1/accounts/{account_id}
    handler: Callable[[Call], Reply]
    write: bool = False
    body: BodyKind = "none"

    @property
    def rule(self) -> str:
        """The path as a Werkzeug rule: `{account_id}` -> `<account_id>`."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


def bad_request(call: Call | str, detail: str) -> PlatformError:
    """A 400 for `call` (or an operation name)."""
    operation = call if isinstance(call, str) else call.operation
    return PlatformError(operation, detail, 400)


def domain_of(call: Call, value: str, where: str) -> str:
    """`value` if it is a domain in the contract's wire form (`DomainName`): a 400 if it does
    not match the pattern, a 422 if it does but is not a valid IDNA name (an `xn--` label)."""
    if len(value) > MAX_DOMAIN or not _DOMAIN.fullmatch(value):
        try:
            hint = f" (send {normalize_domain(value)!r})"
        except ValueError:
            hint = ""
        detail = f"{where}: {value!r} is not a domain name in ASCII (IDNs as A-labels){hint}"
        raise bad_request(call, detail)
    try:
        normalize_domain(value)
    except ValueError as exc:
        raise PlatformError(call.operation, f"{where}: domain {value!r} {exc}", 422) from None
    return value


def json_object(call: Call) -> dict[str, Any]:
    media = call.content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise bad_request(call, f"Content-Type must be application/json, not {media}")
    try:
        data = json.loads(call.body.decode("utf-8"))
        # JSON may escape a lone surrogate, which no UTF-8 store can hold (RFC 8259, 8.2).
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise bad_request(call, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request(call, f"the body must be a JSON object, not {type(data).__name__}")
    return data


def limit_of(call: Call) -> int:
    text = call.query.get("limit")
    if text is None or text == "":
        return 500
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise bad_request(call, f"limit must be an integer, not {text!r}")
    return int(text)


def store_of(call: Call) -> Store:
    store = call.args["store"]
    for known in STORES:
        if store == known:
            return known
    raise bad_request(call, f"store must be one of {', '.join(STORES)}, not {store!r}")


def key_of(call: Call) -> str:
    if not call.key:
        raise bad_request(call, "every write needs an Idempotency-Key header")
    return call.key
