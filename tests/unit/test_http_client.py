"""`HttpPlatform` against the real `sandbox serve` app on loopback, and platform plug-ins.

The adapter must be indistinguishable from calling `SandboxPlatform` directly: same results,
same errors. Under injected faults every write still takes effect exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import transfer_runner.platforms as platforms
from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner.errors import (
    AccountCancelled,
    ConfigError,
    Conflict,
    NotFound,
    PlatformError,
)
from transfer_runner.platforms.base import NewAccount, Platform
from transfer_runner.platforms.http.client import HttpPlatform, open_http_platform
from transfer_runner.platforms.http.faults import FaultPlan
from transfer_runner.platforms.http.server import SandboxServer
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

TOKEN = "sandbox-token-0123456789"
RAW = b"From: a@acme.com\r\nSubject: kept\r\nDate: Sun, 01 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n"
Call = Callable[..., Any]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path)


def serve(world: Path, faults: FaultPlan | None = None) -> tuple[SandboxServer, SandboxPlatform]:
    backend = SandboxPlatform(world)
    return SandboxServer(backend, token=TOKEN, faults=faults).start(), backend


@pytest.fixture
def server(world: Path) -> Iterator[SandboxServer]:
    running, backend = serve(world)
    try:
        yield running
    finally:
        running.stop()
        backend.close()


@pytest.fixture
def direct(world: Path) -> Iterator[SandboxPlatform]:
    with SandboxPlatform(world) as platform:
        yield platform


@pytest.fixture
def http(server: SandboxServer) -> Iterator[HttpPlatform]:
    with HttpPlatform(server.url, token=TOKEN, sleep=lambda s: None) as platform:
        yield platform


def both(http: HttpPlatform, direct: SandboxPlatform) -> Call:
    """Call a method through HTTP, then directly with the same arguments; they must agree."""

    def call(method: str, *args: Any) -> Any:
        over_http = getattr(http, method)(*args)
        assert getattr(direct, method)(*args) == over_http, method
        return over_http

    return call


# -- same results as the sandbox ---------------------------------------------------------------
READS = [
    ("get_ticket", ("T-5001",)),
    ("get_ticket", ("T-5002",)),  # closed, with comments
    ("get_ticket", ("T-404",)),
    ("get_ticket", ("T-5001/../T-5002",)),  # a slash stays inside the segment
    ("get_ticket", ("<T-5001@x+y>",)),
    ("get_account", ("C-1001",)),
    ("get_account", ("A-1",)),
    ("get_account", ("C-1002",)),
    ("get_account", ("nope",)),
    ("find_account_by_domain", ("acme.com",)),
    ("find_account_by_domain", ("ACME.net",)),
    ("find_account_by_domain", ("initech.example",)),
    ("find_account_by_domain", ("free.example",)),
    ("find_account_by_domain", ("not a domain&x=1",)),
    ("list_messages", ("C-1001", "quarantine")),
    ("list_messages", ("C-1001", "archive", None, 10)),
    ("list_messages", ("R-301", "archive")),
    ("count_messages", ("C-1001", "quarantine")),
    ("count_messages", ("C-1001", "archive")),
    ("count_messages", ("R-301", "quarantine")),
    ("get_subscription", ("C-1001",)),
    ("get_subscription", ("R-301",)),
    ("get_subscription", ("nope",)),
    ("find_credit", ("no-such-key",)),
    ("find_charge", ("no-such-key",)),
]


@pytest.mark.parametrize(("method", "args"), READS, ids=[f"{m}{a}" for m, a in READS])
def test_reads_match_the_sandbox(http, direct, method: str, args: tuple[Any, ...]) -> None:
    both(http, direct)(method, *args)


def test_the_adapter_implements_the_protocol(http) -> None:
    assert isinstance(http, Platform)
    assert http.health() is True
    assert TOKEN not in repr(http)


def test_paging_and_fetching_every_message_match_the_sandbox(http, direct) -> None:
    call = both(http, direct)
    for store in ("quarantine", "archive"):
        cursor, seen = None, []
        while True:
            page = call("list_messages", "C-1001", store, cursor, 7)
            seen += [m.id for m in page.messages]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == call("count_messages", "C-1001", store)[0] > 7
        for message_id in seen:
            raw = call("fetch_message", "C-1001", store, message_id)
            assert isinstance(raw, bytes) and raw


def transfer(call: Call) -> list[Any]:
    """Every write of a transfer, in the playbook's order, through `call(method, *args)`."""
    spec = NewAccount("R-301", "Acme Inc", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))
    account = call("create_account", spec, "acme:account")
    new = account.id
    return [
        account,
        call("import_message", new, "quarantine", "kept-1", RAW, "acme:import:1"),
        call("import_message", new, "quarantine", "kept-1", RAW, "acme:import:1-again"),
        call("cancel_account", "C-1001", "acme:cancel"),
        call("move_domain", "acme.com", "C-1001", new, "acme:move:acme.com"),
        call("detach_domain", "C-1001", "acme.net", "acme:detach:acme.net"),
        call("attach_domain", new, "acme.net", "acme:attach:acme.net"),
        call("detach_domain", new, "gdi.acme.com", "acme:detach:temporary"),
        call("credit", "C-1001", Decimal("52.00"), "pro-ration", "prorate:acme"),
        call("charge", "R-301", Decimal("25.00"), "transfer fee", "transfer-fee:acme"),
        call("add_ticket_comment", "T-5001", "moved to Northwind IT", "acme:comment:customer"),
        call("add_ticket_comment", "T-5002", "acme.com is yours", "acme:comment:reseller"),
    ]


