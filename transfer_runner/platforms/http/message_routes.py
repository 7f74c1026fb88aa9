"""The message endpoints of the platform REST API: a store's listing, its summary, one message,
a batch of messages (`POST .../stores/{store}/fetch`: base64 bodies in JSON, at most MAX_FETCH ids,
those gone left out and named in `missing`), and an import."""

from __future__ import annotations

import base64

from transfer_runner.platforms.base import MAX_FETCH
from transfer_runner.platforms.http.calls import (
    RFC822,
    Call,
    Reply,
    bad_request,
    json_object,
    key_of,
    limit_of,
    store_of,
)
from transfer_runner.platforms.http.wire import to_wire

__all__ = ["count_messages", "fetch_message", "fetch_messages", "import_message", "list_messages"]


def list_messages(call: Call) -> Reply:
    cursor = call.query.get("cursor") or None
    page = call.platform.list_messages(
        call.args["account_id"], store_of(call), cursor, limit_of(call)
    )
    return Reply(200, to_wire(page))


def count_messages(call: Call) -> Reply:
    count, size = call.platform.count_messages(call.args["account_id"], store_of(call))
    return Reply(200, {"count": count, "bytes": size})


def fetch_message(call: Call) -> Reply:
    a = call.args
    raw = call.platform.fetch_message(a["account_id"], store_of(call), a["message_id"])
    return Reply(200, raw=raw, content_type=RFC822)


def import_message(call: Call) -> Reply:
    media = call.content_type.split(";", 1)[0].strip().lower()
    if media != RFC822:
        raise bad_request(call, f"Content-Type must be {RFC822}, not {media or 'missing'}")
    if not call.body:
        raise bad_request(call, "the message must not be empty")
    a = call.args
    imported = call.platform.import_message(
        a["account_id"], store_of(call), a["message_id"], call.body, key_of(call)
    )
    return Reply(201 if imported else 200, {"imported": imported})


def fetch_messages(call: Call) -> Reply:
    ids = json_object(call).get("ids")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_FETCH
        or not all(isinstance(i, str) and i for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise bad_request(call, f"body.ids: give 1..{MAX_FETCH} distinct message ids")
    found = call.platform.fetch_messages(call.args["account_id"], store_of(call), ids)
    messages = [{"id": i, "raw": base64.b64encode(raw).decode("ascii")} for i, raw in found.items()]
    return Reply(200, {"messages": messages, "missing": [i for i in ids if i not in found]})
