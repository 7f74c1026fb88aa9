"""extract_part never writes outside its destination, whatever the member names, nor more than
its limits, and fails with ExportError only."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.unit.bombs import LazyTar, MiB, zstd_bomb
from transfer_runner.errors import ExportError
from transfer_runner.export.extract import extract_part
from transfer_runner.export.limits import ExportLimits
from transfer_runner.export.packing import PartWriter


def tar_of(*members: tarfile.TarInfo | tuple[str, bytes], mode: str = "w") -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path / "inside" / "restore"


def nothing_outside(tmp_path: Path) -> bool:
    outside = sorted(p.name for p in (tmp_path / "outside").iterdir())
    top = sorted(p.name for p in tmp_path.iterdir())
    return outside == [] and top == ["inside", "outside"]


def test_a_real_part_extracts_into_the_destination(dest: Path) -> None:
    writer = PartWriter("part-00001.tar.gz", "gzip")
    writer.add("m1.eml", b"Subject: one\r\n\r\n1", 1_790_000_000)
    writer.add("m2.eml", b"Subject: two\r\n\r\n2", 1_790_000_060)
    writer.finish()
    try:
        written = extract_part(writer.file, dest)
    finally:
        writer.close()
    assert written == [dest.resolve() / "m1.eml", dest.resolve() / "m2.eml"]
    assert (dest / "m2.eml").read_bytes() == b"Subject: two\r\n\r\n2"


def test_directories_and_nested_files_are_fine(dest: Path) -> None:
    folder = special("sub", tarfile.DIRTYPE)
    extract_part(tar_of(folder, ("sub/a.eml", b"a"), ("./b.eml", b"b")), dest)
    assert (dest / "sub" / "a.eml").read_bytes() == b"a"
    assert (dest / "b.eml").read_bytes() == b"b"


UNSAFE = [
    (("/tmp/evil.eml", b"x"), "absolute"),
    (("../outside/evil.eml", b"x"), "'..'"),
    (("a/../../../outside/evil.eml", b"x"), "'..'"),
    (("..", b"x"), "'..'"),
    (("a\\..\\..\\evil.eml", b"x"), "backslash"),
    (("C:/evil.eml", b"x"), "absolute"),
    (special("link.eml", tarfile.SYMTYPE, "../../outside/x"), "only files and directories"),
    (special("ok.eml", tarfile.SYMTYPE, "ok2.eml"), "only files and directories"),
    (special("hard.eml", tarfile.LNKTYPE, "/etc/passwd"), "only files and directories"),
    (special("dev", tarfile.CHRTYPE), "only files and directories"),
    (special("blk", tarfile.BLKTYPE), "only files and directories"),
    (special("fifo", tarfile.FIFOTYPE), "only files and directories"),
]


def _member_id(value: object) -> str:
    """A stable test id (a TarInfo's repr holds its address, which differs per process: xdist
    workers would collect different tests)."""
    if isinstance(value, tarfile.TarInfo):
        return f"{value.name}-type{value.type.decode()}"
    return repr(value)[:40]


@pytest.mark.parametrize(("member", "message"), UNSAFE, ids=_member_id)
@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_unsafe_members_are_refused(
    tmp_path: Path, dest: Path, member: object, message: str, mode: str
) -> None:
    with pytest.raises(ExportError, match=message):
        extract_part(tar_of(member, mode=mode), dest)  # type: ignore[arg-type]
    assert nothing_outside(tmp_path)


def test_a_safe_member_after_an_unsafe_one_is_never_reached(tmp_path: Path, dest: Path) -> None:
    stream = tar_of(("good.eml", b"g"), ("../../evil.eml", b"x"), ("later.eml", b"l"))
    with pytest.raises(ExportError, match="'..'"):
        extract_part(stream, dest)
    assert (dest / "good.eml").exists() and not (dest / "later.eml").exists()
    assert nothing_outside(tmp_path)


def test_an_existing_symlink_in_the_destination_is_not_followed_out(
    tmp_path: Path, dest: Path
) -> None:
    dest.mkdir(parents=True)
    os.symlink(tmp_path / "outside", dest / "escape")
    with pytest.raises(ExportError, match="would land outside"):
        extract_part(tar_of(("escape/evil.eml", b"x")), dest)
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_damaged_stream_is_a_clean_error(dest: Path) -> None:
    data = tar_of(("a.eml", b"a" * 5000), mode="w:gz").getvalue()
    with pytest.raises(ExportError, match="damaged"):
        extract_part(io.BytesIO(data[: len(data) // 2]), dest)
    with pytest.raises(ExportError, match="damaged"):
        extract_part(io.BytesIO(b"this is not a tar file at all" * 40), dest)


# -- bounded (issue 18): a small part cannot fill the disk, and every OSError is ours -------------
def disk_use(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def test_a_small_part_claiming_a_huge_member_writes_nothing(dest: Path) -> None:
    # Reproduced: 509 KiB of gzip made 512 MiB on disk. This zstd part is 16 KiB.
    bomb = zstd_bomb("m1.eml", 512 * MiB)
    assert len(bomb) < 64 * 1024
    with pytest.raises(ExportError, match="'m1.eml' claims 512 MiB, more than a message may be"):
        extract_part(io.BytesIO(bomb), dest)
    assert disk_use(dest) == 0


def test_the_total_written_is_bounded_before_each_member(dest: Path) -> None:
    part = LazyTar(*[(f"m{i}.eml", MiB) for i in range(5)])
    with pytest.raises(ExportError, match="'m3.eml': more bytes than a part may hold in all"):
        extract_part(part, dest, ExportLimits(max_extract_bytes=3 * MiB))
    assert sorted(p.name for p in dest.iterdir()) == ["m0.eml", "m1.eml", "m2.eml"]
    assert disk_use(dest) == 3 * MiB


def test_the_total_comes_from_the_environment(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_MAX_EXTRACT_MIB", "1")
    with pytest.raises(ExportError, match="the limit is 1 MiB; TRANSFER_RUNNER_MAX_EXTRACT_MIB"):
        extract_part(LazyTar(("a.eml", MiB), ("b.eml", 1)), dest)
    assert disk_use(dest) == MiB


def test_one_member_too_many_is_refused(dest: Path) -> None:
    part = LazyTar(*[(f"m{i}.eml", 1) for i in range(6)])
    with pytest.raises(ExportError, match="more members than a part holds"):
        extract_part(part, dest, ExportLimits(max_part_members=5))
    assert len(list(dest.iterdir())) == 5


def test_a_file_then_a_member_under_it_is_an_export_error(dest: Path) -> None:
    # Reproduced: a raw NotADirectoryError escaped.
    stream = tar_of(("a.eml", b"a"), ("a.eml/b.eml", b"b"))
    with pytest.raises(ExportError, match=r"Not a directory: 'a.eml/b.eml'") as caught:
        extract_part(stream, dest)
    assert isinstance(caught.value.__cause__, NotADirectoryError)
    assert (dest / "a.eml").read_bytes() == b"a"


def test_a_destination_that_cannot_be_made_is_an_export_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ExportError, match="extracting into .* failed"):
        extract_part(tar_of(("a.eml", b"a")), tmp_path / "file" / "restore")
