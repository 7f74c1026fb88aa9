"""Resuming at part granularity, orphaned multipart uploads, overlap, zstd and the receipt."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.fake_platform import FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ConfigError, ExportError
from transfer_runner.export.exporter import export_store
from transfer_runner.export.extract import extract_part
from transfer_runner.export.importer import import_store
from transfer_runner.export.receipt import read_receipt, write_receipt
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE, TARGET = "C-1001", "A-2001"
BASE = f"runs/{NAME}/archive/"


def settings(**changes: Any) -> S3Settings:
    return replace(S3Settings(f"s3://{BUCKET}/runs/", part_size_bytes=64 * 1024), **changes)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET, settings()) as client:
        yield client


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 300, size=2048)
    return fake


@pytest.fixture
def part_puts(s3: Any) -> Counter[str]:
    """Keys written by PutObject (and multipart uploads), by key."""
    seen: Counter[str] = Counter()

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("PutObject", "CreateMultipartUpload"):
            seen[params["Key"]] += 1

    s3.meta.events.register("before-parameter-build.s3", count)
    return seen


def keys(s3: Any, prefix: str = BASE) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", ()))


def index_ids(s3: Any) -> list[str]:
    body = s3.get_object(Bucket=BUCKET, Key=f"{BASE}index.jsonl")["Body"].read()
    return [json.loads(line)["id"] for line in body.decode().splitlines()]


def fresh(platform: FakePlatform, s3: Any, cfg: S3Settings) -> Any:
    """The result of an uninterrupted export of the same data under another name."""
    return export_store(platform, s3, cfg, "fresh-run", SOURCE, "archive")


def crash_after(platform: FakePlatform, message_id: str) -> None:
    real = platform.fetch_message

    def fetch(account_id: str, store: Any, wanted: str) -> bytes:
        if wanted == message_id:
            raise ExportError("simulated crash")
        return real(account_id, store, wanted)

    platform.fetch_message = fetch  # type: ignore[method-assign]
    platform.restore_fetch = real  # type: ignore[attr-defined]


def test_resume_skips_journalled_parts_and_gives_the_uninterrupted_result(
    s3: Any, platform: FakePlatform, part_puts: Counter[str]
) -> None:
    cfg = settings(upload_workers=1, parts_in_flight=1)
    expected = fresh(platform, s3, cfg)
    part_puts.clear()
    crash_after(platform, "msg-00200")
    with pytest.raises(ExportError, match="simulated crash"):
        export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    done = sorted(k for k in keys(s3) if "/_journal/" in k)
    assert done and f"{BASE}index.jsonl" not in keys(s3)
    first_run = Counter(part_puts)
    part_puts.clear()
    platform.fetch_message = platform.restore_fetch  # type: ignore[attr-defined,method-assign]
    fetched = platform.calls["fetch_message"]

    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert result.index_sha256 == expected.index_sha256
    assert result.messages == 300 and len(result.parts) == len(expected.parts)
    journalled_parts = {k.replace("_journal/", "").replace(".json", ".tar.zst") for k in done}
    assert not journalled_parts & set(part_puts), "a completed part was uploaded again"
    assert all(first_run[k] == 1 for k in journalled_parts)
    assert platform.calls["fetch_message"] - fetched < 300 - 5 * len(done)
    ids = index_ids(s3)
    assert ids == platform.ids(SOURCE, "archive")  # each once, in listing order
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_orphaned_multipart_uploads_under_the_store_are_aborted(
    s3: Any, platform: FakePlatform
) -> None:
    mine = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{BASE}part-00002.tar.zst")
    other = s3.create_multipart_upload(Bucket=BUCKET, Key="runs/other-one/archive/part-1.tar")
    export_store(platform, s3, settings(), NAME, SOURCE, "archive")
    open_ids = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ())}
    assert mine["UploadId"] not in open_ids
    assert other["UploadId"] in open_ids


def test_a_gap_in_the_journal_is_filled_and_only_it_is_uploaded(
    s3: Any, platform: FakePlatform, part_puts: Counter[str]
) -> None:
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=f"{BASE}index.jsonl")
    s3.delete_object(Bucket=BUCKET, Key=first.parts[2])
    part_puts.clear()
    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert again.as_found() == first.as_found()
    assert sorted(part_puts) == sorted(
        [
            first.parts[2],
            f"{BASE}_journal/part-00003.json",
            f"{BASE}index.jsonl",
            f"{BASE}_journal/checkpoint.json",
        ]
    )


@pytest.mark.parametrize(
    "damage",
    [
        "truncate-part",
        "garbage-record",
        "record-of-other-compression",
        "repeated-id",
        "record-line-past-the-limit",
    ],
)
def test_a_record_that_does_not_vouch_for_its_part_is_dropped_and_redone(
    s3: Any, platform: FakePlatform, damage: str
) -> None:
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=f"{BASE}index.jsonl")
    record = f"{BASE}_journal/part-00002.json"
    body = s3.get_object(Bucket=BUCKET, Key=record)["Body"].read()
    if damage == "truncate-part":
        s3.put_object(Bucket=BUCKET, Key=first.parts[1], Body=b"short")
    elif damage == "garbage-record":
        s3.put_object(Bucket=BUCKET, Key=record, Body=b"{not json\n")
    elif damage == "record-line-past-the-limit":  # 128 KiB in one line: refused as it is read
        s3.put_object(Bucket=BUCKET, Key=record, Body=body + b"x" * (128 * 1024) + b"\n")
    elif damage == "record-of-other-compression":
        s3.put_object(Bucket=BUCKET, Key=record, Body=body.replace(b".tar.zst", b".tar.gz"))
    else:  # part 2's record also claims a message of part 1
        line_of_part_1 = (
            s3.get_object(Bucket=BUCKET, Key=f"{BASE}_journal/part-00001.json")["Body"]
            .read()
            .splitlines()[1]
        )
        line = line_of_part_1.replace(b"part-00001", b"part-00002")
        s3.put_object(Bucket=BUCKET, Key=record, Body=body + line + b"\n")
    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert again.as_found() == first.as_found()
    assert index_ids(s3) == platform.ids(SOURCE, "archive")
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_a_changed_compression_discards_the_journal(s3: Any, platform: FakePlatform) -> None:
    first = export_store(platform, s3, settings(), NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=f"{BASE}index.jsonl")
    cfg = settings(compression="none")
    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert all(k.endswith(".tar") for k in again.parts)
    assert not set(first.parts) & set(keys(s3))  # the old .tar.zst parts are gone
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_a_repeated_id_in_the_listing_is_still_refused(s3: Any, platform: FakePlatform) -> None:
    real = platform.list_messages

    def twice(account_id: str, store: Any, cursor: Any = None, limit: int = 500) -> Any:
        page = real(account_id, store, cursor, limit)
        return replace(page, messages=page.messages + page.messages[:1])

    platform.list_messages = twice  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="repeats msg-00000"):
        export_store(platform, s3, settings(), NAME, SOURCE, "archive")


def test_overlap_keeps_at_most_parts_in_flight_and_gives_the_same_export(
    s3: Any, platform: FakePlatform
) -> None:
    serial = fresh(platform, s3, settings(upload_workers=1, parts_in_flight=1))
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow_part(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "PutObject" and params["Key"].endswith(".tar.zst"):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1

    s3.meta.events.register("before-parameter-build.s3", slow_part)
    cfg = settings(upload_workers=3, parts_in_flight=2)
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert 2 <= state["peak"] <= 2
    assert result.index_sha256 == serial.index_sha256


def test_a_failing_upload_stops_packing_early(s3: Any, platform: FakePlatform) -> None:
    def refuse(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "PutObject" and params["Key"].endswith("part-00002.tar.zst"):
            raise ExportError("disk on fire")

    s3.meta.events.register("before-parameter-build.s3", refuse)
    cfg = settings(upload_workers=1, parts_in_flight=1)
    with pytest.raises(ExportError, match="disk on fire"):
        export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert platform.calls["fetch_message"] < 200


def test_zstd_parts_round_trip_and_extract(s3: Any, platform: FakePlatform, tmp_path: Path) -> None:
    cfg = settings(compression="zstd")
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert result.parts[0].endswith(".tar.zst")
    body = s3.get_object(Bucket=BUCKET, Key=result.parts[0])
    data = body["Body"].read()
    assert data[:4] == b"\x28\xb5\x2f\xfd" and body["ContentType"] == "application/zstd"
    assert result.compressed_bytes < result.bytes
    written = extract_part(io.BytesIO(data), tmp_path / "restore")
    assert written[0].read_bytes() == platform.raw(SOURCE, "archive", "msg-00000")
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok
    assert (
        import_store(platform, s3, cfg, NAME, TARGET, "archive", "k", from_account=SOURCE).imported
        == 300
    )


def test_a_flipped_byte_in_a_zstd_part_fails_verify(s3: Any, platform: FakePlatform) -> None:
    cfg = settings(compression="zstd")
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=result.parts[1])["Body"].read())
    data[len(data) // 2] ^= 0x40
    s3.put_object(Bucket=BUCKET, Key=result.parts[1], Body=bytes(data))
    verified = verify_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert not verified.ok and any("part-00002" in p for p in verified.problems)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"upload_workers": 0}, "upload_workers must be at least 1"),
        ({"parts_in_flight": 0}, "parts_in_flight must be at least 1"),
        ({"upload_workers": True}, "upload_workers must be an integer"),
        ({"compression": "bz2"}, "auto, zstd, gzip, none"),
    ],
)
def test_new_settings_are_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        S3Settings("s3://exports", **changes)


def _verified_facts(platform: FakePlatform, s3: Any, cfg: S3Settings) -> dict[str, Any]:
    stores = {}
    for store in ("archive", "quarantine"):
        export_store(platform, s3, cfg, NAME, SOURCE, store)
        result = verify_store(platform, s3, cfg, NAME, SOURCE, store)
        assert result.ok
        stores[store] = {"verified": True, "index_sha256": result.index_sha256}
    return stores


def test_receipt_is_written_once_and_vouches_only_for_the_verified_index(
    s3: Any, platform: FakePlatform
) -> None:
    platform.add_messages(SOURCE, "quarantine", 30, size=1000)
    cfg = settings()
    stores = _verified_facts(platform, s3, cfg)
    stores["archive"]["verified_at"] = "2026-12-01T10:00:00Z"
    moment = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    receipt = write_receipt(s3, cfg, NAME, stores, "abc123", now=moment)
    assert receipt.written and receipt.key == f"runs/{NAME}/receipt.json"
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=receipt.key)["Body"].read())
    assert doc["transfer"] == NAME and doc["git_commit"] == "abc123"
    assert doc["written_at"] == "2026-12-01T10:05:00Z" and doc["runner_version"]
    assert doc["destination"] == f"s3://{BUCKET}/runs/{NAME}/"
    archive = doc["stores"]["archive"]
    assert (archive["messages"], archive["bytes"]) == (300, 300 * 2048)
    assert archive["index_sha256"] == stores["archive"]["index_sha256"]
    assert archive["verified_at"] == "2026-12-01T10:00:00Z" and archive["exported_at"]
    assert doc["totals"]["messages"] == 330
    head = s3.head_object(Bucket=BUCKET, Key=receipt.key, ChecksumMode="ENABLED")
    assert head.get("ChecksumSHA256")

    again = write_receipt(s3, cfg, NAME, stores, "abc123")
    assert not again.written and again.sha256 == receipt.sha256
    assert read_receipt(s3, cfg, NAME) == again
    assert write_receipt(s3, cfg, NAME, stores, "def456").written  # a new commit: rewritten

    stores["archive"]["index_sha256"] = "0" * 64
    with pytest.raises(ExportError, match="the verified one 0000"):
        write_receipt(s3, cfg, NAME, stores, "abc123")


def test_no_receipt_for_an_incomplete_export(s3: Any, platform: FakePlatform) -> None:
    cfg = settings()
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=result.parts[0])
    facts = {"archive": {"index_sha256": result.index_sha256}}
    with pytest.raises(ExportError, match="not complete"):
        write_receipt(s3, cfg, NAME, facts, None)
    assert read_receipt(s3, cfg, NAME) is None
