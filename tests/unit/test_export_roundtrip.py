"""Export -> verify -> import on moto S3 and the in-memory fake platform."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.fake_platform import BASE_TIME, FakePlatform
from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError
from transfer_runner.export.exporter import export_store
from transfer_runner.export.importer import import_store, inspect_import
from transfer_runner.export.status import inspect_export
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import MiB, S3Settings

BUCKET = "exports"
NAME = "acme-com"
SOURCE, TARGET = "C-1001", "A-2001"
WRITES = {
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "DeleteObjects",
    "DeleteObject",
}


def settings(**changes: Any) -> S3Settings:
    return replace(S3Settings(f"s3://{BUCKET}/runs/", part_size_bytes=64 * 1024), **changes)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto S3 with the export bucket, reached through the product's own client."""
    with moto_bucket(monkeypatch, BUCKET, settings()) as client:
        yield client


@pytest.fixture
def calls(s3: Any) -> Counter[str]:
    """S3 operations made through the client, by name."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    s3.meta.events.register("before-call.s3", count)
    return seen


@pytest.fixture
def platform() -> FakePlatform:
    fake = FakePlatform()
    fake.add_messages(SOURCE, "archive", 300, size=2048)
    fake.add_messages(SOURCE, "quarantine", 40, size=1500, seed=3)
    return fake


def keys(s3: Any, prefix: str = "runs/") -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", ()))


def journal_of(result: Any) -> list[str]:
    """The journal of an export: its parts' records and the checkpoint of its index."""
    base = result.index_key[: -len("index.jsonl")]
    records = [f"{base}_journal/part-{n:05d}.json" for n in range(1, len(result.parts) + 1)]
    return [*records, f"{base}_journal/checkpoint.json"]


def index_lines(s3: Any, store: str = "archive") -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=f"runs/{NAME}/{store}/index.jsonl")["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_round_trip_over_several_parts(s3: Any, platform: FakePlatform, compression: str) -> None:
    cfg = settings(compression=compression)
    ext = ".tar.gz" if compression == "gzip" else ".tar"
    progress: list[tuple[int, int]] = []
    result = export_store(
        platform, s3, cfg, NAME, SOURCE, "archive", lambda n, b: progress.append((n, b))
    )

    total = sum(len(platform.raw(SOURCE, "archive", i)) for i in platform.ids(SOURCE, "archive"))
    assert (result.store, result.messages, result.bytes) == ("archive", 300, total)
    assert len(result.parts) >= 3
    base = f"runs/{NAME}/archive/"
    assert result.parts == tuple(
        f"{base}part-{n:05d}{ext}" for n in range(1, len(result.parts) + 1)
    )
    assert result.index_key == f"{base}index.jsonl"
    assert keys(s3) == sorted([*result.parts, *journal_of(result), result.index_key])
    assert progress[-1] == (300, total) and len(progress) == 300

    lines = index_lines(s3)
    assert [line["id"] for line in lines] == platform.ids(SOURCE, "archive")  # listing order
    assert set(lines[0]) == {"id", "part", "size", "sha256", "received_at", "pass"}
    assert {line["pass"] for line in lines} == {1}
    assert (
        lines[0]["part"] == f"part-00001{ext}"
        and lines[-1]["part"] == result.parts[-1][len(base) :]
    )
    assert lines[1]["received_at"] == "2026-11-01T08:01:00Z"

    # Anyone can open a part with tar: members are <id>.eml holding the source bytes.
    part = s3.get_object(Bucket=BUCKET, Key=result.parts[0])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(part)) as tar:
        first = tar.getmembers()[0]
        assert first.name == "msg-00000.eml"
        assert tar.extractfile(first).read() == platform.raw(SOURCE, "archive", "msg-00000")  # type: ignore[union-attr]

    verified = verify_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert verified.ok, verified.problems
    assert (verified.messages, verified.bytes) == (300, total)
    assert verified.index_sha256 == result.index_sha256

    assert inspect_import(platform, s3, cfg, NAME, TARGET, "archive", SOURCE) == 300
    imported = import_store(
        platform, s3, cfg, NAME, TARGET, "archive", "import:acme-com:archive", from_account=SOURCE
    )
    assert (imported.imported, imported.skipped, imported.messages) == (300, 0, 300)
    for message_id in platform.ids(SOURCE, "archive"):
        assert platform.raw(TARGET, "archive", message_id) == platform.raw(
            SOURCE, "archive", message_id
        )
    assert platform.import_keys[0] == "import:acme-com:archive:msg-00000"
    assert inspect_import(platform, s3, cfg, NAME, TARGET, "archive", SOURCE) == 0


