"""The HTTP transport against a scripted stdlib server on loopback: retries, errors, secrets."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from transfer_runner.errors import (
    AccountCancelled,
    ConfigError,
    Conflict,
    NotFound,
    PlatformError,
)
from transfer_runner.platforms.http.transport import (
    Endpoint,
    Transport,
    check_base_url,
    parse_retry_after,
)
from transfer_runner.retries import RetryPolicy

TOKEN = "tok-Very-Secret-4711"
GET_ACCOUNT = Endpoint("get_account", "GET", "/v1/accounts/{account_id}")
CREATE = Endpoint("create_account", "POST", "/v1/accounts")
CANCEL = Endpoint("cancel_account", "POST", "/v1/accounts/{account_id}/cancel")


# -- a scripted server -------------------------------------------------------------------------
@dataclass
class Reply:
    """One scripted reply: a status with a JSON body, or `reset` (drop the connection)."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0
    raw: bytes | None = None


def problem(status: int, slug: str, detail: str, **extra: Any) -> Reply:
    body = {"type": f"/problems/{slug}", "title": slug.replace("-", " "), "status": status}
    return Reply(status, {**body, "detail": detail, **extra}, {"Content-Type": "application/json"})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Script:
    """Replies in order; the last one repeats. Records every request received."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def next(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0] if self.replies else Reply()


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = script.next(Seen(self.command, self.path, dict(self.headers.items()), body))
            if reply.delay:
                time.sleep(reply.delay)
            if reply.reset:
                self.close_connection = True
                return
            data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected here


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = QuietServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


class TopRng(random.Random):
    """Always the top of the jitter range, so backoff sleeps are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def sleeps() -> list[float]:
    return []


def transport(url: str, sleeps: list[float], **kw: Any) -> Transport:
    kw.setdefault("rng", TopRng())
    kw.setdefault("timeout", 5.0)
    return Transport(url, token=TOKEN, sleep=sleeps.append, **kw)


# -- retries and backoff -----------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_reads_are_retried_on_transient_statuses(server, sleeps, status) -> None:
    url, script = server
    script.replies = [problem(status, "unavailable", "busy")] * 2 + [Reply(200, {"id": "C-1"})]
    response = transport(url, sleeps).request(GET_ACCOUNT, {"account_id": "C-1"})
    assert response.json("x") == {"id": "C-1"}
    assert len(script.seen) == 3
    assert sleeps == [0.2, 0.4]


def test_backoff_doubles_up_to_the_cap_and_then_gives_up(server, sleeps) -> None:
    url, script = server
    script.replies = [problem(503, "unavailable", "down for maintenance")]
    policy = RetryPolicy(attempts=9, base_delay_s=0.2, max_delay_s=10.0)
    with pytest.raises(PlatformError) as caught:
        transport(url, sleeps, policy=policy).request(GET_ACCOUNT, {"account_id": "C-1"})
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    assert len(script.seen) == 9
    error = caught.value
    assert error.status == 503 and type(error) is PlatformError
    assert "gave up after 9 attempts" in str(error)
    assert "down for maintenance" in str(error)
    assert "get_account (GET /v1/accounts/{account_id})" in str(error)


def test_default_policy_makes_six_attempts_with_full_jitter(server, sleeps) -> None:
    url, script = server
    script.replies = [problem(502, "unavailable", "bad gateway")]
    with pytest.raises(PlatformError, match="gave up after 6 attempts"):
        transport(url, sleeps, rng=random.Random(7)).request(GET_ACCOUNT, {"account_id": "C"})
    assert len(script.seen) == 6 and len(sleeps) == 5
    assert all(0 <= s <= 0.2 * 2**n for n, s in enumerate(sleeps))
    assert len(set(sleeps)) == 5  # jittered, not a fixed ladder


def test_retry_after_seconds_is_honoured(server, sleeps) -> None:
    url, script = server
    limited = problem(429, "rate-limited", "slow down")
    limited.headers["Retry-After"] = "3"
    script.replies = [limited, Reply(200, {})]
    transport(url, sleeps).request(GET_ACCOUNT, {"account_id": "C-1"})
    assert sleeps == [3.0]


