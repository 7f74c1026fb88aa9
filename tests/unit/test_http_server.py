"""The sandbox REST server through a real loopback socket: every endpoint, errors, faults, logs."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.builders import cut_over_day, next_first
from transfer_runner.errors import ConfigError
from transfer_runner.platforms.base import (
    Account,
    Charge,
    Comment,
    Credit,
    MessagePage,
    Subscription,
    Ticket,
)
from transfer_runner.platforms.http.faults import FaultPlan, parse_fault_kinds
from transfer_runner.platforms.http.server import SandboxServer, is_loopback
from transfer_runner.platforms.http.wire import from_wire
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

TOKEN = "tok-3f9a1c77e2"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem_type(self) -> str:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        return str(self.json()["type"])


class Client:
    """A tiny urllib client: `client.call("GET", "/v1/...")` -> Reply (any status)."""

    def __init__(self, server: SandboxServer) -> None:
        self.url = server.url

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        key: str | None = None,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        if key is not None:
            all_headers["Idempotency-Key"] = key
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=all_headers
        )
        try:
            with _OPENER.open(request, timeout=10) as resp:
                return Reply(resp.status, _lower(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, _lower(exc.headers), exc.read())


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.fixture
def start(platform: SandboxPlatform) -> Iterator[Callable[..., SandboxServer]]:
    """Start servers over the test's sandbox (token TOKEN unless given); all stopped after."""
    servers: list[SandboxServer] = []

    def _start(**kwargs: Any) -> SandboxServer:
        kwargs.setdefault("token", TOKEN)
        server = SandboxServer(platform, **kwargs).start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture
def client(start: Callable[..., SandboxServer]) -> Client:
    return Client(start())