TRANSFER_WRITES = 12


def test_writes_match_a_direct_replay_of_the_same_key(http, direct) -> None:
    call = both(http, direct)  # the direct call replays the HTTP write's stored first result
    results = transfer(call)
    assert results[1] is True and results[2] is False
    assert results[3].status == "cancelled"
    assert call("get_account", results[0].id).domains == ("acme.com", "acme.net")
    assert call("find_credit", "prorate:acme") == results[8]
    assert call("find_charge", "transfer-fee:acme").amount == Decimal("25.00")
    assert call("fetch_message", results[0].id, "quarantine", "kept-1") == RAW
    assert [c.body for c in call("get_ticket", "T-5002").comments][-1] == "acme.com is yours"
    assert http.writes.count == TRANSFER_WRITES
    assert http.writes.by_operation["import_message"] == 2
    assert direct.write_calls() == 2 * TRANSFER_WRITES


ERRORS = [
    (AccountCancelled, "attach_domain", ("C-1002", "new.example", "e:1")),
    (Conflict, "attach_domain", ("A-1", "acme.com", "e:2")),
    (NotFound, "detach_domain", ("A-1", "nowhere.example", "e:3")),
    (
        Conflict,
        "create_account",
        (NewAccount("C-1001", "X", "x.example", 1, 1, ("encryption",)), "e:4"),
    ),
    (NotFound, "add_ticket_comment", ("T-404", "hello", "e:5")),
    (Conflict, "move_domain", ("acme.com", "C-1001", "C-1001", "e:6")),
    (PlatformError, "import_message", ("A-1", "archive", "../etc", RAW, "e:7")),
    (PlatformError, "charge", ("R-301", Decimal("1.005"), "fee", "e:8")),
    (PlatformError, "list_messages", ("C-1001", "inbox")),
    (PlatformError, "list_messages", ("C-1001", "archive", None, 0)),
    (NotFound, "list_messages", ("C-404", "archive")),
    (NotFound, "count_messages", ("C-404", "archive")),
    (NotFound, "fetch_message", ("C-1001", "archive", "no-such-message")),
]


