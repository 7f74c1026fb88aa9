"""verify_store finds damage itself, never trusting S3; import_store refuses damaged parts."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.fake_platform import BASE_TIME, FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export import verifier
from transfer_runner.export.exporter import export_store
from transfer_runner.export.importer import import_store
from transfer_runner.export.status import ExportResult
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE, TARGET = "C-1001", "A-2001"
Members = list[tuple[tarfile.TarInfo, bytes]]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_bucket(monkeypatch, BUCKET, S3Settings(f"s3://{BUCKET}")) as client:
        yield client


def settings(compression: str = "none") -> S3Settings:
    return S3Settings(f"s3://{BUCKET}/runs", part_size_bytes=32 * 1024, compression=compression)


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 120, size=2048)
    return fake


def export(platform: FakePlatform, s3: Any, compression: str = "none") -> ExportResult:
    result = export_store(platform, s3, settings(compression), NAME, SOURCE, "archive")
    assert len(result.parts) >= 3
    assert verify(platform, s3, compression).ok  # clean before each test damages it
    return result


def verify(platform: FakePlatform, s3: Any, compression: str = "none") -> verifier.VerifyResult:
    return verify_store(platform, s3, settings(compression), NAME, SOURCE, "archive")


def read(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def members_of(data: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar]  # type: ignore[union-attr]


def rewrite_part(s3: Any, key: str, change: Callable[[Members], Members]) -> None:
    """Re-pack a part with `change` applied to its members (same compression)."""
    members = change(members_of(read(s3, key)))
    out = io.BytesIO()
    mode = "w:gz" if key.endswith(".gz") else "w"
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    s3.put_object(Bucket=BUCKET, Key=key, Body=out.getvalue())


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_ids_by_part(s3: Any, result: ExportResult) -> dict[str, list[str]]:
    by_part: dict[str, list[str]] = {}
    for line in read(s3, result.index_key).decode().splitlines():
        entry = json.loads(line)
        by_part.setdefault(entry["part"], []).append(entry["id"])
    return by_part


def found(problems: tuple[str, ...], *words: str) -> bool:
    return any(all(w in p for w in words) for p in problems)


def test_flipped_byte_inside_a_message_names_it(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    key = result.parts[1]
    body = bytearray(read(s3, key))
    victim = members_of(bytes(body))[2][0].name  # third message of the second part
    raw = platform.raw(SOURCE, "archive", victim.removesuffix(".eml"))
    at = body.index(raw) + len(raw) // 2
    body[at] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))  # a new, valid S3 checksum

    outcome = verify(platform, s3)
    assert not outcome.ok
    message_id = victim.removesuffix(".eml")
    assert found(outcome.problems, f"message {message_id}:", "SHA-256"), outcome.problems
    assert len(outcome.problems) == 1


def test_flipped_byte_in_a_gzip_part_is_caught(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3, "gzip")
    key = result.parts[0]
    body = bytearray(read(s3, key))
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    outcome = verify(platform, s3, "gzip")
    assert not outcome.ok
    by_part = index_ids_by_part(s3, result)
    named = [i for i in by_part["part-00001.tar.gz"] if found(outcome.problems, f"message {i}:")]
    assert named, outcome.problems  # the damaged messages are named...
    others = [i for part, ids in by_part.items() if part != "part-00001.tar.gz" for i in ids]
    assert not [i for i in others if found(outcome.problems, f"message {i}:")]  # ...only them


def test_missing_part_is_detected_and_its_messages_named(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    s3.delete_object(Bucket=BUCKET, Key=result.parts[1])
    outcome = verify(platform, s3)
    assert not outcome.ok
    assert found(outcome.problems, "part-00002.tar: missing from S3")
    lost = index_ids_by_part(s3, result)["part-00002.tar"]
    for message_id in lost:
        assert found(outcome.problems, f"message {message_id}: in the index (part-00002.tar)")
    assert len(outcome.problems) == 1 + len(lost)


def test_extra_member_is_detected(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    rewrite_part(s3, result.parts[0], lambda ms: [*ms, file_member("intruder.eml", b"hi")])
    outcome = verify(platform, s3)
    assert not outcome.ok
    assert outcome.problems == ("message intruder: in part-00001.tar but not in the index",)


def test_member_twice_and_in_the_wrong_part_are_detected(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    first = members_of(read(s3, result.parts[0]))[0]
    rewrite_part(s3, result.parts[1], lambda ms: [*ms, first])
    outcome = verify(platform, s3)
    assert found(outcome.problems, "message msg-00000:", "appears more than once")

    rewrite_part(s3, result.parts[0], lambda ms: ms[1:])  # now only in the second part
    outcome = verify(platform, s3)
    assert found(outcome.problems, "message msg-00000:", "found in part-00002.tar")


def test_non_file_and_foreign_members_are_detected(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    link = tarfile.TarInfo("msg-00000.eml.lnk")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    rewrite_part(s3, result.parts[0], lambda ms: [*ms, (link, b""), file_member("notes.txt", b"x")])
    outcome = verify(platform, s3)
    assert found(outcome.problems, "unexpected member 'msg-00000.eml.lnk'")
    assert found(outcome.problems, "unexpected member 'notes.txt'")


def test_truncated_part_is_detected(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    body = read(s3, result.parts[0])
    lost = index_ids_by_part(s3, result)["part-00001.tar"]
    raw = platform.raw(SOURCE, "archive", lost[3])
    cut = body.index(raw) + len(raw) // 2  # in the middle of the fourth message
    s3.put_object(Bucket=BUCKET, Key=result.parts[0], Body=body[:cut])
    outcome = verify(platform, s3)
    assert found(outcome.problems, "part-00001.tar: damaged after 3 member(s)")
    for message_id in lost[3:]:
        assert found(outcome.problems, f"message {message_id}: in the index (part-00001.tar)")
    assert not any(found(outcome.problems, f"message {i}:") for i in lost[:3])


def test_part_cut_at_a_member_boundary_is_detected(s3: Any, platform: FakePlatform) -> None:
    """tarfile reads a tar cut between members as a short, valid one: the index catches it."""
    result = export(platform, s3)
    body = read(s3, result.parts[0])
    lost = index_ids_by_part(s3, result)["part-00001.tar"]
    first = members_of(body)[0][0]
    cut = first.offset_data + ((first.size + 511) // 512) * 512
    s3.put_object(Bucket=BUCKET, Key=result.parts[0], Body=body[:cut])
    outcome = verify(platform, s3)
    assert not outcome.ok
    assert [p.split(":")[0] for p in outcome.problems] == [f"message {i}" for i in lost[1:]]


def test_index_vs_source_mismatches(s3: Any, platform: FakePlatform) -> None:
    export(platform, s3)
    platform.remove(SOURCE, "archive", "msg-00004")
    platform.put(SOURCE, "archive", "msg-99999", b"Subject: new\r\n\r\nnew", BASE_TIME)
    changed = bytearray(platform.raw(SOURCE, "archive", "msg-00010"))
    changed[-1] ^= 0x01
    platform.put(SOURCE, "archive", "msg-00010", bytes(changed), BASE_TIME)
    outcome = verify(platform, s3)
    assert not outcome.ok
    assert found(outcome.problems, "message msg-99999:", "in the source but not in the export")
    assert found(outcome.problems, "message msg-00010:", "source SHA-256", "same id")
    assert len(outcome.problems) == 2  # an equal count (120) proves nothing
    # msg-00004 expired from the source after it was exported: it stays, counted, no problem
    assert (outcome.expired, outcome.source_messages, outcome.messages) == (1, 120, 120)


def test_source_without_digests_is_fetched_and_hashed(s3: Any, platform: FakePlatform) -> None:
    export(platform, s3)
    platform.give_sha256 = False
    fetched = platform.calls["fetch_message"]
    assert verify(platform, s3).ok
    assert platform.calls["fetch_message"] == fetched + 120
    original = platform.raw(SOURCE, "archive", "msg-00033")
    changed = bytes([original[0] ^ 0x20]) + original[1:]
    platform.put(SOURCE, "archive", "msg-00033", changed, BASE_TIME)
    outcome = verify(platform, s3)
    assert outcome.problems == (
        f"message msg-00033: source SHA-256 is {sha(changed)}, the export has {sha(original)}"
        " (changed under the same id)",
    )


def test_a_new_message_fails_a_complete_verify_and_is_pending_before_the_cut_over(
    s3: Any, platform: FakePlatform
) -> None:
    export(platform, s3)
    platform.put(SOURCE, "archive", "msg-99999", b"Subject: new\r\n\r\nnew", BASE_TIME)
    outcome = verify(platform, s3)
    assert outcome.problems == ("message msg-99999: in the source but not in the export",)
    early = verify_store(platform, s3, settings(), NAME, SOURCE, "archive", complete=False)
    assert early.ok and (early.pending, early.expired, early.messages) == (1, 0, 120)


def test_equal_counts_swap_is_caught(s3: Any, platform: FakePlatform) -> None:
    """One message expires and one arrives: the counts are equal, the id sets are not."""
    export(platform, s3)
    platform.remove(SOURCE, "archive", "msg-00004")
    platform.put(SOURCE, "archive", "msg-99999", b"Subject: new\r\n\r\nnew", BASE_TIME)
    outcome = verify(platform, s3)
    assert outcome.problems == ("message msg-99999: in the source but not in the export",)
    assert outcome.expired == 1


def test_parts_verified_before_are_not_read_again(s3: Any, platform: FakePlatform) -> None:
    export(platform, s3)
    first = verify(platform, s3)
    assert first.ok and first.parts and not first.damaged_parts
    reads: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: reads.append(params["Key"])
    )
    again = verify_store(platform, s3, settings(), NAME, SOURCE, "archive", known_parts=first.parts)
    assert again.ok and again.parts == first.parts
    assert reads == []  # not even the index: the listing shows the ETag it was read under
    assert again.id_set_sha256 == first.id_set_sha256


def test_a_part_rewritten_since_it_was_verified_is_read_again(
    s3: Any, platform: FakePlatform
) -> None:
    result = export(platform, s3)
    first = verify(platform, s3)
    key = result.parts[0]
    body = bytearray(read(s3, key))
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    again = verify_store(platform, s3, settings(), NAME, SOURCE, "archive", known_parts=first.parts)
    assert not again.ok and again.damaged_parts == (key.rsplit("/", 1)[1],)


def test_tampered_index_is_detected(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    lines = read(s3, result.index_key).decode().splitlines()
    entry = json.loads(lines[5])
    entry["sha256"] = "f" * 64
    lines[5] = json.dumps(entry)
    lines.append(lines[0])  # and one id twice
    s3.put_object(Bucket=BUCKET, Key=result.index_key, Body="\n".join(lines).encode())
    outcome = verify(platform, s3)
    assert found(outcome.problems, "message msg-00005:", "the index says ffff")
    assert found(outcome.problems, "message msg-00000: listed twice in the index")
    assert outcome.index_sha256 != result.index_sha256


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json\n", "not JSON"),
        (b"[1]\n", "not a JSON object"),
        (b'{"id":"../x","part":"part-00001.tar","size":1,"sha256":"' + b"a" * 64 + b'",'
         b'"received_at":"x"}\n', "bad 'id'"),
        (b'{"id":"m","part":"../../etc/passwd","size":1,"sha256":"' + b"a" * 64 + b'",'
         b'"received_at":"x"}\n', "bad 'part'"),
        (b'{"id":"m","part":"part-00001.tar","size":-1,"sha256":"' + b"a" * 64 + b'",'
         b'"received_at":"x"}\n', "bad 'size'"),
        (b'{"id":"m","part":"part-00001.tar","size":1,"sha256":"xyz","received_at":"x"}\n',
         "bad 'sha256'"),
    ],
)  # fmt: skip
def test_malformed_index_fails_verify(
    s3: Any, platform: FakePlatform, body: bytes, message: str
) -> None:
    result = export(platform, s3)
    s3.put_object(Bucket=BUCKET, Key=result.index_key, Body=body)
    outcome = verify(platform, s3)
    assert not outcome.ok and outcome.index_sha256 is None
    assert found(outcome.problems, "the index is unreadable", "line 1", message)


def test_no_export_fails_verify(s3: Any, platform: FakePlatform) -> None:
    outcome = verify(platform, s3)
    assert not outcome.ok
    assert outcome.problems == (
        f"no index at s3://{BUCKET}/runs/{NAME}/archive/index.jsonl: not exported",
    )


def test_problems_are_capped(
    s3: Any, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = export(platform, s3)
    for key in result.parts:
        s3.delete_object(Bucket=BUCKET, Key=key)
    monkeypatch.setattr(verifier, "MAX_PROBLEMS", 10)
    outcome = verify(platform, s3)
    assert len(outcome.problems) == 11
    assert outcome.problems[-1].startswith("... and ") and "more problems" in outcome.problems[-1]


def test_import_refuses_a_damaged_part(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    key = result.parts[1]
    body = bytearray(read(s3, key))
    raw = platform.raw(SOURCE, "archive", members_of(bytes(body))[0][0].name[:-4])
    body[body.index(raw) + 100] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    with pytest.raises(ExportError, match="does not match the index"):
        import_store(platform, s3, settings(), NAME, TARGET, "archive", "k", from_account=SOURCE)
    first_part = len(members_of(read(s3, result.parts[0])))
    assert len(platform.ids(TARGET, "archive")) == first_part  # nothing past the damage


def test_import_refuses_an_extra_member(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3)
    rewrite_part(s3, result.parts[0], lambda ms: [file_member("intruder.eml", b"x"), *ms])
    with pytest.raises(ExportError, match="'intruder.eml' is not a message of the index"):
        import_store(platform, s3, settings(), NAME, TARGET, "archive", "k", from_account=SOURCE)
    assert platform.ids(TARGET, "archive") == []


def test_import_refuses_a_missing_part(s3: Any, platform: FakePlatform) -> None:
    result = export(platform, s3, "gzip")
    s3.delete_object(Bucket=BUCKET, Key=result.parts[-1])
    with pytest.raises(ExportError, match="is missing: verify the export"):
        import_store(
            platform, s3, settings("gzip"), NAME, TARGET, "archive", "k", from_account=SOURCE
        )