def _raw_exchange(server: SandboxServer, head: str, body: bytes = b"") -> bytes:
    """Send one raw request and read until the server closes; RST is a failure."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while True:
            chunk = sock.recv(65536)  # ConnectionResetError here would fail the test
            if not chunk:
                return received
            received += chunk


def _charge_request(key: str, amount: str = "25.00") -> tuple[str, bytes]:
    body = json.dumps({"amount": amount, "reason": "transfer fee"}).encode()
    head = (
        "POST /v1/accounts/C-1001/charges HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head, body


# -- reads --------------------------------------------------------------------------------------
def test_health_needs_no_token(client: Client) -> None:
    reply = client.call("GET", "/v1/health", token=None)
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def test_tickets(client: Client, platform: SandboxPlatform) -> None:
    reply = client.call("GET", "/v1/tickets/T-5002")
    assert reply.status == 200
    ticket = from_wire(Ticket, reply.json())
    assert ticket == platform.get_ticket("T-5002")
    assert [c.body for c in ticket.comments] == ["first", "second"]
    missing = client.call("GET", "/v1/tickets/T-9")
    assert (missing.status, missing.problem_type) == (404, "/problems/not-found")


def test_accounts(client: Client, platform: SandboxPlatform) -> None:
    reply = client.call("GET", "/v1/accounts/C-1001")
    assert from_wire(Account, reply.json()) == platform.get_account("C-1001")
    assert client.call("GET", "/v1/accounts/C-9").status == 404
    found = client.call("GET", "/v1/accounts?domain=ACME.com").json()["accounts"]
    assert [a["id"] for a in found] == ["C-1001"]
    assert client.call("GET", "/v1/accounts?domain=nobody.example").json() == {"accounts": []}
    missing = client.call("GET", "/v1/accounts")
    assert missing.status == 400 and "'domain'" in missing.json()["detail"]


def test_messages_list_count_and_fetch(client: Client, platform: SandboxPlatform) -> None:
    base = "/v1/accounts/C-1001/stores/archive"
    ids: list[str] = []
    cursor = ""
    while True:
        page = from_wire(
            MessagePage, client.call("GET", f"{base}/messages?limit=7&cursor={cursor}").json()
        )
        ids += [m.id for m in page.messages]
        if page.next_cursor is None:
            break
        cursor = quote(page.next_cursor, safe="")
    assert len(ids) == 25 and ids == sorted(ids)
    summary = client.call("GET", f"{base}/summary").json()
    assert (summary["count"], summary["bytes"]) == platform.count_messages("C-1001", "archive")
    raw = client.call("GET", f"{base}/messages/{quote(ids[3], safe='')}")
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.body == platform.fetch_message("C-1001", "archive", ids[3])
    assert client.call("GET", f"{base}/messages/nope").status == 404


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/v1/accounts/C-1001/stores/spam/messages", "store must be one of"),
        ("/v1/accounts/C-1001/stores/spam/summary", "store must be one of"),
        ("/v1/accounts/C-1001/stores/archive/messages?limit=abc", "limit must be an integer"),
        ("/v1/accounts/C-1001/stores/archive/messages?limit=0", "limit must be 1..10000"),
        ("/v1/credits", "'idempotency_key'"),
        ("/v1/tickets/%FF", "percent-encoded UTF-8"),
    ],
)
def test_bad_reads_are_400_problems(client: Client, path: str, needle: str) -> None:
    reply = client.call("GET", path)
    assert (reply.status, reply.problem_type) == (400, "/problems/bad-request")
    assert needle in reply.json()["detail"]


def test_subscription(client: Client) -> None:
    sub = from_wire(Subscription, client.call("GET", "/v1/accounts/C-1001/subscription").json())
    assert sub.price == Decimal("120.00")
    assert client.call("GET", "/v1/accounts/R-301/subscription").status == 404


# -- writes -------------------------------------------------------------------------------------
def test_comment_replay_and_key_reuse(client: Client, platform: SandboxPlatform) -> None:
    path = "/v1/tickets/T-5001/comments"
    first = client.call("POST", path, json_body={"body": "approved"}, key="k-comment")
    assert first.status == 201
    assert from_wire(Comment, first.json()).idempotency_key == "k-comment"
    again = client.call("POST", path, json_body={"body": "approved"}, key="k-comment")
    assert (again.status, again.body) == (first.status, first.body)
    reused = client.call("POST", path, json_body={"body": "other"}, key="k-comment")
    assert (reused.status, reused.problem_type) == (409, "/problems/idempotency-key-reused")
    ticket = platform.get_ticket("T-5001")
    assert ticket is not None and [c.body for c in ticket.comments] == ["approved"]


def test_account_lifecycle_and_domains(client: Client, platform: SandboxPlatform) -> None:
    spec = {
        "parent": "R-301",
        "name": "Acme Inc",
        "domain": "acme-temp.example",
        "users": 40,
        "max_domains": 5,
        "services": ["spamstopshere"],
    }
    created = client.call("POST", "/v1/accounts", json_body=spec, key="k-create")
    assert created.status == 201
    account = from_wire(Account, created.json())
    assert (account.type, account.parent, account.domains) == (
        "resold",
        "R-301",
        ("acme-temp.example",),
    )
    replay = client.call("POST", "/v1/accounts", json_body=spec, key="k-create")
    assert (replay.status, replay.body) == (201, created.body)
    new = account.id
    attach = client.call("PUT", f"/v1/accounts/{new}/domains/extra.example", key="k-attach")
    assert (attach.status, attach.body) == (204, b"")
    held = client.call("PUT", f"/v1/accounts/{new}/domains/acme.com", key="k-held")
    assert (held.status, held.problem_type) == (409, "/problems/conflict")
    detach = client.call("DELETE", f"/v1/accounts/{new}/domains/extra.example", key="k-detach")
    assert detach.status == 204
    move = {"from_account": "C-1001", "to_account": new}
    assert (
        client.call("POST", "/v1/domains/acme.net/move", json_body=move, key="k-mv").status == 204
    )
    holder = platform.find_account_by_domain("acme.net")
    assert holder is not None and holder.id == new
    cancelled = client.call("POST", "/v1/accounts/C-1001/cancel", json_body={}, key="k-cancel")
    assert (cancelled.status, cancelled.json()["status"]) == (200, "cancelled")
    again = client.call("POST", "/v1/accounts/C-1001/cancel", key="k-cancel-2")
    assert (again.status, again.problem_type) == (409, "/problems/account-cancelled")
    assert again.json()["account"] == "C-1001"


def test_billing(client: Client) -> None:
    credit = client.call(
        "POST",
        "/v1/accounts/C-1001/credits",
        json_body={"amount": "52.00", "reason": "pro-ration"},
        key="k-credit",
    )
    assert credit.status == 201 and credit.json()["amount"] == "52.00"
    assert from_wire(Credit, credit.json()).amount == Decimal("52.00")
    charge = client.call(
        "POST",
        "/v1/accounts/A-1/charges",
        json_body={"amount": "25.00", "reason": "transfer fee"},
        key="k-charge",
    )
    assert charge.status == 201
    found = client.call("GET", "/v1/charges?idempotency_key=k-charge").json()["charges"]
    assert [from_wire(Charge, c) for c in found] == [from_wire(Charge, charge.json())]
    assert client.call("GET", "/v1/credits?idempotency_key=k-credit").json()["credits"]
    assert client.call("GET", "/v1/charges?idempotency_key=nope").json() == {"charges": []}
    refused = client.call(
        "POST",
        "/v1/accounts/C-1002/charges",
        json_body={"amount": "25.00", "reason": "fee"},
        key="k-cancelled",
    )
    assert (refused.status, refused.json()["account"]) == (409, "C-1002")


def test_import_message(client: Client, platform: SandboxPlatform) -> None:
    path = "/v1/accounts/A-1/stores/archive/messages/m-1.eml"
    raw = b"From: a@acme.com\r\nSubject: hi\r\n\r\nbody\r\n"
    rfc822 = {"Content-Type": "message/rfc822"}
    first = client.call("PUT", path, body=raw, key="k-import", headers=rfc822)
    assert (first.status, first.json()) == (201, {"imported": True})
    replay = client.call("PUT", path, body=raw, key="k-import", headers=rfc822)
    assert (replay.status, replay.body) == (201, first.body)
    again = client.call("PUT", path, body=raw, key="k-import-2", headers=rfc822)
    assert (again.status, again.json()) == (200, {"imported": False})
    assert client.call("GET", path).body == raw
    assert platform.fetch_message("A-1", "archive", "m-1.eml") == raw
    wrong = client.call("PUT", path, body=raw, key="k-3", headers={"Content-Type": "text/plain"})
    assert wrong.status == 400 and "message/rfc822" in wrong.json()["detail"]
    empty = client.call("PUT", path, body=b"", key="k-4", headers=rfc822)
    assert empty.status == 400 and "empty" in empty.json()["detail"]


def test_percent_encoded_segments_reach_the_platform_decoded(client: Client) -> None:
    awkward = "<a/b+c%d@acme.com>"
    path = f"/v1/accounts/A-1/stores/archive/messages/{quote(awkward, safe='')}"
    reply = client.call("PUT", path, body=b"x", key="k", headers={"Content-Type": "message/rfc822"})
    assert reply.status == 400 and repr(awkward) in reply.json()["detail"]
    ticket = client.call("GET", f"/v1/tickets/{quote('T/1+<x>@y', safe='')}")
    assert ticket.status == 404 and "T/1+<x>@y" in ticket.json()["detail"]
    plus = client.call("GET", f"/v1/accounts?domain={quote('a+b.example', safe='')}")
    assert plus.json() == {"accounts": []}


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'{"amount": 25.0, "reason": "x"}', "application/json", "body.amount: expected a decimal"),
        (b'{"amount": "25.00"}', "application/json", "body.reason: missing"),
        (
            b'{"amount": "1", "reason": "x", "extra": 1}',
            "application/json",
            "unknown field(s): extra",
        ),
        (b'{"amount": "-1.00", "reason": "x"}', "application/json", "amount"),
        (b"amount=1", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem(
    client: Client, platform: SandboxPlatform, body: bytes, content_type: str, needle: str
) -> None:
    reply = client.call(
        "POST",
        "/v1/accounts/C-1001/charges",
        body=body,
        key="k-bad",
        headers={"Content-Type": content_type},
    )
    assert (reply.status, reply.problem_type) == (400, "/problems/bad-request")
    assert needle in reply.json()["detail"]
    assert platform.find_charge("k-bad") is None


def test_a_write_without_idempotency_key_is_400_and_does_nothing(
    client: Client, platform: SandboxPlatform
) -> None:
    before = platform.write_calls()
    reply = client.call("PUT", "/v1/accounts/A-1/domains/x.example")
    assert (reply.status, reply.problem_type) == (400, "/problems/bad-request")
    assert "Idempotency-Key" in reply.json()["detail"]
    assert platform.write_calls() == before


# -- protocol errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_401_without_the_right_token(client: Client, token: str | None) -> None:
    reply = client.call("GET", "/v1/accounts/C-1001", token=token)
    assert (reply.status, reply.problem_type) == (401, "/problems/unauthorized")
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_401_with_another_scheme(client: Client) -> None:
    reply = client.call("GET", "/v1/accounts/C-1001", headers={"Authorization": f"Basic {TOKEN}"})
    assert reply.status == 401


@pytest.mark.parametrize("token", ["", "   ", "two words", "t\u00f6ken", "line\nbreak"])
def test_there_is_no_server_without_a_usable_token(platform: SandboxPlatform, token: str) -> None:
    with pytest.raises(ConfigError, match="token must be printable ASCII"):
        SandboxServer(platform, token=token)


def test_unknown_endpoint_404_and_wrong_method_405(client: Client) -> None:
    missing = client.call("GET", "/v1/nothing/here")
    assert (missing.status, missing.problem_type) == (404, "/problems/not-found")
    wrong = client.call("DELETE", "/v1/credits", key="k")
    assert (wrong.status, wrong.problem_type) == (405, "/problems/method-not-allowed")
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}
    # Without the token the same requests learn nothing about the routes.
    for method, path in (("GET", "/v1/nothing/here"), ("DELETE", "/v1/credits")):
        refused = client.call(method, path, key="k", token=None)
        assert (refused.status, refused.problem_type) == (401, "/problems/unauthorized")


def test_413_for_bodies_over_the_limits(start: Callable[..., SandboxServer]) -> None:
    client = Client(start(max_json_bytes=1024, max_message_bytes=4096))
    big = client.call(
        "POST", "/v1/tickets/T-5001/comments", json_body={"body": "x" * 2000}, key="k"
    )
    assert (big.status, big.problem_type) == (413, "/problems/payload-too-large")
    path = "/v1/accounts/A-1/stores/archive/messages/m1"
    rfc822 = {"Content-Type": "message/rfc822"}
    assert client.call("PUT", path, body=b"x" * 4000, key="k1", headers=rfc822).status == 201
    too_big = client.call("PUT", path, body=b"x" * 5000, key="k2", headers=rfc822)
    assert too_big.status == 413


def test_unexpected_errors_are_500_without_traceback(
    client: Client, platform: SandboxPlatform, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def boom(account_id: str) -> None:
        raise RuntimeError("kaboom-internal")

    monkeypatch.setattr(platform, "get_account", boom)
    with caplog.at_level(logging.ERROR, logger="transfer_runner.http.server"):
        reply = client.call("GET", "/v1/accounts/C-1001")
    assert (reply.status, reply.problem_type) == (500, "/problems/internal")
    assert b"kaboom" not in reply.body and b"Traceback" not in reply.body
    assert "kaboom-internal" in caplog.text


# -- faults -------------------------------------------------------------------------------------
def _plan(kind: str, **kwargs: Any) -> FaultPlan:
    return FaultPlan(fail_rate=1.0, kinds=(kind,), **kwargs)


def test_fault_429_has_retry_after_and_does_nothing(
    start: Callable[..., SandboxServer], platform: SandboxPlatform
) -> None:
    client = Client(start(faults=_plan("429", retry_after=7)))
    before = platform.write_calls()
    reply = client.call(
        "POST", "/v1/accounts/A-1/charges", json_body={"amount": "1", "reason": "r"}, key="k"
    )
    assert (reply.status, reply.problem_type) == (429, "/problems/rate-limited")
    assert reply.headers["retry-after"] == "7"
    assert platform.write_calls() == before
    assert client.call("GET", "/v1/health").status == 200  # never faulted


def test_fault_503_does_nothing(
    start: Callable[..., SandboxServer], platform: SandboxPlatform
) -> None:
    client = Client(start(faults=_plan("503")))
    before = platform.write_calls()
    reply = client.call("PUT", "/v1/accounts/A-1/domains/x.example", key="k")
    assert (reply.status, reply.problem_type) == (503, "/problems/unavailable")
    assert platform.write_calls() == before


def test_fault_reset_sends_zero_bytes_and_does_nothing(
    start: Callable[..., SandboxServer], sandbox: Path, platform: SandboxPlatform
) -> None:
    server = start(faults=_plan("reset"))
    before = dump_sandbox(sandbox)
    assert _raw_exchange(server, *_charge_request("k-reset")) == b""
    assert dump_sandbox(sandbox) == before
    assert server.app.faults.injected == {"reset": 1}


def test_fault_lost_ack_performs_the_write_then_drops(
    start: Callable[..., SandboxServer], sandbox: Path, caplog: Any
) -> None:
    server = start(faults=_plan("lost-ack"))
    with caplog.at_level(logging.INFO):
        assert _raw_exchange(server, *_charge_request("k-lost")) == b""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # a clean drop
    assert any("dropped (lost-ack)" in r.getMessage() for r in caplog.records)
    charges = dump_sandbox(sandbox)["charges"]
    assert [c["idempotency_key"] for c in charges] == ["k-lost"]
    assert _raw_exchange(server, *_charge_request("k-lost")) == b""  # a retry replays
    assert len(dump_sandbox(sandbox)["charges"]) == 1


def test_fault_lost_ack_on_a_read_is_a_reset(start: Callable[..., SandboxServer]) -> None:
    server = start(faults=_plan("lost-ack"))
    head = "GET /v1/accounts/C-1001 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += f"Authorization: Bearer {TOKEN}\r\n\r\n"
    assert _raw_exchange(server, head) == b""
    assert server.app.faults.injected == {"reset": 1}


def test_urllib_sees_the_dropped_connection(start: Callable[..., SandboxServer]) -> None:
    client = Client(start(faults=_plan("reset")))
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        client.call("GET", "/v1/accounts/C-1001")


def test_latency_delays_every_request_but_health(start: Callable[..., SandboxServer]) -> None:
    client = Client(start(faults=FaultPlan(latency_ms=300)))
    started = time.monotonic()
    assert client.call("GET", "/v1/accounts/C-1001").status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert client.call("GET", "/v1/health").status == 200
    assert time.monotonic() - started < 0.3


def test_fault_draws_are_seeded_and_respect_the_rate() -> None:
    def draws(seed: int) -> list[str | None]:
        plan = FaultPlan(fail_rate=0.3, seed=seed)
        return [plan.draw(write=True) for _ in range(2000)]

    first = draws(5)
    assert first == draws(5) and first != draws(6)
    failed = [d for d in first if d is not None]
    assert 500 < len(failed) < 700
    assert set(failed) == {"429", "503", "reset", "lost-ack"}
    reads = FaultPlan(fail_rate=1.0, kinds=("lost-ack",))
    assert {reads.draw(write=False) for _ in range(10)} == {"reset"}
    assert FaultPlan().draw(write=True) is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fail_rate": 1.5}, "--fail-rate"),
        ({"fail_rate": float("nan")}, "--fail-rate"),
        ({"latency_ms": -1}, "--latency"),
        ({"retry_after": -1}, "--retry-after"),
        ({"kinds": ("429", "boom")}, "--faults"),
        ({"kinds": ()}, "--faults"),
    ],
)
def test_fault_plan_validation(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        FaultPlan(**kwargs)


def test_parse_fault_kinds() -> None:
    assert parse_fault_kinds(" 429, reset ,429") == ("429", "reset")
    with pytest.raises(ConfigError):
        parse_fault_kinds(",")


# -- logging, server life -----------------------------------------------------------------------
def test_access_log_never_shows_the_token(client: Client, caplog: Any) -> None:
    with caplog.at_level(logging.DEBUG):
        client.call("GET", "/v1/accounts/C-1001")
        client.call("GET", "/v1/accounts/C-1001", token=TOKEN + "x")
        client.call("POST", "/v1/tickets/T-5001/comments", json_body={"body": "b"}, key="k-log")
    assert TOKEN not in caplog.text
    assert "Authorization" not in caplog.text and "Bearer" not in caplog.text
    access = [r.getMessage() for r in caplog.records if r.name == "transfer_runner.http.server"]
    assert any(m.startswith("GET /v1/accounts/C-1001 200 ") for m in access), access
    assert any(m.startswith("GET /v1/accounts/C-1001 401 ") for m in access), access
    assert any(m.startswith("POST /v1/tickets/T-5001/comments 201 ") for m in access), access


def test_concurrent_requests_share_a_bounded_pool(
    start: Callable[..., SandboxServer], platform: SandboxPlatform
) -> None:
    client = Client(start(threads=4))
    statuses: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            status = client.call("GET", "/v1/accounts/C-1001").status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 40
    assert len(platform._connections) <= 4 + 1  # the server's threads (+ the test's own)


def test_server_reports_a_busy_port(
    start: Callable[..., SandboxServer], platform: SandboxPlatform
) -> None:
    busy = start()
    with pytest.raises(ConfigError, match="cannot listen"):
        SandboxServer(platform, port=busy.port, token=TOKEN)


def test_server_url_and_stop_is_idempotent(platform: SandboxPlatform) -> None:
    server = SandboxServer(platform, token=TOKEN)
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    server.stop()  # never started: must not hang
    server.stop()
    with SandboxServer(platform, token=TOKEN) as running:
        assert Client(running).call("GET", "/v1/health").status == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_app_routes_without_a_raw_uri_too(platform: SandboxPlatform) -> None:
    """Under a WSGI server that gives only the decoded PATH_INFO, routing still works."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Response

    from transfer_runner.platforms.http.server import build_app

    app = build_app(platform, token=TOKEN, faults=None)
    cases = [("/v1/tickets/T-5002", 200, b'"T-5002"'), ("/v1/tickets/T 9", 404, b"T 9 does")]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path, status, needle in cases:
        environ = EnvironBuilder(path=path, method="GET", headers=auth).get_environ()
        for raw in ("RAW_URI", "REQUEST_URI"):
            environ.pop(raw, None)
        response = Response.from_app(app, environ)
        assert response.status_code == status, response.get_data()
        assert needle in response.get_data()