@pytest.mark.parametrize(("kind", "method", "args"), ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_match_the_sandbox(http, direct, kind, method: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(PlatformError) as over_http:
        getattr(http, method)(*args)
    with pytest.raises(PlatformError) as at_source:
        getattr(direct, method)(*args)
    assert type(over_http.value) is type(at_source.value) is kind
    assert over_http.value.status == at_source.value.status
    assert f"{method} (" in str(over_http.value)  # names the endpoint


def test_a_key_reused_for_another_request_is_a_conflict(http) -> None:
    http.charge("R-301", Decimal("25.00"), "fee", "fee:once")
    with pytest.raises(Conflict, match="already used"):
        http.charge("R-301", Decimal("26.00"), "fee", "fee:once")


def test_a_wrong_or_missing_token_is_refused(server) -> None:
    for token in (None, "wrong-token"):
        with HttpPlatform(server.url, token=token) as stranger:
            assert stranger.health() is True  # health needs no auth
            with pytest.raises(PlatformError) as caught:
                stranger.get_account("C-1001")
            assert caught.value.status == 401
            assert "TRANSFER_RUNNER_PLATFORM_TOKEN" in str(caught.value)
            assert "wrong-token" not in str(caught.value)


# -- faults: every write exactly once ----------------------------------------------------------
def _effects(world: Path) -> dict[str, Any]:
    """The sandbox's state without times and the audit counter."""
    state = dump_sandbox(world)
    state.pop("writes")
    for section in ("tickets", "charges", "credits"):
        for row in state[section]:
            row.pop("created_at", None)
    return state


@pytest.mark.parametrize("kinds", [("429",), ("503",), ("reset",), ("lost-ack",), None])
def test_under_faults_every_write_happens_exactly_once(tmp_path: Path, kinds, caplog) -> None:
    caplog.set_level(logging.INFO, logger="transfer_runner.platforms.http")
    clean = make_sandbox(tmp_path, name="clean.db")
    with SandboxPlatform(clean) as platform:
        transfer(lambda method, *args: getattr(platform, method)(*args))

    faulty = make_sandbox(tmp_path)
    plan = FaultPlan(fail_rate=0.3, seed=5, **({"kinds": kinds} if kinds else {}))
    running, backend = serve(faulty, plan)
    sleeps: list[float] = []
    try:
        with HttpPlatform(running.url, token=TOKEN, max_attempts=20, sleep=sleeps.append) as http:
            results = transfer(lambda method, *args: getattr(http, method)(*args))
            written = http.writes.count
    finally:
        running.stop()
        backend.close()

    assert results[1] is True and results[2] is False
    assert _effects(faulty) == _effects(clean)  # one account, one credit, one charge, ...
    assert sum(plan.injected.values()) >= 3, plan.injected  # the faults did happen
    assert len(sleeps) == sum(plan.injected.values())  # each one was retried
    assert any("retrying" in r.getMessage() for r in caplog.records)
    if "429" in plan.injected:
        assert 1.0 in sleeps  # the server's Retry-After
    # every write reached the sandbox once, plus one replay per reply lost after the write
    with SandboxPlatform(faulty) as check:
        assert check.write_calls() == written + plan.injected.get("lost-ack", 0)
    assert written == TRANSFER_WRITES


# -- opening from a URL and the environment ----------------------------------------------------
def test_open_platform_serves_http_urls_built_in(server, monkeypatch) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_TOKEN", TOKEN)
    monkeypatch.setattr(platforms, "entry_points", _no_entry_points)
    platform = platforms.open_platform(server.url + "/")
    try:
        assert isinstance(platform, HttpPlatform)
        assert platform.get_account("R-301").type == "reseller"
    finally:
        platform.close()


def _no_entry_points(**kwargs: Any) -> list[EntryPoint]:
    raise AssertionError("http(s) must not go through the entry points")


def test_without_the_token_variable_the_server_refuses(server, monkeypatch) -> None:
    monkeypatch.delenv("TRANSFER_RUNNER_PLATFORM_TOKEN", raising=False)
    with open_http_platform(server.url) as platform, pytest.raises(PlatformError) as caught:
        platform.get_ticket("T-5001")
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("env", "attempts", "timeout"),
    [
        ({}, 6, 30.0),
        ({"TRANSFER_RUNNER_PLATFORM_RETRIES": "0"}, 1, 30.0),
        (
            {"TRANSFER_RUNNER_PLATFORM_RETRIES": "9", "TRANSFER_RUNNER_PLATFORM_TIMEOUT": "2.5"},
            10,
            2.5,
        ),
    ],
)
def test_timeout_and_retries_come_from_the_environment(monkeypatch, env, attempts, timeout) -> None:
    for name in ("TRANSFER_RUNNER_PLATFORM_RETRIES", "TRANSFER_RUNNER_PLATFORM_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with open_http_platform("http://127.0.0.1:9") as platform:
        assert platform.policy.attempts == attempts
        assert platform.timeout == timeout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRANSFER_RUNNER_PLATFORM_RETRIES", "-1"),
        ("TRANSFER_RUNNER_PLATFORM_RETRIES", "three"),
        ("TRANSFER_RUNNER_PLATFORM_TIMEOUT", "0"),
        ("TRANSFER_RUNNER_PLATFORM_TIMEOUT", "nan"),
    ],
)
def test_bad_environment_values_are_config_errors(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        open_http_platform("http://127.0.0.1:9")


@pytest.mark.parametrize(
    "url",
    ["https://ops:s3cret-pass@panel.example", "https://panel.example/v1?token=s3cret-pass"],
)
def test_secrets_in_the_url_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="TRANSFER_RUNNER_PLATFORM_TOKEN") as caught:
        platforms.open_platform(url)
    assert "s3cret-pass" not in str(caught.value)


