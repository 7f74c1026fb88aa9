"""export/layout.py and export/packing.py: keys, names, and parts that any tar can read."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from transfer_runner.errors import ExportError
from transfer_runner.export.layout import (
    StoreLayout,
    check_message_id,
    check_store,
    check_transfer_name,
    store_layout,
)
from transfer_runner.export.packing import PartWriter, read_members
from transfer_runner.s3_client import S3Settings


def test_keys_of_the_final_layout() -> None:
    layout = store_layout(S3Settings("s3://exports/runs/"), "acme-com", "archive")
    assert layout.bucket == "exports"
    assert layout.index_key == "runs/acme-com/archive/index.jsonl"
    assert layout.part_name(1) == "part-00001.tar.zst"  # "auto": zstd, or none when it does
    assert layout.part_names(1) == ("part-00001.tar.zst", "part-00001.tar")  # not compress
    assert layout.part_key("part-00012.tar.gz") == "runs/acme-com/archive/part-00012.tar.gz"
    gzipped = store_layout(S3Settings("s3://exports", compression="gzip"), "acme-com", "archive")
    assert gzipped.part_names(7) == ("part-00007.tar.gz",)
    plain = store_layout(S3Settings("s3://exports", compression="none"), "acme-com", "quarantine")
    assert plain.index_key == "acme-com/quarantine/index.jsonl"
    assert plain.part_name(3) == "part-00003.tar"
    assert plain.part_name(123456) == "part-123456.tar"


PART_NAMES = [
    ("part-00001.tar.gz", 1),
    ("part-00001.tar", 1),
    ("part-99999.tar.gz", 99999),
    ("part-123456.tar", 123456),
    ("part-00000.tar.gz", None),
    ("part-0001.tar.gz", None),
    ("part-000001.tar.gz", None),
    ("part-00001.tar.zst", 1),
    ("part-00001.tar.bz2", None),
    ("part-00001.tgz", None),
    ("part-0000a.tar.gz", None),
    ("part-00001.tar.gz/../../x", None),
    ("../part-00001.tar.gz", None),
    ("index.jsonl", None),
    ("part-١٢٣٤٥.tar", None),
]


@pytest.mark.parametrize(("name", "number"), PART_NAMES)
def test_part_number(name: str, number: int | None) -> None:
    layout = store_layout(S3Settings("s3://exports/runs"), "acme-com", "archive")
    assert layout.part_number(name) == number
    if number is None:
        with pytest.raises(ExportError):
            layout.part_key(name)


def test_is_part_key_only_directly_under_the_store() -> None:
    layout = store_layout(S3Settings("s3://exports/runs"), "acme-com", "archive")
    assert layout.is_part_key("runs/acme-com/archive/part-00002.tar")
    assert not layout.is_part_key("runs/acme-com/archive/index.jsonl")
    assert not layout.is_part_key("runs/acme-com/quarantine/part-00002.tar.gz")
    assert not layout.is_part_key("runs/acme-com/archive/x/part-00002.tar.gz")


@pytest.mark.parametrize("name", ["acme-com", "a", "a1", "x" * 63, "0-9"], ids=lambda n: n[:10])
def test_transfer_names_accepted(name: str) -> None:
    assert check_transfer_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Acme", "acme_com", "-acme", "acme-", "x" * 64, "a.b", "a/b", "../x", None, 5],
    ids=repr,
)
def test_transfer_names_rejected_before_any_key(name: object) -> None:
    with pytest.raises(ExportError, match="DNS label"):
        store_layout(S3Settings("s3://exports"), name, "archive")  # type: ignore[arg-type]
    with pytest.raises(ExportError):
        check_transfer_name(name)


@pytest.mark.parametrize("store", ["inbox", "Archive", "", None, "archive/.."])
def test_stores_rejected(store: object) -> None:
    with pytest.raises(ExportError, match="store must be one of"):
        store_layout(S3Settings("s3://exports"), "acme-com", store)  # type: ignore[arg-type]
    with pytest.raises(ExportError):
        check_store(store)


@pytest.mark.parametrize("message_id", ["m1", "A", "msg-00001", "a.b_c-d", "9" + "x" * 127])
def test_message_ids_accepted(message_id: str) -> None:
    assert check_message_id(message_id) == message_id
    assert StoreLayout.member_name(message_id) == f"{message_id}.eml"
    assert StoreLayout.message_id(f"{message_id}.eml") == message_id


UNSAFE_IDS = [
    "",
    ".hidden",
    "-dash",
    "_under",
    "../evil",
    "a/b",
    "a\\b",
    "/abs",
    "a b",
    "a\x00b",
    "é",
    "x" * 129,
    "<id@host>",
]


@pytest.mark.parametrize("message_id", UNSAFE_IDS, ids=repr)
def test_unsafe_message_ids_rejected(message_id: str) -> None:
    with pytest.raises(ExportError, match="not safe as a file name"):
        StoreLayout.member_name(message_id)
    assert StoreLayout.message_id(f"{message_id}.eml") is None


def _part(compression: str, messages: dict[str, bytes]) -> bytes:
    writer = PartWriter("part-00001", compression)
    try:
        for index, (message_id, raw) in enumerate(messages.items()):
            writer.add(f"{message_id}.eml", raw, 1_790_000_000 + index)
        size = writer.finish()
        data = writer.file.read()
    finally:
        writer.close()
    assert len(data) == size
    return data


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_parts_are_plain_tars_and_deterministic(compression: str) -> None:
    messages = {f"m{i}": f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() * (i + 1) for i in range(5)}
    data = _part(compression, messages)
    assert data == _part(compression, messages)  # same messages, same bytes
    if compression == "gzip":
        assert data[:2] == b"\x1f\x8b"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # random access, as `tar` would
        names = tar.getnames()
        assert names == [f"m{i}.eml" for i in range(5)]
        member = tar.getmember("m3.eml")
        assert member.isreg() and member.mode == 0o644 and member.mtime == 1_790_000_003
        assert tar.extractfile(member).read() == messages["m3"]  # type: ignore[union-attr]
    read = list(read_members(io.BytesIO(data), keep_data=True))
    assert [m.name for m in read] == names
    assert all(m.is_file for m in read)
    assert [m.sha256 for m in read] == [hashlib.sha256(v).hexdigest() for v in messages.values()]
    assert [m.data for m in read] == list(messages.values())
    assert all(m.data is None for m in read_members(io.BytesIO(data)))


def test_an_abandoned_part_closes_cleanly() -> None:
    writer = PartWriter("part-00001", "gzip")
    writer.add("m1.eml", b"x" * 100, 0)
    writer.close()
    assert writer.file.closed
