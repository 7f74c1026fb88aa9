"""Reading `index.jsonl` and journal records line by line: linear, and bounded (issue 18).

Reproduced: one line of 128 MiB took the line reader 32 s and 421 MiB (it copied the line so
far for every chunk read). Now a line over `max_index_line_bytes` (64 KiB) is refused, naming
its number, as soon as that many of its bytes are read, never after the whole line.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.bombs import MiB
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export.index import INDEX_CACHE, IndexEntry, iter_lines, read_index
from transfer_runner.export.layout import store_layout
from transfer_runner.export.limits import ExportLimits
from transfer_runner.s3_client import S3Settings

BUCKET = "exports"
SETTINGS = S3Settings(f"s3://{BUCKET}/runs/")
LAYOUT = store_layout(SETTINGS, "acme-com", "archive")
INDEX = f"s3://{BUCKET}/{LAYOUT.index_key}"


class Endless(io.RawIOBase):
    """`head`, then `fill` repeated, `size` bytes in all, made as they are read; `read_count`
    says how many were read."""

    def __init__(self, head: bytes = b"", fill: bytes = b"a", size: int = 32 * MiB) -> None:
        self.head, self.fill, self.size, self.read_count = head, fill, size, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = min(size, self.size - self.read_count)
        data, self.head = self.head[:size], self.head[size:]
        missing = size - len(data)
        data += (self.fill * (missing // len(self.fill) + 1))[:missing]
        self.read_count += len(data)
        return data

    def close(self) -> None:
        pass


def entry(number: int) -> IndexEntry:
    sha = hashlib.sha256(b"%d" % number).hexdigest()
    return IndexEntry(f"msg-{number:05d}", "part-00001.tar", 2048, sha, "2026-11-03T12:00:00Z")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    INDEX_CACHE.clear()
    with moto_bucket(monkeypatch, BUCKET, SETTINGS) as client:
        yield client
    INDEX_CACHE.clear()


# -- iter_lines -----------------------------------------------------------------------------
def test_an_endless_line_is_refused_once_the_limit_is_read() -> None:
    body = Endless(b"first\nsecond\n")
    with pytest.raises(ExportError, match="line 3: longer than an index line may be") as caught:
        for _ in iter_lines(body):
            pass
    assert "the limit is 64 KiB; TRANSFER_RUNNER_MAX_INDEX_LINE_KIB raises it" in str(caught.value)
    assert body.read_count < 64 * 1024 + 256 * 1024 + 100  # the limit and one chunk, no more


def test_a_long_line_within_one_chunk_is_refused_with_its_number() -> None:
    lines = [b"x" * 10, b"", b"y" * 300, b"z"]
    body = io.BytesIO(b"\n".join(lines))
    with pytest.raises(ExportError, match="line 3:"):
        list(iter_lines(body, limits=ExportLimits(max_index_line_bytes=299)))
    body.seek(0)
    assert list(iter_lines(body, limits=ExportLimits(max_index_line_bytes=300))) == lines


def test_a_stream_over_the_index_limit_is_refused() -> None:
    body = Endless(fill=b"0123456\n")
    with pytest.raises(ExportError, match="larger than an index may be .*1 MiB"):
        for _ in iter_lines(body, limits=ExportLimits(max_index_bytes=MiB)):
            pass
    assert body.read_count <= MiB + 256 * 1024


def test_a_raised_limit_takes_a_long_line_whole() -> None:
    line = b"q" * (5 * MiB + 7)
    limits = ExportLimits(max_index_line_bytes=6 * MiB)
    assert list(iter_lines(io.BytesIO(line + b"\nend"), limits=limits)) == [line, b"end"]


@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    chunk=st.integers(min_value=1, max_value=64),
    newline_at_end=st.booleans(),
)
def test_lines_are_those_of_split_whatever_the_chunks(
    lines: list[bytes], chunk: int, newline_at_end: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")

    class Chunked(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(chunk)

    digest = hashlib.sha256()
    got = list(iter_lines(Chunked(data), digest))
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert got == expected
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


# -- read_index -----------------------------------------------------------------------------
def test_read_index_refuses_a_long_line_naming_the_object_and_line(s3: Any) -> None:
    body = entry(1).to_line() + b'{"id":"msg-2","part":"' + b"a" * (MiB) + b'"}\n'
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.index_key, Body=body)
    with pytest.raises(ExportError, match=f"^{INDEX} line 2: longer than an index line may be"):
        read_index(s3, LAYOUT)


def test_read_index_refuses_an_index_over_its_limit(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_INDEX_MIB", "1")
    body = b"".join(entry(n).to_line() for n in range(6000))  # about 1.2 MiB
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.index_key, Body=body)
    with pytest.raises(ExportError, match="larger than an index may be .*MAX_INDEX_MIB"):
        read_index(s3, LAYOUT)
    monkeypatch.delenv("TRANSFER_RUNNER_MAX_INDEX_MIB")
    index = read_index(s3, LAYOUT)
    assert index is not None and index.messages == 6000 and index.raw == body


def test_a_bad_value_is_shown_clipped(s3: Any) -> None:
    line = b'{"id":"m","part":"' + b"p" * 60_000 + b'","size":1,"sha256":"x","received_at":"x"}'
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.index_key, Body=line + b"\n")
    with pytest.raises(ExportError, match="line 1: bad 'part'") as caught:
        read_index(s3, LAYOUT)
    assert len(str(caught.value)) < 600 and "(60000 characters)" in str(caught.value)
