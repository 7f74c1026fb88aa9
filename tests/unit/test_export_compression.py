"""Compression chosen by the data ("auto", the default): zstd, or a plain tar for a part whose
messages do not compress (attachments that are images or archives already)."""

from __future__ import annotations

import io
import random
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.fake_platform import BASE_TIME, FakePlatform, make_message
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export.exporter import export_store
from transfer_runner.export.importer import import_store
from transfer_runner.export.packing import AUTO_MIN_SAVING, PartWriter, read_members
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE, TARGET = "C-1001", "A-2001"
BASE = f"runs/{NAME}/archive/"
TEXT, OPAQUE, TAIL = 150, 40, 120  # text (2 KiB), opaque (32 KiB), text again
OPAQUE_SIZE = 32 * 1024  # large enough that tar headers (which compress) weigh < 2%


def settings(**changes: Any) -> S3Settings:
    return replace(S3Settings(f"s3://{BUCKET}/runs/", part_size_bytes=200 * 1024), **changes)


def opaque(seed: int, size: int) -> bytes:
    """A message whose body does not compress: a JPEG or a ZIP attached as raw bytes."""
    head = f"Subject: photo {seed}\r\n\r\n".encode()
    return head + random.Random(seed).randbytes(size - len(head))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET, settings()) as client:
        yield client


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", TEXT, size=2048)
    for n in range(TEXT, TEXT + OPAQUE):
        when = BASE_TIME + timedelta(minutes=n)
        fake.put(SOURCE, "archive", f"msg-{n:05d}", opaque(n, OPAQUE_SIZE), when)
    for n in range(TEXT + OPAQUE, TEXT + OPAQUE + TAIL):
        when = BASE_TIME + timedelta(minutes=n)
        fake.put(
            SOURCE, "archive", f"msg-{n:05d}", make_message(7, SOURCE, "archive", n, 2048), when
        )
    return fake


def part_kinds(s3: Any) -> Counter[str]:
    """Parts under the store by extension, with each one's Content-Type checked."""
    kinds: Counter[str] = Counter()
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{BASE}part-")["Contents"]
    for item in listing:
        key = item["Key"]
        kind = s3.head_object(Bucket=BUCKET, Key=key)["ContentType"]
        extension = key.split(".", 1)[1]
        assert kind == {"tar.zst": "application/zstd", "tar": "application/x-tar"}[extension]
        kinds[extension] += 1
    return kinds


def test_a_part_that_does_not_compress_is_stored_as_a_plain_tar() -> None:
    writer = PartWriter("part-00001.tar.zst", "auto")
    for n in range(20):
        writer.add(f"m-{n}.eml", opaque(n, OPAQUE_SIZE), 0)
    tar_bytes = writer.tar_bytes
    try:
        assert writer.finish() > tar_bytes  # the whole tar, its closing blocks included
        assert writer.codec == "none"
        with tarfile.open(fileobj=writer.file, mode="r:") as tar:  # plain tar, no codec
            assert len(tar.getnames()) == 20
    finally:
        writer.close()


def test_a_part_that_compresses_is_zstd_and_reads_back() -> None:
    writer = PartWriter("part-00001.tar.zst", "auto")
    raw = b"Subject: hello\r\n\r\n" + b"the same line of text again\r\n" * 200
    for n in range(20):
        writer.add(f"m-{n}.eml", raw, 0)
    tar_bytes = writer.tar_bytes
    try:
        size = writer.finish()
        assert writer.codec == "zstd" and size < tar_bytes * (1 - AUTO_MIN_SAVING)
        assert [m.data for m in read_members(writer.file, keep_data=True)] == [raw] * 20
    finally:
        writer.close()


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_an_explicit_compression_is_kept_even_when_it_does_not_pay(compression: str) -> None:
    writer = PartWriter("part-00001", compression)
    writer.add("m.eml", opaque(1, 8192), 0)
    try:
        writer.finish()
        assert writer.codec == compression
    finally:
        writer.close()


def test_a_mixed_store_exports_verifies_and_imports(s3: Any, platform: FakePlatform) -> None:
    cfg = settings()
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    kinds = part_kinds(s3)
    assert kinds["tar.zst"] >= 2 and kinds["tar"] >= 2, kinds
    index = s3.get_object(Bucket=BUCKET, Key=f"{BASE}index.jsonl")["Body"].read().decode()
    named = {line.split('"part":"')[1].split('"')[0] for line in index.splitlines()}
    assert {f"{BASE}{name}" for name in named} == set(result.parts)  # entries name stored parts
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok
    import_store(platform, s3, cfg, NAME, TARGET, "archive", "imp", from_account=SOURCE)
    for message_id in platform.ids(SOURCE, "archive"):
        source = platform.fetch_message(SOURCE, "archive", message_id)
        assert platform.fetch_message(TARGET, "archive", message_id) == source


def test_a_plain_part_is_resumed_not_uploaded_again(s3: Any, platform: FakePlatform) -> None:
    cfg = settings(upload_workers=1, parts_in_flight=1)
    expected = export_store(platform, s3, cfg, "fresh-run", SOURCE, "archive")
    puts: Counter[str] = Counter()
    s3.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: puts.update([params["Key"]])
    )
    real = platform.fetch_message

    def crash_at_the_last(account_id: str, store: Any, wanted: str) -> bytes:
        if wanted == f"msg-{TEXT + OPAQUE + TAIL - 1:05d}":  # in the last batch fetched
            raise ExportError("simulated crash")
        return real(account_id, store, wanted)

    platform.fetch_message = crash_at_the_last  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="simulated crash"):
        export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    plain = {k for k in puts if k.endswith(".tar")}
    assert plain, f"no plain part was journalled before the crash: {sorted(puts)}"
    puts.clear()
    platform.fetch_message = real  # type: ignore[method-assign]
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert not plain & set(puts), "a journalled plain part was uploaded again"
    assert result.index_sha256 != "" and result.messages == TEXT + OPAQUE + TAIL
    assert [p.rsplit("/", 1)[1] for p in result.parts] == [
        p.rsplit("/", 1)[1] for p in expected.parts
    ]
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_plain_parts_open_with_tar_alone(s3: Any, platform: FakePlatform) -> None:
    result = export_store(platform, s3, settings(), NAME, SOURCE, "archive")
    plain = [key for key in result.parts if key.endswith(".tar")]
    body = s3.get_object(Bucket=BUCKET, Key=plain[0])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        assert all(name.endswith(".eml") for name in tar.getnames())


def test_a_part_is_byte_for_byte_the_tar_tarfile_writes() -> None:
    """PartWriter writes headers itself (the profile's 10% in tarfile.addfile): the same bytes
    as tarfile's pax writer, long names (pax headers) and block-sized bodies included."""
    members = [
        ("m-1.eml", b"Subject: a\r\n\r\nbody\r\n", 1_700_000_000),
        ("x" * 124 + ".eml", b"long name", 1_700_000_001),  # over 100 characters: pax
        ("m-3.eml", b"z" * 1024, 1_700_000_002),  # exactly two blocks: no padding
        ("m-4.eml", b"", 1_700_000_003),
        ("y" * 96 + ".eml", b"just fits ustar", 1_700_000_004),  # 100 characters
    ]
    writer = PartWriter("part-00001.tar", "none")
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, raw, mtime in members:
            writer.add(name, raw, mtime)
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(raw), mtime, 0o644
            tar.addfile(info, io.BytesIO(raw))
    try:
        writer.finish()
        assert writer.file.read() == expected.getvalue()
    finally:
        writer.close()