def test_retry_after_http_date_is_honoured_and_capped(server, sleeps) -> None:
    url, script = server
    now = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC).timestamp()
    soon = problem(503, "unavailable", "later")
    soon.headers["Retry-After"] = "Sun, 29 Nov 2026 06:00:07 GMT"
    never = problem(429, "rate-limited", "much later")
    never.headers["Retry-After"] = "86400"
    script.replies = [soon, never, Reply(200, {})]
    transport(url, sleeps, clock=lambda: now, max_retry_after_s=30.0).request(
        GET_ACCOUNT, {"account_id": "C-1"}
    )
    assert sleeps == [7.0, 30.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("Sun, 29 Nov 2026 06:01:00 GMT", 60.0),
        ("Sun, 29 Nov 2026 05:00:00 GMT", 0.0),  # in the past: no wait
        ("Sunday, 29-Nov-26 06:00:30 GMT", 30.0),  # RFC 850 form
        ("soon", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now) == expected


def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=10.0)
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.2 * 2 ** (attempt - 1))
        values = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling * 0.8 and min(values) < ceiling * 0.2


def test_at_least_one_attempt_is_required() -> None:
    with pytest.raises(ConfigError, match="at least 1 attempt"):
        RetryPolicy(attempts=0)


# -- writes: only keyed ones are retried -------------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    [problem(503, "unavailable", "busy"), problem(429, "rate-limited", "slow"), Reply(reset=True)],
)
def test_a_write_without_a_key_is_never_retried(server, sleeps, reply) -> None:
    url, script = server
    script.replies = [reply, Reply(201, {"id": "A-1"})]
    with pytest.raises(PlatformError) as caught:
        transport(url, sleeps).request(CREATE, json_body={"name": "x"})
    assert len(script.seen) == 1 and sleeps == []
    assert "create_account (POST /v1/accounts)" in str(caught.value)
    if reply.reset:
        assert "may or may not have happened" in str(caught.value)
        assert caught.value.status is None
    else:
        assert caught.value.status == reply.status


@pytest.mark.parametrize(
    "first",
    [
        Reply(reset=True),  # dropped before or after the write: the key replays either way
        problem(500, "internal", "oops"),
        problem(502, "unavailable", "gateway"),
        problem(503, "unavailable", "busy"),
        problem(504, "unavailable", "gateway timeout"),
        problem(429, "rate-limited", "slow"),
    ],
)
def test_a_keyed_write_is_retried_with_the_same_key_and_body(server, sleeps, first) -> None:
    url, script = server
    script.replies = [first, Reply(201, {"id": "A-1"})]
    response = transport(url, sleeps).request(
        CANCEL, {"account_id": "C-1"}, json_body={}, idempotency_key="cancel:acme"
    )
    assert response.status == 201
    assert [s.headers["Idempotency-Key"] for s in script.seen] == ["cancel:acme"] * 2
    assert script.seen[0].body == script.seen[1].body == b"{}"
    assert script.seen[0].path == "/v1/accounts/C-1/cancel"


def test_a_keyed_write_gives_up_naming_the_last_cause_and_the_attempts(server, sleeps) -> None:
    url, script = server
    script.replies = [Reply(reset=True)]
    with pytest.raises(PlatformError) as caught:
        transport(url, sleeps, policy=RetryPolicy(attempts=3)).request(
            CREATE, json_body={}, idempotency_key="k"
        )
    message = str(caught.value)
    assert "gave up after 3 attempts; last: connection error" in message
    assert len(script.seen) == 3


def test_a_read_timeout_is_retried(server, sleeps) -> None:
    url, script = server
    script.replies = [Reply(200, {"slow": True}, delay=0.6), Reply(200, {"slow": False})]
    response = transport(url, sleeps, timeout=0.2).request(GET_ACCOUNT, {"account_id": "C-1"})
    assert response.json("x") == {"slow": False}
    assert len(sleeps) == 1


