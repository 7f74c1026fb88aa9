"""extract_part never writes outside its destination, whatever the member names."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from transfer_runner.errors import ExportError
from transfer_runner.export.extract import extract_part
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
