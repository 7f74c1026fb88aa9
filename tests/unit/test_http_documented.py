"""The HTTP adapter calls only what schemas/platform-api.yaml documents.

A WSGI middleware around `build_app`'s application records every request as it arrives (method,
raw percent-encoded path, query parameter names). `HttpPlatform` is driven through every method
of the `Platform` Protocol, and a whole `apply` (plus a re-check, a plan and an online
validation) runs over HTTP; each recorded request must match an operation of the contract: a
path template against the raw path, a method that template has, query names it declares.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import boto3
import pytest
import yaml
from moto import mock_aws

from tests.builders import FIXTURE, GLOBEX, cut_over_day, manifest
from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner import commands
from transfer_runner.config import Settings
from transfer_runner.platforms.base import NewAccount, NewSubscription, Platform
from transfer_runner.platforms.http.client import TOKEN_ENV, HttpPlatform
from transfer_runner.platforms.http.server import MAX_MESSAGE_BYTES, build_app
from transfer_runner.platforms.http.serving import KeepAliveServer
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "schemas" / "platform-api.yaml"
TOKEN = "documented-token-7c1d"
BUCKET = "exports"
RAW = b"From: a@acme.com\r\nSubject: kept\r\nDate: Sun, 01 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class Operation:
    """One operation of the contract, its path template as a regex over raw paths."""

    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    query: frozenset[str]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str  # raw, still percent-encoded
    query: frozenset[str]


def _operations() -> list[Operation]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    found = []
    for template, item in spec["paths"].items():
        regex = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{\w+\})", template)
        )
        for method in METHODS:
            if method not in item:
                continue
            declared = [*item.get("parameters", []), *item[method].get("parameters", [])]
            params = [resolve(p) for p in declared]
            query = frozenset(p["name"] for p in params if p["in"] == "query")
            op_id = item[method]["operationId"]
            found.append(Operation(op_id, method.upper(), template, re.compile(regex), query))
    return found


OPERATIONS = _operations()


def operation_of(request: Seen) -> Operation | None:
    """The documented operation `request` is, or None."""
    for op in OPERATIONS:
        if op.method == request.method and op.pattern.fullmatch(request.path):
            return op if request.query <= op.query else None
    return None


def operation_id(request: Seen) -> str | None:
    """The operationId of the documented operation `request` is, or None."""
    found = operation_of(request)
    return found.operation_id if found else None


def undocumented(requests: Iterable[Seen]) -> list[Seen]:
    """The requests that match no operation of the contract."""
    return [r for r in requests if operation_of(r) is None]


class Recorder:
    """WSGI middleware: note each request, then hand it to the application."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"])
        path, _, query = raw.partition("?")
        names = frozenset(k for k, _ in parse_qsl(query, keep_blank_values=True))
        with self._lock:
            self.seen.append(Seen(environ["REQUEST_METHOD"], path, names))
        return self.app(environ, start_response)

    def take(self) -> list[Seen]:
        """The requests seen since the last call."""
        with self._lock:
            seen, self.seen = self.seen, []
        return seen