def test_import_is_idempotent(s3: Any, platform: FakePlatform) -> None:
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    first = import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)
    calls_after_first = platform.calls["import_message"]
    second = import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)
    assert (first.imported, first.skipped) == (40, 0)
    assert (second.imported, second.skipped, second.messages) == (0, 40, 40)
    assert platform.calls["import_message"] == calls_after_first  # skipped without a write


def test_import_counts_platform_refusals_as_skipped(s3: Any, platform: FakePlatform) -> None:
    """The target already has ids its first listing does not show yet: the platform says False,
    and the id-set check afterwards finds them there."""
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    for message_id in platform.ids(SOURCE, "quarantine")[:10]:
        raw = platform.raw(SOURCE, "quarantine", message_id)
        platform.put(TARGET, "quarantine", message_id, raw, BASE_TIME)
    real_list = platform.list_messages

    lagging = [True]  # the target's first listing lags behind what it holds

    def list_nothing_for_target(
        account_id: str, store: Any, cursor: Any = None, limit: int = 500
    ) -> Any:
        page = real_list(account_id, store, cursor, limit)
        if account_id == TARGET and lagging[0]:
            lagging[0] = page.next_cursor is not None
            return replace(page, messages=())
        return page

    platform.list_messages = list_nothing_for_target  # type: ignore[method-assign]
    result = import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)
    assert (result.imported, result.skipped) == (30, 10)
    assert platform.calls["import_message"] == 40


def test_empty_store_writes_an_empty_index_and_no_part(s3: Any) -> None:
    platform = FakePlatform()
    cfg = settings()
    assert inspect_export(platform, s3, cfg, NAME, SOURCE, "archive").exists is False
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert (result.messages, result.bytes, result.parts, result.compressed_bytes) == (0, 0, (), 0)
    assert keys(s3) == sorted([*journal_of(result), result.index_key])  # and no part
    assert index_lines(s3) == []
    status = inspect_export(platform, s3, cfg, NAME, SOURCE, "archive")
    assert status.exists and status.complete and status.messages == 0
    verified = verify_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert verified.ok and verified.messages == 0
    assert (
        import_store(platform, s3, cfg, NAME, TARGET, "archive", "k", from_account=SOURCE).imported
        == 0
    )


def test_re_export_writes_nothing_and_returns_the_same_result(
    s3: Any, platform: FakePlatform, calls: Counter[str]
) -> None:
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    # the parts, their journal records, the index and its checkpoint
    assert calls["PutObject"] == 2 * len(first.parts) + 2
    before = {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3)}
    calls.clear()
    fetched = platform.calls["fetch_message"]

    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert (again.wrote, again.new_messages, again.new_bytes) == (False, 0, 0)
    assert replace(again, new_messages=300, new_bytes=first.new_bytes, wrote=True) == first
    assert first.new_messages == 300 and first.wrote
    assert not (set(calls) & WRITES), calls
    assert platform.calls["fetch_message"] == fetched
    assert {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3)} == before

    status = inspect_export(platform, s3, cfg, NAME, SOURCE, "archive")
    assert status.complete and status.result() == again
    assert status.facts() == {k: first.facts()[k] for k in status.facts()}
    assert first.facts()["index_sha256"] == first.index_sha256


def test_missing_part_makes_the_export_incomplete_and_export_rewrites_it(
    s3: Any, platform: FakePlatform
) -> None:
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=first.parts[1])
    status = inspect_export(platform, s3, cfg, NAME, SOURCE, "archive")
    assert status.exists and not status.complete and status.missing_parts == (first.parts[1],)
    with pytest.raises(ExportError, match="not complete"):
        status.result()
    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    # The lost part's messages are exported again from the source, into a part of a new
    # number: the old index named the lost one, so its number is never reused.
    assert (again.messages, again.bytes, again.pass_number) == (300, first.bytes, 1)
    assert first.parts[1] not in again.parts and len(again.parts) == len(first.parts)
    assert again.new_messages == 300 - sum(
        1 for line in index_lines(s3) if line["part"] != again.parts[-1].rsplit("/", 1)[1]
    )
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_interrupted_export_leftovers_are_removed(s3: Any, platform: FakePlatform) -> None:
    cfg = settings()
    stray = f"runs/{NAME}/archive/part-00042.tar.gz"
    other = f"runs/{NAME}/archive/notes.txt"
    for key in (stray, other):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"left over")
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert stray not in keys(s3)
    assert other in keys(s3)  # only part files are ours to clean up
    assert keys(s3) == sorted([*result.parts, *journal_of(result), result.index_key, other])


