"""Sandbox fixtures: validation with located errors, `init_sandbox`, and the dump round trip."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from transfer_runner.clock import clock_from_env, resolve_relative_date
from transfer_runner.errors import ConfigError, ManifestError
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox, load_fixture, parse_size
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

FIXTURE = textwrap.dedent(
    """\
    seed: 11
    accounts:
      - id: C-1001
        type: direct
        name: Acme Inc
        domains: [acme.net, Acme.com]
        users: 40
        services: [spamstopshere, restoremail]
        billing: {price: "120.00", period_start: today-10d, period_end: "today+20d"}
        quarantine: {messages: 12, size: 2KiB}
        archive: {messages: 25, size: 1500}
      - id: C-1002
        type: direct
        name: Globex
        status: cancelled
        domains: [globex.io]
      - id: A-1
        type: resold
        name: Initech
        parent: R-301
        domains: [initech.example]
        max_domains: 3
        services: [encryption]
      - id: R-301
        type: reseller
        name: Northwind IT
      - id: R-302
        type: reseller
        name: Contoso
    tickets:
      - id: T-5001
        account: C-1001
        subject: Authorize transfer of account
        body: >-
          We, acme.com, authorize the transfer of our direct account
          to resold under Northwind IT.
        created_at: 2026-11-20T09:30:00Z
      - id: T-5002
        account: R-301
        subject: Authorize Customer Transfer
        body: We, Northwind IT, Authorize acme.com to be transferred to our account.
        status: closed
        resolution: rejected
        comments: [first, second]
    """
)


def make_sandbox(root: Path, text: str = FIXTURE, name: str = "sandbox.db") -> Path:
    """Write `text` as a fixture under `root` and create a sandbox from it."""
    fixture = root / "fixture.yml"
    fixture.write_text(text, encoding="utf-8")
    target = root / name
    init_sandbox(target, fixture, force=True)
    return target


def _day(text: str) -> str:
    """`today-10d` as the fixture resolves it: on the session's clock."""
    day = resolve_relative_date(text, clock_from_env())
    assert day is not None
    return day


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "fixture.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_fixture(path)
    return [str(d) for d in caught.value.diagnostics]