@dataclass
class Served:
    url: str
    recorder: Recorder
    sandbox: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The sandbox app of the functional fixture behind a recorder, on a free loopback port."""
    sandbox = make_sandbox(tmp_path, FIXTURE)
    with SandboxPlatform(sandbox) as platform:
        app = build_app(platform, token=TOKEN, faults=None)
        recorder = Recorder(app)
        listener = socket.create_server(("127.0.0.1", 0))
        server = KeepAliveServer(recorder, listener, max_body_bytes=MAX_MESSAGE_BYTES)
        thread = threading.Thread(target=server.run)
        thread.start()
        try:
            yield Served(f"http://127.0.0.1:{server.address[1]}", recorder, sandbox)
        finally:
            server.stop()
            thread.join(timeout=10)


# -- the matcher itself ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/v1/tickets/%3CT-1%40x%2By%3E", (), "get_ticket"),
        ("GET", "/v1/accounts", ("domain",), "find_account_by_domain"),
        ("POST", "/v1/accounts", (), "create_account"),
        ("DELETE", "/v1/accounts/A-1/domains/acme.com", (), "detach_domain"),
        ("GET", "/v1/accounts/A-1/stores/archive/messages", ("cursor", "limit"), "list_messages"),
        ("PUT", "/v1/accounts/A-1/stores/archive/messages/m-1", (), "import_message"),
        ("GET", "/v1/accounts/A-1/domains", (), None),  # no such path
        ("PATCH", "/v1/accounts/A-1", (), None),  # no such method
        ("GET", "/v1/accounts/A-1/stores/archive/messages/a/b", (), None),  # unencoded slash
        ("GET", "/v1/accounts", ("domain", "type"), None),  # undeclared query parameter
        ("GET", "/v2/health", (), None),
    ],
)
def test_the_matcher_knows_documented_from_undocumented(
    method: str, path: str, query: tuple[str, ...], expected: str | None
) -> None:
    assert operation_id(Seen(method, path, frozenset(query))) == expected


def test_the_contract_has_an_operation_per_protocol_method() -> None:
    protocol = {n for n in vars(Platform) if not n.startswith("_")} - {"close"}
    assert {op.operation_id for op in OPERATIONS} == protocol | {"health"}


# -- every Protocol method ------------------------------------------------------------------------
def _drive(platform: HttpPlatform) -> Iterator[tuple[str, Any]]:
    """Call every Protocol method (and `health`), yielding (method name, result) after each."""
    yield "health", platform.health()
    yield "get_ticket", platform.get_ticket("T-5001")
    yield "get_ticket", platform.get_ticket("<T-5001@x+y/z>")
    yield "add_ticket_comment", platform.add_ticket_comment("T-5001", "hello", "k-comment")
    yield "get_account", platform.get_account("C-1001")
    yield "get_account", platform.get_account("no such/account")
    yield "find_account_by_domain", platform.find_account_by_domain("acme.com")
    spec = NewAccount("R-301", "Acme Inc", "gdi.acme.com", 40, 2, ("spamstopshere",))
    new = platform.create_account(spec, "k-create")
    yield "create_account", new
    page = platform.list_messages("C-1001", "archive", None, 5)
    yield "list_messages", page
    yield "list_messages", platform.list_messages("C-1001", "archive", page.next_cursor, 5)
    yield "count_messages", platform.count_messages("C-1001", "quarantine")
    raw = platform.fetch_message("C-1001", "archive", page.messages[0].id)
    yield "fetch_message", raw
    ids = [info.id for info in page.messages[:3]] + ["no-such-message"]
    yield "fetch_messages", platform.fetch_messages("C-1001", "archive", ids)
    yield "import_message", platform.import_message(new.id, "archive", "m-1", RAW, "k-import")
    yield "get_subscription", platform.get_subscription("C-1001")
    subscription = NewSubscription(40, 2, ("spamstopshere", "restoremail"), cut_over_day())
    yield "quote_subscription", platform.quote_subscription("R-301", subscription)
    yield "create_subscription", platform.create_subscription(new.id, subscription, "k-sub")
    yield "find_credit", platform.find_credit("k-credit")
    yield "credit", platform.credit("C-1001", Decimal("52.00"), "pro-ration", "k-credit")
    yield "find_charge", platform.find_charge("k-fee")
    yield "charge", platform.charge("R-301", Decimal("25.00"), "transfer fee", "k-fee")
    yield "cancel_account", platform.cancel_account("C-1001", "k-cancel")
    yield "move_domain", platform.move_domain("acme.com", "C-1001", new.id, "k-move")
    yield "detach_domain", platform.detach_domain(new.id, "gdi.acme.com", "k-detach")
    yield "attach_domain", platform.attach_domain(new.id, "gdi.acme.com", "k-attach")
    platform.close()
    yield "close", None


def test_every_protocol_method_calls_its_documented_operation(served: Served) -> None:
    platform = HttpPlatform(served.url, token=TOKEN)
    driven: set[str] = set()
    for name, _ in _drive(platform):
        requests = served.recorder.take()
        driven.add(name)
        if name == "close":
            assert requests == []
            continue
        assert requests, name
        assert [operation_id(r) for r in requests] == [name] * len(requests), requests
    assert driven >= {n for n in vars(Platform) if not n.startswith("_")}


# -- a whole apply --------------------------------------------------------------------------------
@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto S3 with the export bucket; yields the export URL."""
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/runs"


def test_a_whole_apply_over_http_calls_only_documented_operations(
    served: Served, exports: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    (transfers / "acme-com.yml").write_text(manifest())
    (transfers / "globex-io.yml").write_text(manifest("globex-io", **GLOBEX))
    settings = Settings(
        platform=served.url,
        state=f"sqlite:{tmp_path / 'state.db'}",
        export_to=exports,
        part_size_mib=1,
    )
    paths = [str(transfers)]

    assert commands.validate(settings, commands.Selection(paths), online=True).valid
    first = commands.apply(settings, commands.Selection(paths))
    assert [t.status for t in first.transfers] == ["succeeded", "succeeded"], first
    again = commands.apply(settings, commands.Selection(paths), recheck=True)
    assert [t.status for t in again.transfers] == ["unchanged", "unchanged"], again
    commands.plan(settings, commands.Selection(paths), recheck=True)

    requests = served.recorder.take()
    assert undocumented(requests) == []
    used = {operation_id(r) for r in requests}
    assert used >= {
        "get_ticket",
        "create_account",
        "list_messages",
        "fetch_messages",
        "import_message",
        "cancel_account",
        "move_domain",
        "detach_domain",
        "credit",
        "charge",
        "find_charge",
        "add_ticket_comment",
    }, used