def test_a_malformed_index_is_not_complete_and_is_rewritten(
    s3: Any, platform: FakePlatform
) -> None:
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    s3.put_object(Bucket=BUCKET, Key=first.index_key, Body=b'{"id": "x"}\n')
    status = inspect_export(platform, s3, cfg, NAME, SOURCE, "quarantine")
    assert status.exists and not status.complete and "no 'part'" in status.problem
    again = export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    assert (again.wrote, again.new_messages) == (True, 0)  # the index alone is rewritten
    assert replace(again, new_messages=first.new_messages, new_bytes=first.new_bytes) == first


def test_every_object_has_a_sha256_checksum(s3: Any, platform: FakePlatform) -> None:
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    export_store(FakePlatform(), s3, cfg, "empty-one", SOURCE, "archive")
    all_keys = keys(s3, "runs/")
    assert len(all_keys) > 5
    for key in all_keys:
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert head.get("ChecksumSHA256"), key


@pytest.mark.parametrize(
    ("sse", "kms_key"), [("AES256", None), ("aws:kms", "alias/transfer-exports")]
)
def test_server_side_encryption_is_requested_for_every_object(
    s3: Any, platform: FakePlatform, sse: str, kms_key: str | None
) -> None:
    cfg = settings(sse=sse, sse_kms_key_id=kms_key)
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    for key in keys(s3):
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == sse, key
        if kms_key:
            assert kms_key in head["SSEKMSKeyId"]


def test_large_parts_go_up_in_multipart_uploads_with_checksums(
    s3: Any, calls: Counter[str]
) -> None:
    platform = FakePlatform()
    platform.add_messages(SOURCE, "archive", 10, size=1 * MiB)
    cfg = settings(compression="none", part_size_bytes=9 * MiB, sse="AES256")
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert len(result.parts) == 2
    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] == 2
    assert calls["CompleteMultipartUpload"] == 1
    head = s3.head_object(Bucket=BUCKET, Key=result.parts[0], ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-2")
    assert head.get("ChecksumSHA256") and head["ServerSideEncryption"] == "AES256"
    verified = verify_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert verified.ok, verified.problems


@pytest.mark.parametrize("bad_id", ["../evil", "a/b", ".hidden", "x" * 129, "sp ace"], ids=repr)
def test_unsafe_message_id_stops_the_export_before_it_becomes_a_member(
    s3: Any, bad_id: str
) -> None:
    platform = FakePlatform()
    platform.add_messages(SOURCE, "archive", 3)
    platform.put(SOURCE, "archive", bad_id, b"Subject: x\r\n\r\nx", BASE_TIME)
    with pytest.raises(ExportError, match="not safe as a file name"):
        export_store(platform, s3, settings(), NAME, SOURCE, "archive")
    assert f"runs/{NAME}/archive/index.jsonl" not in keys(s3)


def test_listing_digest_mismatch_is_an_export_error(s3: Any, platform: FakePlatform) -> None:
    platform.listed_sha256["msg-00007"] = "0" * 64
    with pytest.raises(ExportError, match="msg-00007.*SHA-256"):
        export_store(platform, s3, settings(), NAME, SOURCE, "archive")
    assert f"runs/{NAME}/archive/index.jsonl" not in keys(s3)


def test_listing_size_mismatch_is_an_export_error(s3: Any, platform: FakePlatform) -> None:
    platform.listed_size["msg-00003"] = 1
    with pytest.raises(ExportError, match="msg-00003.*listing says 1"):
        export_store(platform, s3, settings(), NAME, SOURCE, "archive")


class _NoS3:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"S3 was called ({name}) before the names were checked")


@pytest.mark.parametrize(("name", "store"), [("Acme", "archive"), ("acme-com", "inbox")])
def test_names_are_checked_before_any_s3_call(name: str, store: str) -> None:
    cfg = settings()
    for call in (export_store, inspect_export, verify_store):
        with pytest.raises(ExportError):
            call(FakePlatform(), _NoS3(), cfg, name, SOURCE, store)  # type: ignore[arg-type]
    with pytest.raises(ExportError):
        import_store(  # type: ignore[arg-type]
            FakePlatform(), _NoS3(), cfg, name, TARGET, store, "k", from_account=SOURCE
        )


