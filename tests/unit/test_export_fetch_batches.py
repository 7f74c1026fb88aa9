"""The export's fetches a page at a time (`export.source.fetch_batches`): pages cut by ids and
bytes, a message gone since the listing answered None, bytes checked against the listing, and
a page that failed for a transient reason asked again as a whole (retries per page)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from transfer_runner.errors import ExportError, NotFound, PlatformError
from transfer_runner.export import source
from transfer_runner.platforms.base import MAX_FETCH, MessageInfo, Store
from transfer_runner.retries import RetryPolicy

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _raw(message_id: str, size: int = 10) -> bytes:
    return (message_id * size).encode()[:size].ljust(size, b".")


def _info(message_id: str, size: int = 10) -> MessageInfo:
    return MessageInfo(message_id, size, T0, hashlib.sha256(_raw(message_id, size)).hexdigest())


class Pages:
    """A platform's two fetch calls over a dict of messages, failing as told."""

    def __init__(self, sizes: dict[str, int], failures: Sequence[PlatformError] = ()) -> None:
        self.stored = {i: _raw(i, n) for i, n in sizes.items()}
        self.failures = list(failures)
        self.calls: list[list[str]] = []

    def fetch_message(self, account_id: str, store: Store, message_id: str) -> bytes:
        self.calls.append([message_id])
        if message_id not in self.stored:
            raise NotFound("fetch_message", f"no message {message_id}")
        return self.stored[message_id]

    def fetch_messages(self, account_id: str, store: Store, ids: Sequence[str]) -> dict[str, bytes]:
        self.calls.append(list(ids))
        assert 1 <= len(ids) <= MAX_FETCH
        if self.failures:
            raise self.failures.pop(0)
        return {i: self.stored[i] for i in ids if i in self.stored}


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "PAGE_RETRIES", RetryPolicy(attempts=4, base_delay_s=0))


def _fetch(platform: Any, infos: list[MessageInfo]) -> list[tuple[str, bytes | None]]:
    return [(i.id, raw) for i, raw, _ in source.fetch_batches(platform, "C-1", "archive", infos)]


def test_pages_are_cut_by_ids_and_by_bytes_and_keep_the_order() -> None:
    ids = [f"m-{n:04d}" for n in range(2 * MAX_FETCH + 3)]
    platform = Pages(dict.fromkeys(ids, 10))
    got = _fetch(platform, [_info(i) for i in ids])
    assert [i for i, _ in got] == ids and all(raw is not None for _, raw in got)
    assert [len(c) for c in platform.calls] == [MAX_FETCH, MAX_FETCH, 3]

    big = source.FETCH_BYTES // 3 + 1  # three of these do not fit in one page
    platform = Pages(dict.fromkeys(ids[:5], big))
    _fetch(platform, [_info(i, big) for i in ids[:5]])
    assert [len(c) for c in platform.calls] == [2, 2, 1]


def test_a_message_gone_since_the_listing_is_none() -> None:
    platform = Pages({"a": 10, "c": 10})
    assert _fetch(platform, [_info("a"), _info("b"), _info("c")]) == [
        ("a", _raw("a")), ("b", None), ("c", _raw("c"))
    ]  # fmt: skip
    assert _fetch(Pages({}), [_info("b")]) == [("b", None)]  # one message: the plain call


def test_bytes_that_differ_from_the_listing_are_refused() -> None:
    platform = Pages({"a": 10, "b": 10})
    platform.stored["b"] = b"changed!!!"
    with pytest.raises(ExportError, match="message b .* SHA-256"):
        _fetch(platform, [_info("a"), _info("b")])


@pytest.mark.parametrize("status", [429, 503, None])
def test_a_page_that_failed_for_good_is_asked_again_as_a_whole(status: int | None) -> None:
    failures = [PlatformError("fetch_messages", "gave up after 6 attempts", status)] * 3
    platform = Pages({"a": 10, "b": 10}, failures)
    assert [raw is not None for _, raw in _fetch(platform, [_info("a"), _info("b")])] == [True] * 2
    assert platform.calls == [["a", "b"]] * 4


def test_a_page_is_not_asked_forever_nor_after_a_refusal() -> None:
    failures = [PlatformError("fetch_messages", "unavailable", 503)] * 4
    platform = Pages({"a": 10, "b": 10}, failures)
    with pytest.raises(PlatformError, match="unavailable"):
        _fetch(platform, [_info("a"), _info("b")])
    assert len(platform.calls) == 4

    refused = Pages({"a": 10, "b": 10}, [PlatformError("fetch_messages", "bad ids", 400)])
    with pytest.raises(PlatformError, match="bad ids"):
        _fetch(refused, [_info("a"), _info("b")])
    assert len(refused.calls) == 1
