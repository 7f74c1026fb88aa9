"""Deterministic RFC 822 messages for the sandbox's quarantine and archive stores.

A generated message is a pure function of (seed, account, store, index, size): the database
keeps only its id, size, SHA-256 and receive time, and `fetch_message` regenerates the bytes.
That keeps a sandbox of millions of messages small while every message still has real,
verifiable content. Sizes are exact: the body is filled to the requested size (or to the
smallest possible message when the request is smaller), so regenerating at the stored size
gives the same bytes again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache

__all__ = [
    "MESSAGE_ID",
    "GeneratedMessage",
    "generate_message",
    "is_message_id",
    "date_of",
]

MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 365 * 86400
_LINE_CHARS = 76
_FILLER_LINES = 1024
_CRLF = b"\r\n"
_WORDS = """
    account agenda approval archive backup budget calendar contract customer deadline delivery
    draft estimate filter forecast invoice ledger license mailbox meeting memo network notice
    order payment policy project proposal quarter quote receipt renewal report request review
    schedule server service shipment signature spam status summary support ticket update user
    vendor warehouse weekly
"""
_VOCABULARY = tuple(_WORDS.split())


@dataclass(frozen=True)
class GeneratedMessage:
    """One generated message: its filename-safe id, receive time and raw bytes."""

    id: str
    received_at: datetime
    raw: bytes


def is_message_id(text: str) -> bool:
    """True if `text` is a filename-safe message id (`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)."""
    return MESSAGE_ID.fullmatch(text) is not None


def generate_message(
    seed: int, account: str, store: str, index: int, size: int
) -> GeneratedMessage:
    """Message number `index` (1-based) of `account`'s `store`, `size` bytes long."""
    digest = hashlib.sha256(f"{seed}:{account}:{store}:{index}".encode()).digest()
    message_id = f"{store[0]}-{index:08d}-{digest.hex()[:6]}"
    offset = int.from_bytes(digest[6:10], "big") % _SPAN_SECONDS
    received_at = _BASE_TIME + timedelta(seconds=offset)
    header = _header(message_id, account, store, index, received_at, digest)
    first_line = f"{store.capitalize()} message {index} of {account}, seed {seed}.".encode()
    fill = size - len(header) - len(first_line) - len(_CRLF)
    if fill == 1:  # a lone byte cannot be a line: lengthen the first line instead
        first_line, fill = first_line + b".", 0
    start = (int.from_bytes(digest[10:14], "big") % _FILLER_LINES) * (_LINE_CHARS + 2)
    body = first_line + _CRLF + _fill(seed, start, max(fill, 0))
    return GeneratedMessage(message_id, received_at, header + body)


def date_of(raw: bytes) -> datetime | None:
    """The message's `Date:` header as UTC, or None if it is missing or unreadable."""
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Date")
        if not value:
            return None
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _header(
    message_id: str, account: str, store: str, index: int, when: datetime, digest: bytes
) -> bytes:
    host = re.sub(r"[^a-z0-9-]+", "-", account.lower()).strip("-") or "account"
    topic = f"{_word(digest[14])} {_word(digest[15])}"
    lines = (
        f"Message-ID: <{message_id}@{host}.sandbox.example>",
        f"Date: {format_datetime(when)}",
        f"From: Sender {digest[16]} <sender{digest[16]}@mail{digest[17] % 16}.example>",
        f"To: user{digest[18] % 64}@{host}.example",
        f"Subject: {store.capitalize()} {index}: {topic}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        "",
    )
    return "\r\n".join(lines).encode("ascii")


def _word(byte: int) -> str:
    return _VOCABULARY[byte % len(_VOCABULARY)]


def _fill(seed: int, start: int, length: int) -> bytes:
    """Exactly `length` bytes of CRLF-terminated text lines (0 or at least 2)."""
    if length == 0:
        return b""
    block = _filler_block(seed)
    text = block[start : start + length - 2]
    while len(text) < length - 2:
        text += block[: length - 2 - len(text)]
    if text.endswith(b"\r"):  # never leave a bare CR before the final CRLF
        text = text[:-1] + b"."
    return text + _CRLF


@lru_cache(maxsize=32)
def _filler_block(seed: int) -> bytes:
    """About 78 KiB of seed-dependent text lines of exactly 76 characters plus CRLF."""
    lines = []
    for number in range(_FILLER_LINES):
        digest = hashlib.sha256(f"{seed}:filler:{number}".encode()).digest()
        words = [_word(b) for b in digest]
        line = " ".join(words)[:_LINE_CHARS]
        lines.append(line.rstrip().ljust(_LINE_CHARS, "."))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