def test_connection_refused_is_retried_then_reported(sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nobody listens
    with pytest.raises(PlatformError) as caught:
        transport(f"http://127.0.0.1:{port}", sleeps, policy=RetryPolicy(attempts=2)).request(
            GET_ACCOUNT, {"account_id": "C-1"}
        )
    assert "gave up after 2 attempts; last: connection error" in str(caught.value)
    assert "object at 0x" not in str(caught.value)


# -- error mapping -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "kind", "status", "text"),
    [
        (problem(404, "not-found", "account C-9 does not exist"), NotFound, 404, "C-9"),
        (problem(409, "conflict", "domain a.com is on B-1"), Conflict, 409, "a.com is on B-1"),
        (problem(409, "idempotency-key-reused", "key k reused"), Conflict, 409, "k reused"),
        (
            problem(409, "account-cancelled", "cancelled", account="C-1001"),
            AccountCancelled,
            409,
            "account C-1001 is cancelled",
        ),
        (problem(400, "bad-request", "limit must be 1..10000"), PlatformError, 400, "limit"),
        (problem(401, "unauthorized", "bad token"), PlatformError, 401, "bad token"),
        (problem(405, "method-not-allowed", "no"), PlatformError, 405, "no"),
        (Reply(404, raw=b"<html>Not Found</html>"), PlatformError, 404, "<html>Not Found"),
        (
            Reply(302, raw=b"", headers={"Location": "http://elsewhere/"}),
            PlatformError,
            302,
            "redirect to http://elsewhere/",
        ),
    ],
)
def test_problems_map_to_the_error_hierarchy(server, sleeps, reply, kind, status, text) -> None:
    url, script = server
    script.replies = [reply]
    with pytest.raises(PlatformError) as caught:
        transport(url, sleeps).request(CANCEL, {"account_id": "C-1"}, idempotency_key="k")
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert text in str(caught.value)
    assert "cancel_account (POST /v1/accounts/{account_id}/cancel)" in str(caught.value)
    assert len(script.seen) == 1 and sleeps == []


def test_problem_title_and_detail_both_appear(server, sleeps) -> None:
    url, script = server
    script.replies = [
        Reply(400, {"type": "/problems/bad-request", "title": "Bad Request", "detail": "no body"})
    ]
    with pytest.raises(PlatformError, match=r"\[400\]: Bad Request: no body"):
        transport(url, sleeps).request(GET_ACCOUNT, {"account_id": "C-1"})


def test_a_non_json_success_body_is_a_clear_error(server, sleeps) -> None:
    url, script = server
    script.replies = [Reply(200, raw=b"<html>hello</html>")]
    response = transport(url, sleeps).request(GET_ACCOUNT, {"account_id": "C-1"})
    with pytest.raises(PlatformError, match="not JSON.*<html>hello"):
        response.json("get_account")


# -- paths, queries and base URLs --------------------------------------------------------------
def test_path_segments_and_queries_are_percent_encoded(server, sleeps) -> None:
    url, script = server
    endpoint = Endpoint("fetch_message", "GET", "/v1/accounts/{a}/stores/{s}/messages/{m}")
    transport(url, sleeps).request(
        endpoint,
        {"a": "C 1/2", "s": "archive", "m": "<a+b@x.example>"},
        query={"cursor": "q&r=s", "limit": 5, "skip": None},
    )
    assert script.seen[0].path == (
        "/v1/accounts/C%201%2F2/stores/archive/messages/%3Ca%2Bb%40x.example%3E"
        "?cursor=q%26r%3Ds&limit=5"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://panel.example/api/", "https://panel.example/api"),
    ],
)
def test_good_base_urls(url: str, expected: str) -> None:
    assert check_base_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://admin:hunter2@panel.example", "credentials in the URL are refused"),
        ("https://hunter2@panel.example", "credentials in the URL are refused"),
        ("https://panel.example/?token=hunter2", "query string"),
        ("ftp://panel.example", "scheme must be http or https"),
        ("http://", "no host"),
        ("http://panel.example:99999", "port"),
    ],
)
def test_bad_base_urls_are_refused_without_echoing_secrets(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        check_base_url(url)
    assert "hunter2" not in str(caught.value)


def test_a_multi_line_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="one line"):
        Transport("http://127.0.0.1:1", token="abc\r\nX-Evil: 1")


# -- the token never leaks ---------------------------------------------------------------------
def test_the_token_is_sent_but_never_logged_or_shown(server, sleeps, caplog) -> None:
    url, script = server
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "transfer_runner"):
        caplog.set_level(logging.DEBUG, logger=name)
    echo = problem(400, "bad-request", f"bad header Authorization: Bearer {TOKEN}")
    script.replies = [Reply(reset=True), problem(503, "unavailable", "x"), Reply(200, {}), echo]
    messages: list[str] = []
    client = transport(url, sleeps)
    client.request(GET_ACCOUNT, {"account_id": "C-1"})
    for call in (
        lambda: client.request(GET_ACCOUNT, {"account_id": "C-2"}),
        lambda: client.request(CREATE, json_body={}),
    ):
        with pytest.raises(PlatformError) as caught:
            call()
        messages += [str(caught.value), repr(caught.value), caught.value.detail]
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in script.seen)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    shown = caplog.text + "\n".join(messages) + repr(client) + repr(vars(client))
    assert TOKEN not in shown
    assert "****" in messages[0]