def test_stop_after_an_interrupt_in_the_serve_loop_returns(
    platform: SandboxPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM right after start-up (CI saw it): the interrupt lands in the server's event loop,
    and stop() afterwards must neither wait for that loop nor leave the port open."""
    from transfer_runner.platforms.http import serving

    server = SandboxServer(platform, token=TOKEN)

    def interrupted(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(serving.wasyncore, "loop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        server.serve_forever()
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=30)  # the failure is a hang: a bound turns it into a failed assert
    assert not stopper.is_alive(), "stop() waits for a serve loop that no longer runs"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_stop_of_a_server_never_started_closes_its_port(platform: SandboxPlatform) -> None:
    server = SandboxServer(platform, token=TOKEN)
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_connections_are_kept_alive_between_requests(
    start: Callable[..., SandboxServer],
) -> None:
    """Calls on one connection reuse it: no new TCP connection (and thread) per request."""
    import http.client

    server = start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        ports = set()
        for _ in range(5):
            conn.request("GET", "/v1/tickets/T-5002", headers={"Authorization": f"Bearer {TOKEN}"})
            reply = conn.getresponse()
            assert reply.status == 200 and b"T-5002" in reply.read()
            assert reply.getheader("Connection", "").lower() != "close"
            assert conn.sock is not None
            ports.add(conn.sock.getsockname()[1])
        assert len(ports) == 1
    finally:
        conn.close()


def test_subscription_quote_and_create_check_their_input(client: Client) -> None:
    base = "/v1/accounts/R-301/subscription-quote?users=40&domains=2&services=spamstopshere"
    start = cut_over_day()
    quote = client.call("GET", base + f"&start={start}")
    assert quote.status == 200 and quote.json()["period_end"] == str(next_first(start))
    for query, word in (
        ("&start=5.12.2026", "'start'"),
        (f"&start={start}&users=x", "'users'"),
    ):
        reply = client.call("GET", base.replace("users=40&", "") + query)
        assert reply.status == 400 and word in reply.json()["detail"], reply.json()
    body = {"users": 0, "domains": 1, "services": ["spamstopshere"], "start": str(start)}
    zero = client.call("POST", "/v1/accounts/C-1001/subscription", json_body=body, key="k-s")
    assert zero.status == 400 and "users" in zero.json()["detail"]
    body["users"] = 2.0  # JSON's one number type: a whole float is the integer
    direct = client.call("POST", "/v1/accounts/C-1001/subscription", json_body=body, key="k-t")
    assert direct.status == 409 and "not resold" in direct.json()["detail"]