# -- the round trip ---------------------------------------------------------------------------
def test_init_then_dump_round_trip(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.yml"
    fixture.write_text(FIXTURE, encoding="utf-8")
    summary = init_sandbox(tmp_path / "s.db", fixture)
    assert summary == {
        "accounts": 5,
        "domains": 4,
        "tickets": 2,
        "comments": 2,
        "messages": 37,
        "bytes": 12 * 2048 + 25 * 1500,
    }
    dump = dump_sandbox(tmp_path / "s.db")
    json.dumps(dump)  # serialisable as is
    acme, globex, initech, northwind, _ = dump["accounts"]
    assert acme == {
        "id": "C-1001",
        "type": "direct",
        "name": "Acme Inc",
        "parent": None,
        "status": "active",
        "domains": ["acme.com", "acme.net"],
        "users": 40,
        "max_domains": 2,
        "services": ["spamstopshere", "restoremail"],
        "quarantine_messages": 12,
        "archive_messages": 25,
        "held_back_messages": 0,
        "billing": {
            "price": "120.00",
            "period_start": _day("today-10d"),
            "period_end": _day("today+20d"),
        },  # fmt: skip
    }
    assert (globex["status"], globex["max_domains"], globex["users"]) == ("cancelled", 1, 1)
    assert "billing" not in globex
    assert (initech["parent"], initech["max_domains"]) == ("R-301", 3)
    assert (northwind["domains"], northwind["max_domains"], northwind["services"]) == ([], 1, [])
    first, second = dump["tickets"]
    assert first["created_at"] == "2026-11-20T09:30:00+00:00"
    assert (first["status"], first["resolution"], first["comments"]) == ("open", None, [])
    assert (second["status"], second["resolution"]) == ("closed", "rejected")
    assert second["comments"] == ["first", "second"]
    assert (dump["charges"], dump["credits"], dump["writes"]) == ([], [], 0)


def test_dump_shows_payments_with_two_decimals(tmp_path: Path) -> None:
    path = make_sandbox(tmp_path)
    with SandboxPlatform(path) as platform:
        platform.charge("R-301", Decimal("25"), "transfer fee", "fee:1")
        platform.credit("C-1001", Decimal("52.5"), "pro-ration", "prorate:1")
    dump = dump_sandbox(path)
    [charge], [credit] = dump["charges"], dump["credits"]
    assert {k: charge[k] for k in ("id", "account", "amount", "idempotency_key")} == {
        "id": "CH-1",
        "account": "R-301",
        "amount": "25.00",
        "idempotency_key": "fee:1",
    }
    assert (credit["id"], credit["account"], credit["amount"]) == ("CR-1", "C-1001", "52.50")
    assert dump["writes"] == 2


def test_loaded_fixture_has_defaults_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "f.yml"
    path.write_text(FIXTURE, encoding="utf-8")
    fixture = load_fixture(path)
    acme = fixture["accounts"][0]
    assert acme["domains"] == ["acme.net", "acme.com"]
    assert acme["quarantine"] == {"messages": 12, "size": 2048, "body": "text"}
    assert fixture["accounts"][1]["quarantine"] == {"messages": 0, "size": 4096, "body": "text"}
    assert acme["seed"] != fixture["accounts"][1]["seed"]  # derived per account
    assert fixture["tickets"][0]["status"] == "open"


# -- refusing to overwrite ------------------------------------------------------------------
def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = make_sandbox(tmp_path)
    with SandboxPlatform(path) as platform:
        platform.charge("R-301", Decimal("25.00"), "fee", "fee:1")
    with pytest.raises(ConfigError, match="already exists"):
        init_sandbox(path, tmp_path / "fixture.yml")
    assert len(dump_sandbox(path)["charges"]) == 1
    init_sandbox(path, tmp_path / "fixture.yml", force=True)
    assert dump_sandbox(path)["charges"] == []
    assert not list(tmp_path.glob(".*.tmp"))


def test_invalid_fixture_leaves_existing_sandbox_alone(tmp_path: Path) -> None:
    path = make_sandbox(tmp_path)
    before = dump_sandbox(path)
    (tmp_path / "fixture.yml").write_text("accounts: [{id: X}]\n", encoding="utf-8")
    with pytest.raises(ManifestError):
        init_sandbox(path, tmp_path / "fixture.yml", force=True)
    assert dump_sandbox(path) == before


@pytest.mark.parametrize("content", [None, b"not a database at all, just some bytes" * 200])
def test_opening_something_that_is_not_a_sandbox_is_a_config_error(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "other.db"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError):
        SandboxPlatform(path)
    with pytest.raises(ConfigError):
        dump_sandbox(path)


def test_opening_a_sqlite_file_of_another_kind_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    with pytest.raises(ConfigError, match="schema version none"):
        SandboxPlatform(path)


# -- validation -----------------------------------------------------------------------------
_ONE = """\
accounts:
  - id: C-1
    type: direct
    name: One
    domains: [one.com]
"""

INVALID = [
    pytest.param(
        _ONE + "    colour: blue\n", "6:5: accounts[0].colour: unknown key", id="unknown-key"
    ),
    pytest.param(
        _ONE + "    billing: {price: 120.00, period_start: today-10d, period_end: today+20d}\n",
        "accounts[0].billing.price: must be a string, not the number 120.0 (put it in quotes)",
        id="price-float",
    ),
    pytest.param(
        _ONE + '    billing: {price: "12,00", period_start: today-10d, period_end: today+20d}\n',
        "accounts[0].billing.price: '12,00' must be a decimal amount",
        id="price-comma",
    ),
    pytest.param(
        _ONE + '    billing: {price: "1.00", period_start: today+20d, period_end: today-10d}\n',
        "accounts[0].billing.period_end: must be after period_start",
        id="period-backwards",
    ),
    pytest.param(
        _ONE + '    billing: {price: "1.00", period_start: 2026-02-30, period_end: 2026-03-01}\n',
        "accounts[0].billing.period_start: '2026-02-30' is not a calendar date",
        id="no-such-day",
    ),
    pytest.param(
        _ONE + "    quarantine: {messages: 5, size: 8 KB}\n",
        "accounts[0].quarantine.size: '8 KB' is not valid",
        id="size-unit",
    ),
    pytest.param(
        _ONE + "    archive: {messages: 10000001}\n",
        "accounts[0].archive.messages: 10000001 is greater than the maximum",
        id="too-many-messages",
    ),
    pytest.param(
        _ONE + "  - {id: C-1, type: direct, name: Again}\n",
        "6:10: accounts[1].id: 'C-1' is repeated (first at accounts[0])",
        id="duplicate-id",
    ),
    pytest.param(
        _ONE + "  - {id: C-2, type: direct, name: Two, domains: [ONE.com]}\n",
        "accounts[1].domains[0]: one.com is already on account C-1",
        id="domain-twice",
    ),
    pytest.param(
        _ONE + "  - {id: C-2, type: direct, name: Two, domains: [one_com]}\n",
        "accounts[1].domains[0]: 'one_com'",
        id="bad-domain",
    ),
    pytest.param(
        _ONE + "  - {id: A-1, type: resold, name: Two}\n",
        "accounts[1].type: a resold account needs a parent",
        id="resold-orphan",
    ),
    pytest.param(
        _ONE + "  - {id: A-1, type: resold, name: Two, parent: C-1}\n",
        "accounts[1].parent: parent 'C-1' must be a reseller account; it is a direct account",
        id="parent-not-reseller",
    ),
    pytest.param(
        _ONE + "tickets:\n  - {id: T-1, account: C-9, subject: s, body: b}\n",
        "tickets[0].account: account 'C-9' is not in the fixture",
        id="ticket-unknown-account",
    ),
    pytest.param(
        _ONE + "tickets:\n  - {id: T-1, account: C-1, subject: s, body: b, resolution: done}\n",
        "tickets[0].resolution: only a closed ticket has a resolution",
        id="resolution-open",
    ),
    pytest.param(
        _ONE + "tickets:\n  - {id: T-1, account: C-1, subject: s, body: b, status: pending}\n",
        "tickets[0].status: 'pending' is not one of",
        id="ticket-status",
    ),
    pytest.param(
        _ONE + "    name: Twice\n", "6:5: accounts[0].name: duplicate key 'name'", id="dup-key"
    ),
    pytest.param(
        "accounts:\n  - &a {id: C-1, type: direct, name: One}\n  - *a\n",
        "accounts[1]: YAML aliases (*a) are not allowed",
        id="alias",
    ),
    pytest.param("accounts: [\n", "YAML syntax error", id="syntax"),
    pytest.param("", "the file is empty", id="empty"),
    pytest.param("- 1\n", "must be a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_fixtures_are_located_errors(tmp_path: Path, text: str, expected: str) -> None:
    errors = _errors(tmp_path, text)
    assert any(expected in e for e in errors), errors
    assert all(e.startswith(str(tmp_path / "fixture.yml") + ":") for e in errors)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        """\
        accounts:
          - {id: C-1, type: direct, name: One, users: 0}
          - {id: C-2, type: director, name: Two}
        tickets:
          - {id: T-1, account: C-1, subject: s}
        """,
    )
    assert len(errors) == 3, errors
    assert [e.split(": ")[1] for e in errors] == [
        "accounts[0].users",
        "accounts[1].type",
        "tickets[0]",
    ]


@pytest.mark.parametrize(
    ("value", "size"),
    [(512, 512), ("512B", 512), ("8KiB", 8192), ("8 KiB", 8192), ("2MiB", 2 * 1024 * 1024)],
)
def test_parse_size(value: int | str, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["8kb", "KiB", "1.5KiB", True])
def test_parse_size_refuses_other_forms(value: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


def test_relative_dates_are_resolved_on_the_clock(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from transfer_runner.clock import FixedClock

    path = tmp_path / "fixture.yml"
    path.write_text(
        _ONE
        + '    billing: {price: "30.00", period_start: today-10d, period_end: today+20d}\n'
        + "tickets:\n  - {id: T-1, account: C-1, subject: s, body: b, created_at: now-2d}\n",
        encoding="utf-8",
    )
    clock = FixedClock(datetime(2040, 1, 5, 8, 0, tzinfo=UTC))
    fixture = load_fixture(path, clock)
    billing = fixture["accounts"][0]["billing"]
    assert (billing["period_start"], billing["period_end"]) == ("2039-12-26", "2040-01-25")
    assert fixture["tickets"][0]["created_at"] == "2040-01-03T08:00:00+00:00"


@pytest.mark.parametrize(
    ("billing", "message"),
    [
        ('{price: "1.00", period_start: today+5d, period_end: today}', "must be after"),
        ('{price: "1.00", period_start: yesterday, period_end: today}', "relative to today"),
        ('{price: "1.00", period_start: today-2h, period_end: today}', "relative to today"),
    ],
)
def test_bad_relative_dates_are_located(tmp_path: Path, billing: str, message: str) -> None:
    path = tmp_path / "fixture.yml"
    path.write_text(_ONE + f"    billing: {billing}\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        load_fixture(path)
