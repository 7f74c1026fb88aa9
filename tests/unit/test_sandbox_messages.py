"""The sandbox's messages: deterministic RFC 822 content of exact sizes, digests checked on
fetch. (Paging, fetch, count and import are in the contract suite, tests/contracts/platform.py.)"""

from __future__ import annotations

import dataclasses
import email
import hashlib
import sqlite3
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.contracts.platform import all_messages
from tests.unit.test_sandbox_fixture import FIXTURE, make_sandbox
from transfer_runner.errors import PlatformError
from transfer_runner.platforms.base import MessageInfo
from transfer_runner.platforms.sandbox.messages import (
    MESSAGE_ID,
    BodyKind,
    date_of,
    generate_message,
)
from transfer_runner.platforms.sandbox.platform import SandboxPlatform


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def test_fetched_messages_are_rfc822_and_match_their_digest(platform: SandboxPlatform) -> None:
    for store in ("quarantine", "archive"):
        for info in all_messages(platform, "C-1001", store, 500):
            raw = platform.fetch_message("C-1001", store, info.id)
            assert hashlib.sha256(raw).hexdigest() == info.sha256
            assert len(raw) == info.size
            message = _parse(raw)
            assert message["Message-ID"] == f"<{info.id}@c-1001.sandbox.example>"
            assert message.get_content_type() == "text/plain"
            assert message.get_content_charset() == "utf-8"
            assert message["MIME-Version"] == "1.0"
            assert message["From"] and message["To"] and message["Subject"]
            assert email.utils.parsedate_to_datetime(message["Date"]) == info.received_at
            assert message.get_payload().startswith(f"{store.capitalize()} message ")
            assert not message.defects


def test_requested_sizes_are_met(platform: SandboxPlatform) -> None:
    sizes = {m.size for m in all_messages(platform, "C-1001", "quarantine", 500)}
    assert sizes == {2048}


def test_two_inits_give_identical_messages(tmp_path: Path) -> None:
    one = make_sandbox(tmp_path, name="one.db")
    two = make_sandbox(tmp_path, name="two.db")
    other = make_sandbox(tmp_path, FIXTURE.replace("seed: 11", "seed: 12"), name="other.db")

    def digests(path: Path) -> list[tuple[str, str, str, int]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(
                "SELECT id, sha256, received_at, size FROM messages ORDER BY account, store, id"
            ).fetchall()

    assert digests(one) == digests(two)
    assert len(digests(one)) == 37
    assert {d[1] for d in digests(other)}.isdisjoint({d[1] for d in digests(one)})


def test_generated_messages_are_not_stored_but_regenerated(sandbox: Path) -> None:
    with sqlite3.connect(sandbox) as conn:
        assert conn.execute("SELECT count(*) FROM messages WHERE raw IS NOT NULL").fetchone() == (
            0,
        )


def test_a_tampered_message_is_detected(sandbox: Path, platform: SandboxPlatform) -> None:
    first = platform.list_messages("C-1001", "quarantine", limit=1).messages[0].id
    with sqlite3.connect(sandbox) as conn:
        conn.execute("UPDATE messages SET idx = idx + 1 WHERE id = ?", (first,))
    with pytest.raises(PlatformError, match="no longer matches its stored SHA-256"):
        platform.fetch_message("C-1001", "quarantine", first)


# -- import ---------------------------------------------------------------------------------
RAW = (
    b"Message-ID: <abc@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0100\r\n"
    b"Subject: hi\r\n\r\nhello\r\n"
)


def test_import_without_a_date_is_received_now(platform: SandboxPlatform) -> None:
    before = platform.clock.now()
    platform.import_message("A-1", "quarantine", "m1", b"Subject: x\r\n\r\nx\r\n", "i1")
    [info] = platform.list_messages("A-1", "quarantine").messages
    assert before <= info.received_at <= platform.clock.now()


# -- the generator --------------------------------------------------------------------------
@given(
    seed=st.integers(min_value=0, max_value=2**40),
    index=st.integers(min_value=1, max_value=10_000_000),
    size=st.integers(min_value=0, max_value=200_000),
    store=st.sampled_from(["quarantine", "archive"]),
    body=st.sampled_from(["text", "mail-like"]),
)
def test_generated_sizes_are_exact_and_stable(
    seed: int, index: int, size: int, store: str, body: BodyKind
) -> None:
    message = generate_message(seed, "C-1001", store, index, size, body)
    smallest = len(generate_message(seed, "C-1001", store, index, 0, body).raw)
    assert len(message.raw) == max(size, smallest)
    assert generate_message(seed, "C-1001", store, index, len(message.raw), body) == message
    assert MESSAGE_ID.fullmatch(message.id)
    bare = message.raw.replace(b"\r\n", b"")
    assert b"\r" not in bare and b"\n" not in bare  # every line ends in CRLF
    assert message.raw.endswith(b"\r\n")


@given(
    index=st.integers(min_value=1, max_value=10_000_000),
    size=st.integers(min_value=0, max_value=200_000),
)
def test_mail_like_messages_are_well_formed_mime(index: int, size: int) -> None:
    raw = generate_message(5, "C-1001", "archive", index, size, "mail-like").raw
    message = email.message_from_bytes(raw)
    assert message.get_content_type() == "multipart/mixed" and not message.defects
    text, attachment = message.get_payload()
    assert text.get_payload().startswith("Archive message ")
    encoded = attachment.get_payload()
    assert all(len(line) <= 76 and len(line) % 4 == 0 for line in encoded.split("\r\n"))
    assert len(attachment.get_payload(decode=True)) == len(encoded.replace("\r\n", "")) * 3 // 4


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (RAW, datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
        (RAW.replace(b"\r\n", b"\n"), datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
        # the headers end at the first blank line: a Date: in the body is not the message's
        (b"Subject: hi\r\n\r\nDate: Tue, 03 Mar 2026 10:00:00 +0100\r\n", None),
        (b"Subject: hi\n\nDate: Tue, 03 Mar 2026 10:00:00 +0100\n", None),
        # no body at all: every line is a header
        (b"Date: Tue, 03 Mar 2026 10:00:00 +0000", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        # a folded Date header, then an attachment-sized body
        (
            b"Subject: x\r\nDate: Tue, 03 Mar 2026\r\n 10:00:00 +0000\r\n\r\n" + b"QUJD" * 50_000,
            datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        ),
    ],
)
def test_an_imported_message_is_dated_by_its_header_alone(
    raw: bytes, expected: datetime | None
) -> None:
    assert date_of(raw) == expected


def test_a_listed_message_is_the_frozen_dataclass_a_constructor_gives(
    platform: SandboxPlatform,
) -> None:
    platform.import_message("A-1", "archive", "a-00000001-abcdef", RAW, "i1")
    [info] = platform.list_messages("A-1", "archive").messages
    made = MessageInfo(info.id, info.size, info.received_at, info.sha256)
    assert (info, hash(info), repr(info)) == (made, hash(made), repr(made))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 0  # type: ignore[misc]
