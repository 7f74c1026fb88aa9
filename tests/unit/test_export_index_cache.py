"""Reading the index cheaply and right: the canonical-line parser agrees with the checked one,
a parsed index is reused only while S3 says it is unchanged (304), an index the pass just wrote
is known without reading it back, and one listing can serve a pass, its verification and the
import."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.fake_platform import BASE_TIME, FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export import idset
from transfer_runner.export.exporter import MIN_SPLIT_BYTES, export_store, split_size
from transfer_runner.export.idset import IdSet
from transfer_runner.export.importer import import_store
from transfer_runner.export.index import (
    INDEX_CACHE,
    ExportIndex,
    IndexCache,
    IndexEntry,
    read_index,
)
from transfer_runner.export.layout import store_layout
from transfer_runner.export.objects import list_objects
from transfer_runner.export.source import list_source
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import MiB, S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE, TARGET = "C-1001", "A-2001"
SETTINGS = S3Settings(f"s3://{BUCKET}/runs/", part_size_bytes=64 * 1024)
LAYOUT = store_layout(SETTINGS, NAME, "archive")
SHA = "ab" * 32


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    INDEX_CACHE.clear()
    with moto_bucket(monkeypatch, BUCKET, SETTINGS) as client:
        yield client
    INDEX_CACHE.clear()


@pytest.fixture
def calls(s3: Any) -> Counter[str]:
    seen: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3", lambda model, **_: seen.update([model.name]))
    return seen


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 120, size=2048)
    return fake


def line(**fields: Any) -> bytes:
    doc = {"id": "m-1", "part": "part-00001.tar.gz", "size": 10, "sha256": SHA,
           "received_at": "2026-11-03T12:00:00Z", "pass": 1}  # fmt: skip
    doc.update(fields)
    return json.dumps(doc, separators=(",", ":")).encode()


# --- the parser -------------------------------------------------------------------------------


def test_a_canonical_line_and_its_json_twin_parse_the_same() -> None:
    entry = IndexEntry("m-1", "part-00002.tar.zst", 7, SHA, "2026-11-03T12:00:00Z", 3)
    assert IndexEntry.from_line(entry.to_line().rstrip(), 1, LAYOUT) == entry
    spaced = json.dumps(json.loads(entry.to_line()), indent=1).replace("\n", " ").encode()
    assert IndexEntry.from_line(spaced, 1, LAYOUT) == entry


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (line(size=1.0), "bad 'size'"),
        (line(size=-1), "bad 'size'"),
        (line(id="../etc"), "bad 'id'"),
        (line(part="part-1.tar.gz"), "bad 'part'"),
        (line(sha256="AB" * 32), "bad 'sha256'"),
        (line(**{"pass": 0}), "bad 'pass'"),
        (b'{"id":"m-1"}', "no 'part'"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff{", "not JSON"),
    ],
)
def test_every_line_the_checked_parser_refuses_is_still_refused(raw: bytes, problem: str) -> None:
    with pytest.raises(ExportError, match=problem):
        IndexEntry.from_line(raw, 4, LAYOUT)


def test_a_line_without_pass_belongs_to_pass_one() -> None:
    doc = json.loads(line())
    del doc["pass"]
    assert IndexEntry.from_line(json.dumps(doc).encode(), 1, LAYOUT).pass_number == 1


_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
_text = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    message_id=st.one_of(_ids, _text),
    part=st.one_of(st.sampled_from(["part-00001.tar.gz", "part-00012.tar", "part-1.tar"]), _text),
    size=st.one_of(st.integers(-3, 10**20), st.floats(allow_nan=False), st.booleans()),
    sha256=st.one_of(st.just(SHA), _text),
    received_at=_text,
    pass_number=st.one_of(st.integers(-1, 10**11), st.booleans()),
)
def test_the_fast_parser_never_disagrees_with_json(
    message_id: Any, part: Any, size: Any, sha256: Any, received_at: Any, pass_number: Any
) -> None:
    raw = line(id=message_id, part=part, size=size, sha256=sha256, received_at=received_at,
               **{"pass": pass_number})  # fmt: skip
    try:
        slow: Any = IndexEntry._from_json(raw, 1, LAYOUT)
    except ExportError as exc:
        slow = f"error: {exc}"
    try:
        fast: Any = IndexEntry.from_line(raw, 1, LAYOUT)
    except ExportError as exc:
        fast = f"error: {exc}"
    assert fast == slow


@settings(max_examples=300, deadline=None)
@given(
    message_id=st.one_of(_ids, _text),
    part=st.one_of(st.sampled_from(["part-00001.tar.gz", "part-00012.tar"]), _text),
    size=st.one_of(st.integers(0, 10**20), st.booleans()),
    sha256=st.one_of(st.just(SHA), _text),
    received_at=_text,
    pass_number=st.one_of(st.integers(1, 10**11), st.booleans()),
)
def test_a_line_is_written_exactly_as_json_would_write_it(
    message_id: Any, part: Any, size: Any, sha256: Any, received_at: Any, pass_number: Any
) -> None:
    entry = IndexEntry(message_id, part, size, sha256, received_at, pass_number)
    expected = line(id=message_id, part=part, size=size, sha256=sha256,
                    received_at=received_at, **{"pass": pass_number})  # fmt: skip
    assert entry.to_line() == expected + b"\n"


# --- the cache --------------------------------------------------------------------------------


def put_index(s3: Any, entries: list[IndexEntry]) -> None:
    body = b"".join(e.to_line() for e in entries)
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.index_key, Body=body)


def entries(count: int, part: str = "part-00001.tar.gz") -> list[IndexEntry]:
    return [IndexEntry(f"m-{i}", part, 10, SHA, "2026-11-03T12:00:00Z") for i in range(count)]


def test_an_unchanged_index_is_asked_for_but_not_sent_or_parsed(
    s3: Any, calls: Counter[str]
) -> None:
    put_index(s3, entries(5))
    first = read_index(s3, LAYOUT)
    misses = INDEX_CACHE.misses
    again = read_index(s3, LAYOUT)
    assert again is first and INDEX_CACHE.misses == misses
    assert calls["GetObject"] == 2  # S3 is asked every time (a conditional GET)


def test_a_rewritten_index_is_read_again(s3: Any) -> None:
    put_index(s3, entries(5))
    assert read_index(s3, LAYOUT).messages == 5  # type: ignore[union-attr]
    put_index(s3, entries(7))
    assert read_index(s3, LAYOUT).messages == 7  # type: ignore[union-attr]


def test_a_listing_that_shows_the_read_etag_saves_the_request(s3: Any, calls: Counter[str]) -> None:
    put_index(s3, entries(5))
    first = read_index(s3, LAYOUT)
    asked = calls["GetObject"]
    listing = list_objects(s3, BUCKET, LAYOUT.base)
    assert read_index(s3, LAYOUT, listing) is first and calls["GetObject"] == asked
    put_index(s3, entries(7))  # rewritten after that listing: a new listing shows a new ETag
    fresh = read_index(s3, LAYOUT, list_objects(s3, BUCKET, LAYOUT.base))
    assert fresh is not None and fresh.messages == 7
    assert calls["GetObject"] == asked + 1


def test_a_deleted_or_spoiled_index_is_never_answered_from_memory(s3: Any) -> None:
    put_index(s3, entries(5))
    assert read_index(s3, LAYOUT) is not None
    s3.delete_object(Bucket=BUCKET, Key=LAYOUT.index_key)
    assert read_index(s3, LAYOUT) is None
    put_index(s3, entries(5))
    assert read_index(s3, LAYOUT) is not None
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.index_key, Body=b'{"id": 1}\n')
    with pytest.raises(ExportError, match="bad 'id'"):
        read_index(s3, LAYOUT)
    with pytest.raises(ExportError, match="bad 'id'"):
        read_index(s3, LAYOUT)


def test_the_cache_holds_at_most_its_budget_of_entries() -> None:
    cache = IndexCache(max_entries=10)
    small, big = ExportIndex(tuple(entries(4)), "a"), ExportIndex(tuple(entries(11)), "b")
    cache.put(("e", "b", "1"), "t1", small)
    cache.put(("e", "b", "2"), "t2", small)
    cache.put(("e", "b", "3"), "t3", small)  # 12 > 10: the least recently used goes
    assert cache.get(("e", "b", "1")) is None and cache.get(("e", "b", "3")) is not None
    cache.put(("e", "b", "4"), "t4", big)  # larger than the whole budget: not kept
    assert cache.get(("e", "b", "4")) is None


def test_an_index_the_pass_wrote_is_known_without_reading_it_back(
    s3: Any, platform: FakePlatform, calls: Counter[str]
) -> None:
    export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
    for number in range(30):
        platform.put(SOURCE, "archive", f"late-{number}", b"x" * (100 + number), BASE_TIME)
    export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
    misses = INDEX_CACHE.misses
    remembered = read_index(s3, LAYOUT)
    assert INDEX_CACHE.misses == misses  # answered 304: it was remembered when written
    INDEX_CACHE.clear()
    parsed = read_index(s3, LAYOUT)
    assert remembered == parsed and remembered is not None and remembered.messages == 150


# --- the id set -------------------------------------------------------------------------------


@pytest.mark.parametrize("max_in_memory", [100_000, 0, 1_000], ids=["memory", "disk", "spills"])
def test_the_id_set_adds_all_or_nothing_and_looks_up_in_batches(max_in_memory: int) -> None:
    ids = IdSet(max_in_memory)
    try:
        assert ids.add_all([(f"m-{i}", SHA) for i in range(1200)], IdSet.RESUMED)
        assert not ids.add_all([("new-1", None), ("m-5", None)], IdSet.PACKED)
        assert "new-1" not in ids.lookup(["new-1"])  # the refused batch left nothing behind
        found = ids.lookup([f"m-{i}" for i in range(0, 1300, 7)])
        assert len(found) == len(range(0, 1200, 7))
        assert found["m-7"] == (IdSet.RESUMED, SHA, False)
        ids.mark_listed(["m-7", "m-14"])
        assert ids.lookup(["m-7"])["m-7"][2] is True
        assert ids.unlisted(IdSet.RESUMED) == 1198
        assert ids.on_disk is (max_in_memory < 1200)
    finally:
        ids.close()


def test_the_id_set_keeps_what_it_held_when_it_spills_to_disk() -> None:
    ids = IdSet(max_in_memory=10)
    try:
        assert ids.add_all([(f"m-{i}", SHA) for i in range(8)], IdSet.RESUMED)
        ids.mark_listed(["m-1", "m-2"])
        assert not ids.on_disk
        assert ids.add_all([(f"p-{i}", None) for i in range(5)], IdSet.PACKED)
        assert ids.on_disk  # 13 ids > 10: the database holds them all now
        assert ids.lookup(["m-1", "m-3", "p-4"]) == {
            "m-1": (IdSet.RESUMED, SHA, True),
            "m-3": (IdSet.RESUMED, SHA, False),
            "p-4": (IdSet.PACKED, None, False),
        }
        assert ids.unlisted(IdSet.RESUMED) == 6
        assert not ids.add_all([("m-0", None)], IdSet.PACKED)
    finally:
        ids.close()


def _passes(s3: Any, platform: FakePlatform) -> list[tuple[int, int, int, str]]:
    """Three passes with mail arriving and expiring between them: (new, expired, messages,
    index SHA-256) of each."""
    results = [export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")]
    for number in range(40):
        platform.put(SOURCE, "archive", f"late-{number}", b"y" * (300 + number), BASE_TIME)
    first = [i for i in platform.ids(SOURCE, "archive") if not i.startswith("late-")]
    for message_id in first[:25]:
        platform.remove(SOURCE, "archive", message_id)
    results.append(export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive"))
    results.append(export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive"))
    return [(r.new_messages, r.expired, r.messages, r.index_sha256) for r in results]


def test_passes_give_the_same_export_whether_the_ids_are_held_or_on_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []
    for limit in (idset.MAX_IDS_IN_MEMORY, 30):  # 30: every pass spills to SQLite
        monkeypatch.setattr(idset, "MAX_IDS_IN_MEMORY", limit)
        fake = FakePlatform()
        fake.add_messages(SOURCE, "archive", 120, size=2048)
        INDEX_CACHE.clear()
        with moto_bucket(monkeypatch, BUCKET, SETTINGS) as client:
            seen.append(_passes(client, fake))
    assert seen[0] == seen[1]
    assert [(new, expired, messages) for new, expired, messages, _ in seen[0]] == [
        (120, 0, 120),
        (40, 25, 160),
        (0, 25, 160),
    ]


def test_a_small_delta_is_split_into_a_part_per_upload_worker() -> None:
    cfg = replace(SETTINGS, part_size_bytes=32 * MiB, upload_workers=4)
    assert split_size(10 * MiB, cfg) == -(-10 * MiB // 4)  # four parts compress at once
    assert split_size(100, cfg) == MIN_SPLIT_BYTES  # never below a useful part
    assert split_size(10 * 1024 * MiB, cfg) == 32 * MiB  # a bulk pass: the configured size


def test_a_pass_given_its_listing_spreads_its_delta_over_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = replace(SETTINGS, part_size_bytes=32 * MiB, upload_workers=3)
    parts = []
    for held in (False, True):
        fake = FakePlatform()
        fake.add_messages(SOURCE, "archive", 30, size=100 * 1024)  # 3 MB, one part's worth
        INDEX_CACHE.clear()
        with moto_bucket(monkeypatch, BUCKET, cfg) as client:
            source = list_source(fake, SOURCE, "archive") if held else None
            result = export_store(fake, client, cfg, NAME, SOURCE, "archive", source=source)
            assert result.messages == 30
            assert verify_store(fake, client, cfg, NAME, SOURCE, "archive").ok
            parts.append(len(result.parts))
    assert parts == [1, 3]


# --- one listing, three readers ---------------------------------------------------------------


def test_one_listing_serves_the_pass_its_verification_and_the_import(
    s3: Any, platform: FakePlatform
) -> None:
    platform.add_messages(TARGET, "archive", 0)
    source = list_source(platform, SOURCE, "archive")
    listings = platform.calls["list_messages"]
    export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive", source=source)
    result = verify_store(platform, s3, SETTINGS, NAME, SOURCE, "archive", source=source)
    assert result.ok and result.source_messages == 120
    assert platform.calls["list_messages"] == listings  # the source was not listed again
    imported = import_store(platform, s3, SETTINGS, NAME, TARGET, "archive", "k",
                            from_account=SOURCE, source=source)  # fmt: skip
    assert imported.imported == 120
    assert set(platform.ids(TARGET, "archive")) == {m.id for m in source}


def test_a_shared_listing_is_only_a_superset_after_expiry(s3: Any, platform: FakePlatform) -> None:
    """A message that expired after the shared listing was taken is skipped by the pass (it
    is gone) and the verification of the rest still holds."""
    source = list_source(platform, SOURCE, "archive")
    gone = source[10].id
    platform.remove(SOURCE, "archive", gone)
    export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive", source=source)
    index = read_index(s3, LAYOUT)
    assert index is not None and gone not in {e.id for e in index.entries}
    assert index.messages == 119


def test_settings_for_a_second_store_do_not_share_a_cache_entry(s3: Any) -> None:
    other = store_layout(replace(SETTINGS), NAME, "quarantine")
    put_index(s3, entries(3))
    s3.put_object(Bucket=BUCKET, Key=other.index_key, Body=entries(1)[0].to_line())
    assert read_index(s3, LAYOUT).messages == 3  # type: ignore[union-attr]
    assert read_index(s3, other).messages == 1  # type: ignore[union-attr]
