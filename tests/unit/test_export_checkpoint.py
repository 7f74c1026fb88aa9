"""The journal's checkpoint: a pass takes the records of the current index from the index
instead of reading every record object, and ends exactly where reading them would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.unit.fake_platform import BASE_TIME, FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.export import checkpoint
from transfer_runner.export.exporter import export_store
from transfer_runner.export.index import INDEX_CACHE, read_index
from transfer_runner.export.layout import store_layout
from transfer_runner.export.objects import list_objects
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE = "C-1001"
BASE = f"runs/{NAME}/archive/"
CHECKPOINT = f"{BASE}_journal/checkpoint.json"
SETTINGS = S3Settings(f"s3://{BUCKET}/runs/", part_size_bytes=64 * 1024)

Damage = Callable[[Any, FakePlatform], None]


def get(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def all_objects(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=BASE).get("Contents", ())
    return {o["Key"]: get(s3, o["Key"]) for o in listing}


def gets_by_key(s3: Any) -> Counter[str]:
    seen: Counter[str] = Counter()

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetObject":
            seen[params["Key"]] += 1

    s3.meta.events.register("before-parameter-build.s3", count)
    return seen


def _truncate_part(s3: Any, platform: FakePlatform) -> None:
    put(s3, f"{BASE}part-00002.tar.zst", b"short")


def _delete_record(s3: Any, platform: FakePlatform) -> None:
    s3.delete_object(Bucket=BUCKET, Key=f"{BASE}_journal/part-00003.json")


def _checkpoint_of_another_index(s3: Any, platform: FakePlatform) -> None:
    doc = json.loads(get(s3, CHECKPOINT))
    doc["index_sha256"] = "0" * 64
    put(s3, CHECKPOINT, json.dumps(doc).encode())


def _checkpoint_claims_more(s3: Any, platform: FakePlatform) -> None:
    doc = json.loads(get(s3, CHECKPOINT))
    doc["parts"][0]["messages"] += 1
    put(s3, CHECKPOINT, json.dumps(doc).encode())


def _garbage_checkpoint(s3: Any, platform: FakePlatform) -> None:
    put(s3, CHECKPOINT, b"{not json")


def _index_rewritten_by_hand(s3: Any, platform: FakePlatform) -> None:
    """Same entries, other bytes (keys reordered): the lines would not give it back."""
    lines = [json.loads(line) for line in get(s3, f"{BASE}index.jsonl").splitlines()]
    body = b"".join(json.dumps(dict(reversed(d.items()))).encode() + b"\n" for d in lines)
    put(s3, f"{BASE}index.jsonl", body)
    doc = json.loads(get(s3, CHECKPOINT))
    doc["index_sha256"], doc["index_bytes"] = _sha(body), len(body)
    put(s3, CHECKPOINT, json.dumps(doc).encode())


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _nothing(s3: Any, platform: FakePlatform) -> None:
    pass


def _mail_flows(platform: FakePlatform) -> None:
    for number in range(40):
        platform.put(SOURCE, "archive", f"late-{number:03d}", b"z" * (900 + number), BASE_TIME)
    for message_id in [i for i in platform.ids(SOURCE, "archive") if i.startswith("msg")][:7]:
        platform.remove(SOURCE, "archive", message_id)


@contextmanager
def first_pass(
    monkeypatch: pytest.MonkeyPatch, messages: int
) -> Iterator[tuple[Any, FakePlatform]]:
    """A store of `messages` exported once, then mail flows: (S3 client, platform)."""
    INDEX_CACHE.clear()
    platform = FakePlatform()
    platform.add_messages(SOURCE, "archive", messages, size=2048)
    with moto_bucket(monkeypatch, BUCKET, SETTINGS) as s3:
        export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
        _mail_flows(platform)
        yield s3, platform


def run_passes(
    monkeypatch: pytest.MonkeyPatch, damage: Damage, *, checkpoint: bool
) -> tuple[Any, dict[str, bytes], Counter[str], bool]:
    """Pass 1, mail flows, damage, pass 2 (in a new process: nothing cached), pass 3.
    With `checkpoint` False the checkpoint is deleted before pass 2 (the old way)."""
    with first_pass(monkeypatch, 300) as (s3, platform):
        damage(s3, platform)
        if not checkpoint:
            s3.delete_object(Bucket=BUCKET, Key=CHECKPOINT)
        INDEX_CACHE.clear()
        gets = gets_by_key(s3)
        second = export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
        reads = Counter(gets)
        third = export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
        assert not third.wrote and third.as_found() == second.as_found()
        ok = verify_store(platform, s3, SETTINGS, NAME, SOURCE, "archive").ok
        return second, all_objects(s3), reads, ok


def record_reads(reads: Counter[str]) -> int:
    return sum(n for key, n in reads.items() if "/_journal/part-" in key)


def test_a_pass_takes_the_records_of_the_current_index_from_the_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, objects, reads, ok = run_passes(monkeypatch, _nothing, checkpoint=True)
    assert ok and result.new_messages == 40 and result.expired == 7
    assert record_reads(reads) == 0  # not one record object read
    assert reads[CHECKPOINT] == 1
    old_way = run_passes(monkeypatch, _nothing, checkpoint=False)
    assert record_reads(old_way[2]) == len(result.parts) - 1  # every record of pass 1
    assert (old_way[0], old_way[1], old_way[3]) == (result, objects, ok)


@pytest.mark.parametrize(
    "damage",
    [
        _truncate_part,
        _delete_record,
        _checkpoint_of_another_index,
        _checkpoint_claims_more,
        _garbage_checkpoint,
        _index_rewritten_by_hand,
    ],
)
def test_whatever_disagrees_with_the_checkpoint_ends_where_reading_the_records_does(
    monkeypatch: pytest.MonkeyPatch, damage: Damage
) -> None:
    result, objects, reads, ok = run_passes(monkeypatch, damage, checkpoint=True)
    old_way = run_passes(monkeypatch, damage, checkpoint=False)
    assert (result, objects, ok) == (old_way[0], old_way[1], old_way[3])
    assert ok and json.loads(objects[f"{BASE}index.jsonl"].splitlines()[0])["id"]
    if damage is _truncate_part:
        assert record_reads(reads) == 1  # only the record that disagrees is read
    elif damage is _delete_record:
        assert record_reads(reads) == 0  # a part without a record is exported again
    else:
        assert record_reads(reads) == record_reads(old_way[2])  # the checkpoint is not used


def _index_with_a_blank_line(s3: Any, platform: FakePlatform) -> None:
    """The same lines and one blank one: every entry is there, the byte counts are not."""
    body = get(s3, f"{BASE}index.jsonl")
    body = body.replace(b"\n", b"\n\n", 1)
    put(s3, f"{BASE}index.jsonl", body)
    doc = json.loads(get(s3, CHECKPOINT))
    doc["index_sha256"], doc["index_bytes"] = _sha(body), len(body)
    put(s3, CHECKPOINT, json.dumps(doc).encode())


def test_an_index_that_is_not_line_for_entry_is_not_cut_into_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, objects, reads, ok = run_passes(monkeypatch, _index_with_a_blank_line, checkpoint=True)
    old_way = run_passes(monkeypatch, _index_with_a_blank_line, checkpoint=False)
    assert ok and (result, objects) == (old_way[0], old_way[1])
    assert record_reads(reads) == record_reads(old_way[2]) > 0
    assert b"\n\n" not in objects[f"{BASE}index.jsonl"]


def test_records_cut_from_the_stored_index_are_those_formatted_from_its_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lines kept for the next pass are the same whether the index's bytes are at hand
    (cut at the checkpoint's sizes) or not (formatted again and hashed)."""
    with first_pass(monkeypatch, 120) as (s3, platform):
        export_store(platform, s3, SETTINGS, NAME, SOURCE, "archive")
        INDEX_CACHE.clear()
        layout = store_layout(SETTINGS, NAME, "archive")
        listing = list_objects(s3, BUCKET, layout.base)
        index = read_index(s3, layout)
        assert index is not None and index.raw == get(s3, layout.index_key)
        doc = json.loads(get(s3, CHECKPOINT))
        records = sorted(
            (checkpoint.vouched_record(layout, item) for item in doc["parts"]),
            key=lambda r: r.number,
        )
        assert len({r.pass_number for r in records}) == 2
        stored = checkpoint.records_of_index(layout, index, records, listing)
        formatted = checkpoint.records_of_index(
            layout, dataclasses.replace(index, raw=None), records, listing
        )
        assert stored == formatted and len(stored) == len(records)
        assert b"".join(stored[r.number].lines for r in records) == index.raw
