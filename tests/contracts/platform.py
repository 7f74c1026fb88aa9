"""The `Platform` contract (transfer_runner/platforms/base.py): what the runner relies on from
any platform. Run by tests/unit/test_platform_contract.py against the sandbox called directly
and against the HTTP adapter talking to `sandbox serve`; a provider's own adapter is held to
the same tests.

The backend module provides `platform` (a Platform over the unit tests' fixture world) and
`sandbox` (the path of the sandbox behind it, for what only a dump can show).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.builders import cut_over_day
from transfer_runner.errors import AccountCancelled, Conflict, NotFound, PlatformError
from transfer_runner.platforms.base import (
    MAX_FETCH,
    MessageInfo,
    NewAccount,
    NewSubscription,
    Platform,
    Store,
)
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.messages import MESSAGE_ID

NEW = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, ("spamstopshere", "restoremail"))
RAW = b"Message-ID: <x@y>\r\nSubject: hello\r\n\r\nbody\r\n"
DATED = (
    b"Message-ID: <abc@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0100\r\n"
    b"Subject: hi\r\n\r\nhello\r\n"
)
SERVICES = ("spamstopshere", "restoremail")  # 1.00 + 1.50 a user and month
Call = Callable[[Platform, str], Any]


# -- domains --------------------------------------------------------------------------------
def _holder(platform: Platform, domain: str) -> str | None:
    account = platform.find_account_by_domain(domain)
    return account.id if account else None


def test_a_domain_is_on_one_account_only(platform: Platform) -> None:
    with pytest.raises(Conflict, match="acme.com is already on account C-1001"):
        platform.attach_domain("R-301", "acme.com", "k1")
    with pytest.raises(Conflict, match="already on account C-1001"):
        platform.attach_domain("C-1001", "ACME.com.", "k2")  # same name, other spelling
    assert _holder(platform, "acme.com") == "C-1001"
    platform.attach_domain("R-301", "northwind.example", "k3")
    assert platform.get_account("R-301").domains == ("northwind.example",)  # type: ignore[union-attr]


def test_find_account_by_domain(platform: Platform) -> None:
    assert _holder(platform, "Acme.COM") == "C-1001"
    assert platform.find_account_by_domain("nobody.example") is None
    assert platform.find_account_by_domain("not a domain") is None


def test_detach_releases_the_domain(platform: Platform) -> None:
    platform.detach_domain("C-1001", "acme.net", "d1")
    assert _holder(platform, "acme.net") is None
    with pytest.raises(NotFound, match="acme.net is on no account"):
        platform.detach_domain("C-1001", "acme.net", "d2")
    with pytest.raises(Conflict, match="acme.com is on account C-1001, not R-301"):
        platform.detach_domain("R-301", "acme.com", "d3")


def test_move_domain(platform: Platform) -> None:
    new = platform.create_account(NEW, "acct")
    platform.move_domain("acme.com", "C-1001", new.id, "m1")
    assert _holder(platform, "acme.com") == new.id
    with pytest.raises(Conflict, match="is on account A-2, not C-1001"):
        platform.move_domain("acme.com", "C-1001", new.id, "m2")
    with pytest.raises(NotFound, match="does not exist"):
        platform.move_domain("acme.net", "C-1001", "A-99", "m3")
    assert _holder(platform, "acme.net") == "C-1001"


def test_move_into_a_cancelled_account_rolls_back(platform: Platform) -> None:
    # C-1002 is cancelled in the fixture: the detach from C-1001 happens, the attach is
    # refused, and the transaction puts the domain back.
    with pytest.raises(AccountCancelled, match="C-1002 is cancelled"):
        platform.move_domain("acme.com", "C-1001", "C-1002", "m1")
    assert _holder(platform, "acme.com") == "C-1001"
    assert platform.get_account("C-1001").domains == ("acme.com", "acme.net")  # type: ignore[union-attr]


def test_move_to_the_same_account_is_refused(platform: Platform) -> None:
    with pytest.raises(PlatformError, match="to itself"):
        platform.move_domain("acme.com", "C-1001", "C-1001", "m1")
    assert _holder(platform, "acme.com") == "C-1001"


# -- cancelled accounts ---------------------------------------------------------------------
def test_a_cancelled_account_takes_no_writes(platform: Platform, sandbox: Path) -> None:
    cancelled = platform.cancel_account("C-1001", "cancel")
    assert cancelled.status == "cancelled"
    assert cancelled.domains == ("acme.com", "acme.net")  # kept until moved or detached
    refused = [
        lambda: platform.cancel_account("C-1001", "cancel-again"),
        lambda: platform.attach_domain("C-1001", "more.example", "attach"),
        lambda: platform.import_message(
            "C-1001", "archive", "x-1", b"Subject: x\r\n\r\nx\r\n", "i"
        ),
        lambda: platform.charge("C-1001", Decimal("1.00"), "fee", "charge"),
    ]
    for write in refused:
        with pytest.raises(AccountCancelled, match="C-1001 is cancelled and takes no writes"):
            write()
    assert dump_sandbox(sandbox)["charges"] == []


def test_a_cancelled_account_lets_its_domains_go(platform: Platform) -> None:
    new = platform.create_account(NEW, "acct")
    platform.cancel_account("C-1001", "cancel")
    platform.move_domain("acme.com", "C-1001", new.id, "move")
    platform.detach_domain("C-1001", "acme.net", "detach")
    assert platform.get_account("C-1001").domains == ()  # type: ignore[union-attr]
    assert _holder(platform, "acme.com") == new.id


def test_a_cancelled_subscription_can_still_be_credited(platform: Platform) -> None:
    platform.cancel_account("C-1001", "cancel")
    credit = platform.credit("C-1001", Decimal("52.00"), "pro-ration", "prorate")
    assert (credit.account, credit.amount) == ("C-1001", Decimal("52.00"))


# -- new accounts ---------------------------------------------------------------------------
def test_create_account(platform: Platform) -> None:
    first = platform.create_account(NEW, "a")
    # the fixture already has an account A-1: ids skip it and stay sequential
    assert first.id == "A-2"
    assert (first.type, first.parent, first.status) == ("resold", "R-301", "active")
    assert (first.domains, first.users, first.max_domains) == (("gdi.acme.com",), 40, 2)
    assert first.services == ("spamstopshere", "restoremail")
    assert platform.get_account("A-2") == first
    other = NewAccount("R-302", "other", "gdi.other.example", 1, 1, ("encryption",))
    assert platform.create_account(other, "b").id == "A-3"


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (NewAccount("R-301", "x", "acme.com", 1, 1, ("spamstopshere",)), Conflict, "already on"),
        (NewAccount("R-999", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), NotFound, "R-999"),
        (NewAccount("C-1001", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), Conflict, "a direct"),
        (NewAccount("A-1", "x", "gdi.x.com", 1, 1, ("spamstopshere",)), Conflict, "a resold"),
        (NewAccount("R-301", "x", "gdi.x.com", 0, 1, ("spamstopshere",)), PlatformError, "users"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 0, ("spamstopshere",)), PlatformError, "max_"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 1, ()), PlatformError, "services"),
        (NewAccount("R-301", "x", "gdi.x.com", 1, 1, ("fax",)), PlatformError, "services"),
        (NewAccount("R-301", "x", "gdi_x", 1, 1, ("encryption",)), PlatformError, "domain"),
        (NewAccount("R-301", " ", "gdi.x.com", 1, 1, ("encryption",)), PlatformError, "name"),
    ],
)
def test_create_account_refusals(
    platform: Platform, sandbox: Path, spec: NewAccount, error: type[Exception], message: str
) -> None:
    before = len(dump_sandbox(sandbox)["accounts"])
    with pytest.raises(error, match=message):
        platform.create_account(spec, "key")
    assert len(dump_sandbox(sandbox)["accounts"]) == before


def test_create_account_under_a_cancelled_reseller(platform: Platform) -> None:
    platform.cancel_account("R-302", "cancel")
    spec = NewAccount("R-302", "x", "gdi.x.com", 1, 1, ("encryption",))
    with pytest.raises(AccountCancelled):
        platform.create_account(spec, "key")


def test_missing_things_read_as_none(platform: Platform) -> None:
    assert platform.get_account("C-404") is None
    assert platform.get_ticket("T-404") is None
    assert platform.get_subscription("R-301") is None
    assert platform.find_charge("nope") is None and platform.find_credit("nope") is None


# -- tickets --------------------------------------------------------------------------------
def test_ticket_comments_in_order(platform: Platform) -> None:
    ticket = platform.get_ticket("T-5002")
    assert ticket is not None
    assert (ticket.account, ticket.status, ticket.resolution) == ("R-301", "closed", "rejected")
    assert [c.body for c in ticket.comments] == ["first", "second"]
    added = platform.add_ticket_comment("T-5002", "third", "comment:1")
    assert (added.body, added.idempotency_key) == ("third", "comment:1")
    assert added.created_at.tzinfo is not None
    again = platform.add_ticket_comment("T-5002", "third", "comment:1")
    assert again == added
    comments = platform.get_ticket("T-5002").comments  # type: ignore[union-attr]
    assert [c.body for c in comments] == ["first", "second", "third"]
    assert comments[-1] == added
    assert platform.get_ticket("T-5001").created_at == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # type: ignore[union-attr]


def test_comment_refusals(platform: Platform) -> None:
    with pytest.raises(NotFound, match="T-404"):
        platform.add_ticket_comment("T-404", "hello", "k1")
    with pytest.raises(PlatformError, match="must not be empty"):
        platform.add_ticket_comment("T-5001", "  ", "k2")


# -- billing --------------------------------------------------------------------------------
def test_charge_and_credit(platform: Platform) -> None:
    charge = platform.charge("R-301", Decimal("25.00"), "transfer fee", "fee")
    assert (charge.id, charge.account, charge.amount, charge.reason) == (
        "CH-1",
        "R-301",
        Decimal("25.00"),
        "transfer fee",
    )
    assert charge.created_at.tzinfo is not None
    assert platform.find_charge("fee") == charge
    assert platform.find_credit("fee") is None  # charges and credits are separate
    credit = platform.credit("C-1001", Decimal("0.01"), "pro-ration", "prorate")
    assert platform.find_credit("prorate") == credit and credit.id == "CR-1"


@pytest.mark.parametrize(
    "amount", [Decimal("0"), Decimal("-5.00"), Decimal("1.005"), Decimal("NaN"), 25.0]
)
def test_bad_amounts_are_refused(platform: Platform, amount: Decimal) -> None:
    with pytest.raises(PlatformError) as caught:
        platform.charge("R-301", amount, "fee", "fee")
    assert caught.value.status == 400
    assert platform.find_charge("fee") is None


def test_charging_an_unknown_account(platform: Platform) -> None:
    with pytest.raises(NotFound):
        platform.charge("R-999", Decimal("25.00"), "fee", "fee")


def _resold(platform: Platform) -> str:
    spec = NewAccount("R-301", "acme.com", "gdi.acme.com", 40, 2, SERVICES)
    return platform.create_account(spec, "account:x").id


def test_a_subscription_is_created_once_and_read_back(platform: Platform) -> None:
    spec = NewSubscription(40, 2, SERVICES, cut_over_day())
    quote = platform.quote_subscription("R-301", spec)
    account = _resold(platform)
    first = platform.create_subscription(account, spec, "subscription:C-1001")
    assert (first.price, first.period_start) == (quote.price, cut_over_day())
    assert quote.account == "R-301" and first.account == account
    assert platform.create_subscription(account, spec, "subscription:C-1001") == first  # replay
    assert platform.get_subscription(account) == first
    with pytest.raises(Conflict, match="has a subscription already"):
        platform.create_subscription(account, spec, "subscription:other")


def test_only_an_active_resold_account_is_subscribed(platform: Platform) -> None:
    spec = NewSubscription(40, 2, SERVICES, cut_over_day())
    with pytest.raises(Conflict, match="is direct, not resold"):
        platform.create_subscription("C-1001", spec, "k-1")
    with pytest.raises(PlatformError, match="not a reseller"):
        platform.quote_subscription("C-1001", spec)
    with pytest.raises(PlatformError, match="services must be distinct names"):
        platform.quote_subscription("R-301", NewSubscription(1, 1, ("fax",), cut_over_day()))


# -- messages -------------------------------------------------------------------------------
def all_messages(platform: Platform, account: str, store: Store, limit: int) -> list[MessageInfo]:
    out: list[MessageInfo] = []
    cursor = None
    while True:
        page = platform.list_messages(account, store, cursor, limit)
        assert len(page.messages) <= limit
        out.extend(page.messages)
        if page.next_cursor is None:
            return out
        assert page.messages, "a page with a cursor has messages"
        cursor = page.next_cursor


@pytest.mark.parametrize("limit", [1, 7, 25, 26, 500])
def test_paging_covers_every_message_once_in_order(platform: Platform, limit: int) -> None:
    listed = all_messages(platform, "C-1001", "archive", limit)
    ids = [m.id for m in listed]
    assert len(ids) == 25 == len(set(ids))
    assert ids == sorted(ids)
    assert all(MESSAGE_ID.fullmatch(i) and i.startswith("a-") for i in ids)
    assert platform.count_messages("C-1001", "archive") == (25, 25 * 1500)
    assert sum(m.size for m in listed) == 25 * 1500


def test_a_store_that_is_empty(platform: Platform) -> None:
    page = platform.list_messages("R-301", "quarantine")
    assert (page.messages, page.next_cursor) == ((), None)
    assert platform.count_messages("R-301", "quarantine") == (0, 0)


def test_listing_refusals(platform: Platform) -> None:
    with pytest.raises(NotFound):
        platform.list_messages("C-404", "archive")
    with pytest.raises(NotFound):
        platform.count_messages("C-404", "archive")
    with pytest.raises(PlatformError, match="store must be one of"):
        platform.list_messages("C-1001", "inbox")  # type: ignore[arg-type]
    with pytest.raises(PlatformError, match="limit"):
        platform.list_messages("C-1001", "archive", limit=0)


def test_fetch_refusals(platform: Platform) -> None:
    with pytest.raises(NotFound, match="no message q-0"):
        platform.fetch_message("C-1001", "quarantine", "q-0")
    first = platform.list_messages("C-1001", "quarantine", limit=1).messages[0].id
    with pytest.raises(NotFound):
        platform.fetch_message("C-1001", "archive", first)  # other store
    with pytest.raises(NotFound):
        platform.fetch_message("C-1002", "quarantine", first)  # other account


def test_fetch_many_answers_each_id_once_and_leaves_out_the_gone(platform: Platform) -> None:
    page = platform.list_messages("C-1001", "archive", limit=MAX_FETCH + 1).messages
    ids = [info.id for info in page[:5]]
    found = platform.fetch_messages("C-1001", "archive", [*ids, "gone-1"])
    assert list(found) == ids  # in the order asked, the missing one left out
    for info in page[:5]:
        assert found[info.id] == platform.fetch_message("C-1001", "archive", info.id)
        assert hashlib.sha256(found[info.id]).hexdigest() == info.sha256
    assert platform.fetch_messages("C-1001", "quarantine", ids) == {}  # other store
    most = [info.id for info in page[:MAX_FETCH]]
    assert len(platform.fetch_messages("C-1001", "archive", most)) == len(most)


@pytest.mark.parametrize("count", [0, MAX_FETCH + 1])
def test_fetch_many_refuses_too_few_or_too_many(platform: Platform, count: int) -> None:
    ids = [f"m-{n}" for n in range(count)]
    with pytest.raises(PlatformError) as caught:
        platform.fetch_messages("C-1001", "archive", ids)
    assert caught.value.status == 400


def test_fetch_many_of_an_unknown_account_is_not_found(platform: Platform) -> None:
    with pytest.raises(NotFound):
        platform.fetch_messages("C-9999", "archive", ["m-1"])


def test_import_stores_the_raw_bytes(platform: Platform) -> None:
    assert platform.import_message("A-1", "archive", "a-00000001-abcdef", DATED, "i1") is True
    assert platform.fetch_message("A-1", "archive", "a-00000001-abcdef") == DATED
    [info] = platform.list_messages("A-1", "archive").messages
    assert info == MessageInfo(
        "a-00000001-abcdef",
        len(DATED),
        datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
        hashlib.sha256(DATED).hexdigest(),
    )
    assert platform.count_messages("A-1", "archive") == (1, len(DATED))
    assert platform.count_messages("A-1", "quarantine") == (0, 0)


@pytest.mark.parametrize(
    ("account", "store", "message_id", "raw", "error"),
    [
        ("A-1", "archive", "../etc/passwd", DATED, "not filename-safe"),
        ("A-1", "archive", "-starts-with-dash", DATED, "not filename-safe"),
        ("A-1", "archive", "x" * 129, DATED, "not filename-safe"),
        ("A-1", "archive", "ok", b"", "non-empty bytes"),
        ("A-1", "inbox", "ok", DATED, "store must be one of"),
        ("A-404", "archive", "ok", DATED, "does not exist"),
        ("C-1002", "archive", "ok", DATED, "is cancelled"),
    ],
)
def test_import_refusals(
    platform: Platform, account: str, store: str, message_id: str, raw: bytes, error: str
) -> None:
    with pytest.raises(PlatformError, match=error):
        platform.import_message(account, store, message_id, raw, "key")  # type: ignore[arg-type]


# -- idempotency keys -----------------------------------------------------------------------
# Each write with one request, and the same write with another request.
WRITES: list[tuple[str, Call, Call]] = [
    (
        "create_account",
        lambda p, k: p.create_account(NEW, k),
        lambda p, k: p.create_account(replace(NEW, users=41), k),
    ),
    (
        "cancel_account",
        lambda p, k: p.cancel_account("C-1001", k),
        lambda p, k: p.cancel_account("R-302", k),
    ),
    (
        "attach_domain",
        lambda p, k: p.attach_domain("R-301", "north.example", k),
        lambda p, k: p.attach_domain("R-301", "south.example", k),
    ),
    (
        "detach_domain",
        lambda p, k: p.detach_domain("C-1001", "acme.net", k),
        lambda p, k: p.detach_domain("C-1001", "acme.com", k),
    ),
    (
        "move_domain",
        lambda p, k: p.move_domain("acme.net", "C-1001", "A-1", k),
        lambda p, k: p.move_domain("acme.com", "C-1001", "A-1", k),
    ),
    (
        "add_ticket_comment",
        lambda p, k: p.add_ticket_comment("T-5001", "done", k),
        lambda p, k: p.add_ticket_comment("T-5001", "done!", k),
    ),
    (
        "import_message",
        lambda p, k: p.import_message("A-1", "archive", "m-1", RAW, k),
        lambda p, k: p.import_message("A-1", "archive", "m-1", RAW + b"x", k),
    ),
    (
        "credit",
        lambda p, k: p.credit("C-1001", Decimal("52.00"), "pro-ration", k),
        lambda p, k: p.credit("C-1001", Decimal("52.01"), "pro-ration", k),
    ),
    (
        "charge",
        lambda p, k: p.charge("R-301", Decimal("25.00"), "fee", k),
        lambda p, k: p.charge("R-302", Decimal("25.00"), "fee", k),
    ),
]


IDS = [name for name, _, _ in WRITES]


def _state(sandbox: Path) -> dict[str, Any]:
    dump = dump_sandbox(sandbox)
    dump.pop("writes")
    return dump


@pytest.mark.parametrize(("name", "write", "other"), WRITES, ids=IDS)
def test_a_repeated_key_replays_the_first_result(
    sandbox: Path, platform: Platform, name: str, write: Call, other: Call
) -> None:
    first = write(platform, "key-1")
    after_first = _state(sandbox)
    again = write(platform, "key-1")
    assert again == first
    assert _state(sandbox) == after_first
    assert dump_sandbox(sandbox)["writes"] == 2


@pytest.mark.parametrize(("name", "write", "other"), WRITES, ids=IDS)
def test_a_key_reused_for_another_request_is_a_conflict(
    sandbox: Path, platform: Platform, name: str, write: Call, other: Call
) -> None:
    write(platform, "key-1")
    before = _state(sandbox)
    with pytest.raises(Conflict, match="idempotency key 'key-1' was already used for a"):
        other(platform, "key-1")
    assert _state(sandbox) == before


def test_keys_are_global_across_operations(platform: Platform) -> None:
    platform.charge("R-301", Decimal("25.00"), "fee", "global-key")
    with pytest.raises(Conflict, match="'global-key' was already used for charge"):
        platform.credit("R-301", Decimal("25.00"), "fee", "global-key")
    assert platform.find_credit("global-key") is None


def test_an_equal_amount_is_the_same_request(platform: Platform) -> None:
    first = platform.charge("R-301", Decimal("25"), "fee", "fee")
    assert platform.charge("R-301", Decimal("25.00"), "fee", "fee") == first
    assert first.amount == Decimal("25.00") and str(first.amount) == "25.00"


def test_a_refused_write_does_not_use_up_its_key(platform: Platform) -> None:
    with pytest.raises(Conflict):
        platform.attach_domain("R-301", "acme.com", "attach")
    platform.detach_domain("C-1001", "acme.com", "detach")
    platform.attach_domain("R-301", "acme.com", "attach")
    assert platform.get_account("R-301").domains == ("acme.com",)  # type: ignore[union-attr]


def test_a_replay_answers_even_after_the_world_moved_on(platform: Platform) -> None:
    created = platform.create_account(NEW, "acct")
    platform.cancel_account(created.id, "cancel")
    assert platform.create_account(NEW, "acct") == created
    cancelled = platform.get_account(created.id)
    assert platform.cancel_account(created.id, "cancel") == cancelled


def test_import_of_an_existing_id_under_a_new_key_changes_nothing(
    sandbox: Path, platform: Platform
) -> None:
    assert platform.import_message("A-1", "archive", "m-1", RAW, "k1") is True
    before = _state(sandbox)
    assert platform.import_message("A-1", "archive", "m-1", RAW + b"other", "k2") is False
    assert platform.fetch_message("A-1", "archive", "m-1") == RAW
    assert _state(sandbox) == before
