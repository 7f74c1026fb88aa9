"""Deterministic RFC 822 messages for the sandbox's quarantine and archive stores.

A generated message is a pure function of (seed, account, store, index, size, body kind): the
database keeps only its id, size, SHA-256, receive time and those inputs, and `fetch_message`
regenerates the bytes. That keeps a sandbox of millions of messages small while every message
still has real, verifiable content. Sizes are exact: the body is filled to the requested size
(or to the smallest possible message when the request is smaller), so regenerating at the
stored size gives the same bytes again.

Two body kinds: `text` (plain text lines, about 7:1 under gzip) and `mail-like` (a short text
part plus a base64 attachment of pseudo-random bytes, about 1.3:1 like real mail), so that
benchmarks do not measure data friendlier than reality.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any, Literal

from transfer_runner.errors import PlatformError

__all__ = [
    "stored_bytes",
    "MESSAGE_ID",
    "BODY_KINDS",
    "BodyKind",
    "GeneratedMessage",
    "generate_message",
    "is_message_id",
    "date_of",
]

MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
BodyKind = Literal["text", "mail-like"]
BODY_KINDS: tuple[BodyKind, ...] = ("text", "mail-like")

_BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 365 * 86400
_LINE_CHARS = 76
_FILLER_LINES = 1024
_CRLF = b"\r\n"
_TEXT_PART = 512  # bytes of text before a mail-like message's attachment, about
_B64_LINE = _LINE_CHARS + 2  # one full base64 line with its CRLF
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_TO_BASE64 = bytes(_B64_ALPHABET[byte % 64] for byte in range(256))  # uniform: 256 = 4 * 64
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
    seed: int,
    account: str,
    store: str,
    index: int,
    size: int,
    body: BodyKind = "text",
    *,
    message_id: str | None = None,
    received_at: datetime | None = None,
) -> GeneratedMessage:
    """Message number `index` (1-based) of `account`'s `store`, `size` bytes long.

    `message_id` and `received_at` default to values derived from the other inputs; the mail
    flow sets its own (a delivery id, the delivery time), and the store keeps them.
    """
    if body not in BODY_KINDS:
        raise ValueError(f"body must be one of {', '.join(BODY_KINDS)}, not {body!r}")
    digest = hashlib.sha256(f"{seed}:{account}:{store}:{index}".encode()).digest()
    if message_id is None:
        message_id = f"{store[0]}-{index:08d}-{digest.hex()[:6]}"
    if received_at is None:
        offset = int.from_bytes(digest[6:10], "big") % _SPAN_SECONDS
        received_at = _BASE_TIME + timedelta(seconds=offset)
    boundary = f"=_part_{digest.hex()[40:56]}" if body == "mail-like" else None
    header = _header(message_id, account, store, index, received_at, digest, boundary)
    first_line = f"{store.capitalize()} message {index} of {account}, seed {seed}.".encode()
    room = size - len(header)
    if boundary is None:
        text = _text(seed, digest, first_line, room)
    else:
        text = _mail_like(seed, digest, first_line, boundary, index, room)
    return GeneratedMessage(message_id, received_at, header + text)


def date_of(raw: bytes) -> datetime | None:
    """The message's `Date:` header as UTC, or None if it is missing or unreadable."""
    try:
        value = BytesHeaderParser().parsebytes(_header_block(raw)).get("Date")
        if not value:
            return None
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _header_block(raw: bytes) -> bytes:
    """The message's header lines, up to the blank line that ends them (the parser would
    otherwise be fed the whole body, attachments included, to find that line)."""
    ends = [at for at in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if at >= 0]
    return raw[: min(ends) + 1] if ends else raw