def test_import_without_an_export_is_a_clear_error(s3: Any, platform: FakePlatform) -> None:
    with pytest.raises(ExportError, match="export the store first"):
        inspect_import(platform, s3, settings(), NAME, TARGET, "archive", SOURCE)
    with pytest.raises(ExportError, match="export the store first"):
        import_store(platform, s3, settings(), NAME, TARGET, "archive", "k", from_account=SOURCE)


def test_import_checks_the_target_by_id_set(s3: Any, platform: FakePlatform) -> None:
    """A platform that acknowledges imports but keeps nothing is caught by the id-set check."""
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    platform.import_message = lambda *a, **k: True  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="A-2001's quarantine still lacks 40 exported"):
        import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)


def test_an_imported_copy_that_expired_is_imported_again(s3: Any, platform: FakePlatform) -> None:
    """The target's retention removed an imported copy while the source still holds it: the
    first key would only replay, so the copy comes back under the run's key."""
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    first = import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)
    assert first.imported == 40
    gone = platform.ids(TARGET, "quarantine")[0]
    platform.remove(TARGET, "quarantine", gone)
    real = platform.import_message

    def replaying(account: str, store: Any, mid: str, raw: bytes, idempotency_key: str) -> bool:
        if idempotency_key == f"k:{mid}":  # a platform replays a key it has seen
            return True
        return real(account, store, mid, raw, idempotency_key)

    platform.import_message = replaying  # type: ignore[method-assign]
    again = import_store(
        platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE, retry_suffix="r2"
    )
    assert again.imported == 1 and gone in platform.ids(TARGET, "quarantine")


def test_mail_that_expired_from_the_source_is_not_brought_back(
    s3: Any, platform: FakePlatform
) -> None:
    cfg = settings()
    export_store(platform, s3, cfg, NAME, SOURCE, "quarantine")
    expired = platform.ids(SOURCE, "quarantine")[0]
    platform.remove(SOURCE, "quarantine", expired)
    result = import_store(platform, s3, cfg, NAME, TARGET, "quarantine", "k", from_account=SOURCE)
    assert result.imported == 39 and expired not in platform.ids(TARGET, "quarantine")


def test_s3_failures_are_clean_export_errors(s3: Any, platform: FakePlatform) -> None:
    cfg = replace(settings(), export_to="s3://no-such-bucket/runs")
    with pytest.raises(ExportError, match="NoSuchBucket"):
        export_store(platform, s3, cfg, NAME, SOURCE, "archive")


def test_an_incomplete_export_loses_its_index_before_parts_are_rewritten(
    s3: Any, platform: FakePlatform
) -> None:
    """A crash while rewriting must not leave the old index vouching for new parts."""
    cfg = settings()
    first = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    s3.delete_object(Bucket=BUCKET, Key=first.parts[-1])
    platform.put(SOURCE, "archive", "msg-00000a", b"Subject: new\r\n\r\nshifts parts", BASE_TIME)
    real_fetch = platform.fetch_message

    def crash_late(account_id: str, store: Any, message_id: str) -> bytes:
        if message_id == "msg-00000a":  # journalled parts are kept: only new ones are fetched
            raise ExportError("simulated crash")
        return real_fetch(account_id, store, message_id)

    platform.fetch_message = crash_late  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="simulated crash"):
        export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    status = inspect_export(platform, s3, cfg, NAME, SOURCE, "archive")
    assert not status.complete and status.missing_parts == (first.parts[-1],)
    assert set(status.parts) == set(first.parts)  # the old index names only old parts

    platform.fetch_message = real_fetch  # type: ignore[method-assign]
    again = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert again.messages == 301
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok


def test_a_message_that_expires_between_listing_and_fetch_is_skipped(
    s3: Any, platform: FakePlatform
) -> None:
    """Retention removes a listed message before the pass fetches it (a 404): the pass goes
    on without it, instead of failing every pass of a busy mailbox."""
    from transfer_runner.errors import NotFound

    cfg = settings()
    gone = platform.ids(SOURCE, "archive")[7]
    real = platform.fetch_message

    def fetch(account_id: str, store: Any, message_id: str) -> bytes:
        if message_id == gone:
            platform.remove(SOURCE, "archive", gone)
            raise NotFound("fetch_message", f"no message {gone}")
        return real(account_id, store, message_id)

    platform.fetch_message = fetch  # type: ignore[method-assign]
    result = export_store(platform, s3, cfg, NAME, SOURCE, "archive")
    assert result.messages == 299 and gone not in [line["id"] for line in index_lines(s3)]
    platform.fetch_message = real  # type: ignore[method-assign]
    assert verify_store(platform, s3, cfg, NAME, SOURCE, "archive").ok
