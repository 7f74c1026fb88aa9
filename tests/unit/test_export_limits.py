"""The export's reading limits: configured from the environment, and checked on every tar header
before the member's data is read (pax and long-name headers, sparse members and the count of
members included)."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.unit.bombs import LazyTar, MiB, tar_header
from transfer_runner.errors import ConfigError, ExportError
from transfer_runner.export.limits import ENV_VARS, ExportLimits, export_limits, size_text
from transfer_runner.export.packing import (
    DAMAGE,
    LimitExceeded,
    Member,
    PartWriter,
    open_tar_stream,
    read_members,
    tar_headers,
)


# -- the limits and their configuration ----------------------------------------------------------
def test_defaults_are_far_above_what_the_runner_writes() -> None:
    limits = ExportLimits()
    assert limits.max_message_bytes == 256 * MiB  # the platform contract: 64 MiB a message
    assert limits.max_part_members == 1_000_000
    assert limits.max_extract_bytes == 2048 * MiB
    assert limits.max_index_line_bytes == 64 * 1024  # a line holds about 200 bytes
    assert limits.max_index_bytes == 1024 * MiB


def test_every_limit_comes_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, _ in ENV_VARS.values():
        monkeypatch.setenv(variable, "3")
    assert export_limits() == ExportLimits(3 * MiB, 3, 3 * MiB, 3 * 1024, 3 * MiB)
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_PART_MEMBERS", " ")
    assert export_limits().max_part_members == ExportLimits().max_part_members


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "lots", "1e9", "\u00b2"])
def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_MESSAGE_MIB", value)
    with pytest.raises(ConfigError, match="TRANSFER_RUNNER_MAX_MESSAGE_MIB=.*whole number"):
        export_limits()


def test_hints_say_the_limit_and_how_to_raise_it() -> None:
    limits = ExportLimits()
    assert limits.hint("max_message_bytes") == (
        "the limit is 256 MiB; TRANSFER_RUNNER_MAX_MESSAGE_MIB raises it"
    )
    assert "1,000,000; TRANSFER_RUNNER_MAX_PART_MEMBERS" in limits.hint("max_part_members")
    assert size_text(1000) == "1,000 bytes"
    assert size_text(2 * 1024**3) == "2 GiB"


# -- headers are checked before data is read ---------------------------------------------------
def test_admit_sees_each_header_before_any_of_its_data_is_read() -> None:
    part = LazyTar(("a.eml", 3), ("b.eml", 200 * MiB), ("c.eml", 5))
    seen: list[tuple[str, int, int]] = []

    def admit(head: Member) -> bool:
        seen.append((head.name, head.size, part.read_count))
        return head.name != "b.eml"  # skipped unread

    members = list(read_members(part, admit=admit))
    assert [(m.name, m.size, m.sha256 != "") for m in members] == [
        ("a.eml", 3, True),
        ("c.eml", 5, True),
    ]
    assert [name for name, _, _ in seen] == ["a.eml", "b.eml", "c.eml"]
    assert seen[1][2] < 2 * MiB  # b.eml's header was shown before its 200 MiB were read


def test_a_refusing_admit_stops_the_stream_before_the_data() -> None:
    part = LazyTar(("big.eml", 200 * MiB))

    def admit(head: Member) -> bool:
        raise ExportError(f"{head.name}: {head.size} bytes, the index says 10")

    with pytest.raises(ExportError, match="209715200 bytes"):
        list(read_members(part, keep_data=True, admit=admit))
    assert part.read_count < 2 * MiB


def test_a_member_over_the_message_limit_is_refused_on_its_header() -> None:
    part = LazyTar(("ok.eml", 10), ("huge.eml", 1024**4))  # a 1 TiB claim
    names = []
    with pytest.raises(LimitExceeded, match="'huge.eml' claims 1024 GiB, more than a message"):
        names.extend(m.name for m in read_members(part, keep_data=True))
    assert names == ["ok.eml"]
    assert part.read_count < 2 * MiB
    assert issubclass(LimitExceeded, DAMAGE)  # verify counts it as damage, import refuses


def test_the_message_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_MESSAGE_MIB", "1")
    with pytest.raises(LimitExceeded, match="the limit is 1 MiB"):
        list(read_members(LazyTar(("a.eml", MiB + 1))))
    assert [m.size for m in read_members(LazyTar(("a.eml", MiB)))] == [MiB]


def test_one_member_too_many_is_refused() -> None:
    limits = ExportLimits(max_part_members=3)
    part = LazyTar(*[(f"m{i}.eml", 1) for i in range(5)])
    names = []
    with pytest.raises(LimitExceeded, match="more members than a part holds"):
        names.extend(m.name for m in read_members(part, limits=limits))
    assert names == ["m0.eml", "m1.eml", "m2.eml"]


def test_headers_read_are_not_kept() -> None:
    part = LazyTar(*[(f"m{i}.eml", 1) for i in range(50)])
    with open_tar_stream(part) as tar:
        for _ in tar_headers(tar, ExportLimits()):
            assert len(tar.members) <= 1  # type: ignore[attr-defined]


def raw_tar(*blocks: bytes) -> io.BytesIO:
    return io.BytesIO(b"".join((*blocks, bytes(2 * tarfile.BLOCKSIZE))))


def test_a_huge_pax_header_is_refused_before_it_is_read() -> None:
    # tarfile reads a pax header's data whole into memory: here 1 GiB of it
    part = LazyTar(("pax", 1024 * MiB, tarfile.XHDTYPE), ("a.eml", 1))
    with pytest.raises(LimitExceeded, match="a 1,073,741,824-byte pax or long-name header"):
        list(read_members(part))
    assert part.read_count < 2 * MiB


def test_a_huge_gnu_long_name_is_refused_before_it_is_read() -> None:
    part = LazyTar(("././@LongLink", 1024 * MiB, tarfile.GNUTYPE_LONGNAME), ("a.eml", 1))
    with pytest.raises(LimitExceeded, match="pax or long-name header"):
        list(read_members(part))
    assert part.read_count < 2 * MiB


def test_a_chain_of_pax_headers_is_refused() -> None:
    record = b"20 comment=aaaaaaaa\n"
    pax = tar_header("pax", len(record), tarfile.XHDTYPE)[-tarfile.BLOCKSIZE :]
    one = pax + record + bytes(-len(record) % tarfile.BLOCKSIZE)
    with pytest.raises(LimitExceeded, match="in a row"):
        list(read_members(raw_tar(one * 50, tar_header("a.eml", 0))))


def test_a_sparse_member_is_refused() -> None:
    sparse = tar_header("s.eml", 0, tarfile.GNUTYPE_SPARSE)[-tarfile.BLOCKSIZE :]
    with pytest.raises(LimitExceeded, match="sparse"):
        list(read_members(raw_tar(sparse)))


def test_a_part_as_the_runner_writes_it_reads_back() -> None:
    writer = PartWriter("part-00001.tar.zst", "zstd")
    writer.add("m1.eml", b"Subject: one\r\n\r\n1", 1_790_000_000)
    writer.add("x" * 150 + ".eml", b"long name: a pax header", 1_790_000_000)
    writer.finish()
    try:
        members = list(read_members(writer.file, keep_data=True))
    finally:
        writer.close()
    assert [m.data for m in members] == [b"Subject: one\r\n\r\n1", b"long name: a pax header"]


# -- the writer never makes a part the readers would refuse ---------------------------------------
def test_the_writer_refuses_a_message_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_MESSAGE_MIB", "1")
    writer = PartWriter("part-00001.tar", "none")
    try:
        writer.add("ok.eml", bytes(MiB), 0)
        with pytest.raises(ExportError, match="big.eml is 1,048,577 bytes.*1 MiB"):
            writer.add("big.eml", bytes(MiB + 1), 0)
    finally:
        writer.close()


def test_the_writer_refuses_one_member_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_PART_MEMBERS", "2")
    writer = PartWriter("part-00001.tar", "none")
    try:
        writer.add("a.eml", b"a", 0)
        writer.add("b.eml", b"b", 0)
        with pytest.raises(ExportError, match="one message more than a part holds"):
            writer.add("c.eml", b"c", 0)
    finally:
        writer.close()