def _header(
    message_id: str,
    account: str,
    store: str,
    index: int,
    when: datetime,
    digest: bytes,
    boundary: str | None,
) -> bytes:
    host = re.sub(r"[^a-z0-9-]+", "-", account.lower()).strip("-") or "account"
    topic = f"{_word(digest[14])} {_word(digest[15])}"
    content: tuple[str, ...]
    if boundary is None:
        content = ("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit")
    else:
        content = (f'Content-Type: multipart/mixed; boundary="{boundary}"',)
    lines = (
        f"Message-ID: <{message_id}@{host}.sandbox.example>",
        f"Date: {format_datetime(when)}",
        f"From: Sender {digest[16]} <sender{digest[16]}@mail{digest[17] % 16}.example>",
        f"To: user{digest[18] % 64}@{host}.example",
        f"Subject: {store.capitalize()} {index}: {topic}",
        "MIME-Version: 1.0",
        *content,
        "",
        "",
    )
    return "\r\n".join(lines).encode("ascii")


def _text(seed: int, digest: bytes, first_line: bytes, room: int) -> bytes:
    """A plain text body of exactly `room` bytes (or the shortest one, if `room` is less)."""
    fill = room - len(first_line) - len(_CRLF)
    if fill == 1:  # a lone byte cannot be a line: lengthen the first line instead
        first_line, fill = first_line + b".", 0
    start = (int.from_bytes(digest[10:14], "big") % _FILLER_LINES) * (_LINE_CHARS + 2)
    return first_line + _CRLF + _fill(seed, start, max(fill, 0))


def _mail_like(
    seed: int, digest: bytes, first_line: bytes, boundary: str, index: int, room: int
) -> bytes:
    """A multipart/mixed body of exactly `room` bytes: a short text part, then an attachment.

    The attachment takes the largest base64 length that fits after about `_TEXT_PART` bytes
    of text; the text part absorbs the rest, so any size is met exactly.
    """
    name = f"{_word(digest[19])}-{index}.bin"
    opening = f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".encode()
    attachment = (
        f'\r\n--{boundary}\r\nContent-Type: application/octet-stream; name="{name}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
    ).encode()
    closing = f"--{boundary}--\r\n".encode()
    room -= len(opening) + len(attachment) + len(closing)
    encoded = _base64_lines(digest, _base64_length(room - _TEXT_PART))
    text = _text(seed, digest, first_line, room - len(encoded))
    return opening + text + attachment + encoded + closing


def _base64_length(room: int) -> int:
    """The longest run of CRLF-terminated 76-character base64 lines (no padding) <= `room`."""
    if room <= 0:
        return 0
    lines, rest = divmod(room, _B64_LINE)
    last = (rest - 2) // 4 * 4  # characters on a last, shorter line: a multiple of 4
    return lines * _B64_LINE + (last + 2 if last > 0 else 0)


def _base64_lines(digest: bytes, length: int) -> bytes:
    """`length` bytes (see `_base64_length`) of base64 lines that decode to pseudo-random bytes.

    Drawing the characters themselves (uniformly, 6 bits each) is the same as encoding random
    bytes, at C speed: benchmarks regenerate gigabytes of these.
    """
    if length == 0:
        return b""
    chars = bytearray(random.Random(int.from_bytes(digest, "big")).randbytes(length))
    chars = chars.translate(_TO_BASE64)
    breaks = len(range(_LINE_CHARS, length, _B64_LINE))
    chars[_LINE_CHARS::_B64_LINE] = b"\r" * breaks
    chars[_LINE_CHARS + 1 :: _B64_LINE] = b"\n" * breaks
    chars[-2:] = _CRLF  # the last line may be shorter than 76 characters
    return bytes(chars)


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


def stored_bytes(
    op: str, account_id: str, store: str, message_id: str, row: tuple[Any, ...]
) -> bytes:
    """A message's raw bytes from its `messages` row (raw, seed, idx, size, sha256, body,
    received_at): stored for an imported message, regenerated for a generated one, and
    checked against the stored SHA-256 (a PlatformError if the generator changed since)."""
    raw, seed, index, size, digest, body, received = row
    if raw is None:
        raw = generate_message(
            seed,
            account_id,
            store,
            index,
            size,
            body,
            message_id=message_id,
            received_at=datetime.fromisoformat(received).astimezone(UTC),
        ).raw
    if hashlib.sha256(raw).hexdigest() != digest:
        raise PlatformError(
            op,
            f"message {message_id} no longer matches its stored SHA-256: the sandbox was "
            "made by another version; re-create it with `sandbox init --force`",
            500,
        )
    return bytes(raw)