def test_a_token_over_plain_http_to_a_remote_host_warns(monkeypatch, caplog) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_TOKEN", TOKEN)
    with open_http_platform("http://panel.example"), open_http_platform("http://localhost:1"):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "panel.example" in warnings[0]
    assert TOKEN not in caplog.text


# -- plug-ins ----------------------------------------------------------------------------------
class _Probe:
    opened: list[str] = []


def fake_factory(url: str) -> SandboxPlatform:
    """A plug-in factory: `fake:PATH` opens a sandbox."""
    _Probe.opened.append(url)
    return SandboxPlatform(url.partition(":")[2])


def failing_factory(url: str) -> SandboxPlatform:
    raise RuntimeError("backend exploded")


def not_a_platform(url: str) -> object:
    return object()


def _plugins(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    group = platforms.ENTRY_POINT_GROUP
    points = [EntryPoint(name="fake", value=value, group=group)]

    def entry_points(**kwargs: Any) -> list[EntryPoint]:
        assert kwargs == {"group": group}
        return points

    monkeypatch.setattr(platforms, "entry_points", entry_points)


def test_a_registered_plugin_opens_its_scheme(monkeypatch, world) -> None:
    _plugins(monkeypatch, f"{__name__}:fake_factory")
    platform = platforms.open_platform(f"fake:{world}")
    try:
        assert _Probe.opened[-1] == f"fake:{world}"
        assert platform.get_account("C-1001") is not None
    finally:
        platform.close()
    with pytest.raises(ConfigError, match="unknown platform URL scheme"):
        platforms.open_platform("other:thing")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_module_for_tests:factory", "could not be loaded: ModuleNotFoundError"),
        (f"{__name__}:no_such_factory", "could not be loaded: AttributeError"),
        (f"{__name__}:TOKEN", "is not callable"),
        (f"{__name__}:failing_factory", "failed to open the platform: RuntimeError"),
        (f"{__name__}:not_a_platform", "does not implement the Platform protocol"),
    ],
)
def test_a_broken_plugin_is_a_clear_config_error(monkeypatch, value: str, message: str) -> None:
    _plugins(monkeypatch, value)
    with pytest.raises(ConfigError, match=message) as caught:
        platforms.open_platform("fake:anything")
    assert "platform plug-in 'fake'" in str(caught.value)
