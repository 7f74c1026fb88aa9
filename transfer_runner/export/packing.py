"""Tar parts: written one member at a time into a spooled file, read back as a stream.

A part is a plain POSIX (pax) tar of `<id>.eml` members, compressed with zstd, gzip or not at
all, so anyone can open it with `tar`. The default, "auto", compresses each part with zstd and
keeps it uncompressed when that saves less than `AUTO_MIN_SAVING` of its size (mail whose
attachments are images or archives already): its `codec` is then "none". Packing only appends
to an uncompressed spool, which is cheap; `finish` compresses it, and runs on an upload worker
so that parts compress in parallel while the next is packed.
Reading (`tarfile` mode "r|*", zstd unwrapped first) never seeks and never holds the part,
and checks every header against the `ExportLimits` before it reads the member's data: a part
read back from S3 may claim a member of any size (see `limits.py`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from transfer_runner.errors import ExportError
from transfer_runner.export.limits import ExportLimits, export_limits, size_text
from transfer_runner.s3_client import MiB

__all__ = [
    "AUTO_MIN_SAVING",
    "DAMAGE",
    "GZIP_LEVEL",
    "ZSTD_LEVEL",
    "SPOOL_LIMIT",
    "PartWriter",
    "LimitExceeded",
    "Member",
    "read_members",
    "tar_headers",
    "open_tar_stream",
    "content_type",
]

GZIP_LEVEL = 6
ZSTD_LEVEL = 3
AUTO_MIN_SAVING = 0.03  # "auto" stores a part uncompressed unless zstd saves 3% of it
SPOOL_LIMIT = 8 * MiB  # a part larger than this spills to a temporary file on disk
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_CHUNK = 1 * MiB
_USTAR_NAME = 100  # longer member names need a pax header
MAX_META_BYTES = 64 * 1024  # a pax or GNU long-name header (the runner's are under 1 KiB)
_MAX_META_DEPTH = 4  # such headers in a row before one member (a global pax, a pax, two GNU)


def _damage() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [tarfile.TarError, EOFError, zlib.error]
    with contextlib.suppress(ImportError):
        import zstandard

        found.append(zstandard.ZstdError)
    return tuple(found)


DAMAGE = _damage()  # what a damaged part raises while it is read
_CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd"}


def content_type(compression: str) -> str:
    """The Content-Type of a part object."""
    return _CONTENT_TYPES.get(compression, "application/x-tar")


def _spool(limit: int) -> IO[bytes]:
    # Owned by the PartWriter that asks for it and released by its close().
    return tempfile.SpooledTemporaryFile(max_size=limit)  # noqa: SIM115


class PartWriter:
    """One part under construction. `tar_bytes` is its uncompressed size so far.

    After `finish`, `file` holds the stored (compressed) bytes, rewound, `size` their count and
    `codec` how they are stored: the configured compression, or for "auto" zstd or "none".
    """

    def __init__(self, name: str, compression: str, spool_limit: int = SPOOL_LIMIT) -> None:
        self.name = name
        self.compression = compression
        self.codec = "zstd" if compression == "auto" else compression
        self._limit = spool_limit
        self.file: IO[bytes] = _spool(spool_limit)
        self.members = 0
        self.size: int | None = None  # final size, set by finish()
        self.limits = export_limits()  # what verify and import will take: never write more

    @property
    def tar_bytes(self) -> int:
        """Uncompressed tar bytes written so far (where parts are cut)."""
        return self.file.tell()

    @property
    def stored_bytes(self) -> int:
        """Alias of `tar_bytes`, kept for callers of the first version."""
        return self.tar_bytes

    def add(self, member_name: str, raw: bytes, mtime: float) -> None:
        """Append one regular-file member holding `raw`: the bytes `tarfile`'s pax writer
        would write, the header built here for the usual member (tarfile's took 19% of the
        exporting thread, py-spy) and written with the body in one call. `ExportError` for a
        message or a part that the readers would refuse (`ExportLimits`)."""
        limits = self.limits
        if len(raw) > limits.max_message_bytes:
            raise ExportError(
                f"{self.name}: message {member_name} is {len(raw):,} bytes, more than an export "
                f"takes ({limits.hint('max_message_bytes')})"
            )
        if self.members >= limits.max_part_members:
            raise ExportError(
                f"{self.name}: one message more than a part holds "
                f"({limits.hint('max_part_members')}; a smaller --part-size cuts parts sooner)"
            )
        header = _ustar_header(member_name, len(raw), int(mtime))
        if header is None:  # a long or non-ASCII name, a huge size: tarfile's own pax header
            info = tarfile.TarInfo(member_name)
            info.size, info.mtime, info.mode = len(raw), int(mtime), 0o644
            header = info.tobuf(tarfile.PAX_FORMAT)
        self.file.write(b"".join((header, raw, tarfile.NUL * (-len(raw) % tarfile.BLOCKSIZE))))
        self.members += 1

    def _end_tar(self) -> None:
        """Two zero blocks, then zeros to a whole record: how `tarfile` ends an archive."""
        self.file.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        self.file.write(tarfile.NUL * (-self.file.tell() % tarfile.RECORDSIZE))

    def finish(self) -> int:
        """Close the tar, compress it; returns the part's stored size in bytes."""
        self._end_tar()
        tar_size = self.file.tell()
        self.file.seek(0)
        if self.codec != "none":
            packed = _spool(self._limit)
            try:
                _compress(self.file, packed, self.codec)
            except BaseException:
                packed.close()
                raise
            if self.compression == "auto" and packed.tell() > tar_size * (1 - AUTO_MIN_SAVING):
                packed.close()  # not worth it: the part is stored as the plain tar
                self.codec = "none"
            else:
                self.file.close()
                self.file = packed
        self.file.seek(0, io.SEEK_END)
        self.size = self.file.tell()
        self.file.seek(0)
        return self.size

    def close(self) -> None:
        """Release the spool (and its temporary file, if it spilled), finished or not."""
        self.file.close()


_USTAR_MODE_IDS = b"0000644\x000000000\x000000000\x00"  # mode 0644, uid 0, gid 0
_USTAR_TAIL = b"0" + b"\x00" * 100 + tarfile.POSIX_MAGIC + b"\x00" * (32 + 32 + 8 + 8 + 155 + 12)
_USTAR_MAX = 8**11  # what 11 octal digits hold (size, mtime)


def _ustar_header(name: str, size: int, mtime: int) -> bytes | None:
    """The ustar header block `TarInfo.tobuf` gives a regular file of mode 0644 owned by
    uid/gid 0 with no user or group name; None when the member needs a pax header."""
    encoded = name.encode("ascii", "replace")
    if len(encoded) > _USTAR_NAME or not name.isascii() or not 0 <= size < _USTAR_MAX:
        return None
    if not 0 <= mtime < _USTAR_MAX:
        return None
    head = b"".join(
        (
            encoded.ljust(_USTAR_NAME, b"\x00"),
            _USTAR_MODE_IDS,
            b"%011o\x00" % size,
            b"%011o\x00" % mtime,
        )
    )
    checksum = sum(head) + sum(_USTAR_TAIL) + 8 * 0x20  # the checksum field counts as spaces
    return head + b"%06o\x00 " % checksum + _USTAR_TAIL


def _compress(source: IO[bytes], target: IO[bytes], compression: str) -> None:
    """Compress all of `source` into `target`; the same input always gives the same bytes."""
    if compression == "gzip":
        # mtime=0 and no file name: deterministic output.
        with gzip.GzipFile(
            filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=target, mtime=0
        ) as packed:
            shutil.copyfileobj(source, packed, _READ_CHUNK)
    elif compression == "zstd":
        import zstandard  # optional dependency, checked by S3Settings

        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        compressor.copy_stream(source, target, read_size=_READ_CHUNK, write_size=_READ_CHUNK)
    else:
        raise ValueError(f"unknown compression {compression!r}")


class _Prefixed(io.RawIOBase):
    """A read-only stream: `head` (already read off `body`), then the rest of `body`."""

    def __init__(self, head: bytes, body: Any) -> None:
        self._head = head
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)


class LimitExceeded(tarfile.TarError):
    """A part holds more than `ExportLimits` allow: refused before the excess is read (a
    `TarError`, so every reader treats it as damage)."""


class _BoundedTarInfo(tarfile.TarInfo):
    """A `TarInfo` that refuses, before reading them, the headers tarfile would otherwise read
    whole into memory or follow without end: a pax or GNU long-name header over
    `MAX_META_BYTES`, more than `_MAX_META_DEPTH` of them in a row, a GNU sparse member."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise LimitExceeded(f"member {self.name!r}: a sparse member (parts hold none)")
        if self.type not in _META_TYPES:
            return self._processed(tar)
        if self.size > MAX_META_BYTES:
            raise LimitExceeded(f"a {self.size:,}-byte pax or long-name header (at most 64 KiB)")
        depth = getattr(tar, "_meta_depth", 0)
        if depth >= _MAX_META_DEPTH:
            raise LimitExceeded(f"more than {_MAX_META_DEPTH} pax or long-name headers in a row")
        tar._meta_depth = depth + 1  # type: ignore[attr-defined]
        try:
            return self._processed(tar)
        finally:
            tar._meta_depth = depth  # type: ignore[attr-defined]

    def _processed(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        processed: tarfile.TarInfo = super()._proc_member(tar)  # type: ignore[misc]
        return processed

    def _proc_gnusparse_00(self, *args: Any) -> None:
        raise LimitExceeded(f"member {self.name!r}: a sparse member (parts hold none)")

    _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00


_META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def open_tar_stream(fileobj: Any) -> tarfile.TarFile:
    """A streaming tar reader over a part of any compression (gzip, zstd, none), whose headers
    are bounded (`LimitExceeded`); iterate it with `tar_headers`.

    Python's tarfile cannot read zstd before 3.14, so a zstd frame is unwrapped here.
    """
    head = fileobj.read(len(ZSTD_MAGIC))
    stream: Any = io.BufferedReader(_Prefixed(head, fileobj), _READ_CHUNK)
    if head == ZSTD_MAGIC:
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(stream, read_size=_READ_CHUNK)
    return tarfile.open(fileobj=stream, mode="r|*", tarinfo=_BoundedTarInfo)


def tar_headers(tar: tarfile.TarFile, limits: ExportLimits) -> Iterator[tarfile.TarInfo]:
    """The members of a streaming tar, each checked against `limits` on its header, before its
    data is read: `LimitExceeded` for one member too many or a member larger than a message
    may be. Unlike iterating the `TarFile`, keeps no header once the next is read."""
    count = 0
    while (info := tar.next()) is not None:
        # Stream mode keeps every header it read, however many: not these.
        tar.members.clear()  # type: ignore[attr-defined]
        count += 1
        if count > limits.max_part_members:
            raise LimitExceeded(
                f"more members than a part holds ({limits.hint('max_part_members')})"
            )
        if info.size > limits.max_message_bytes:
            raise LimitExceeded(
                f"member {info.name!r} claims {size_text(info.size)}, more than a message may be"
                f" ({limits.hint('max_message_bytes')})"
            )
        yield info


@dataclass(frozen=True)
class Member:
    """One tar member: name, whether it is a regular file, size from its header, and once read
    its SHA-256 and (when asked for) its bytes."""

    name: str
    is_file: bool
    size: int
    sha256: str = ""  # "" for a header not read (not a file, or not admitted)
    data: bytes | None = None  # only when asked for


def read_members(
    fileobj: Any,
    keep_data: bool = False,
    *,
    admit: Callable[[Member], bool] | None = None,
    limits: ExportLimits | None = None,
) -> Iterator[Member]:
    """Stream the members of a tar (gzip, zstd or none), hashing each.

    Every header is checked against `limits` (default: `export_limits()`) and then shown to
    `admit` (a `Member` with no SHA-256 yet) before any of its data is read: a member `admit`
    returns False for is skipped unread, and `admit` may raise to stop. A member that is not a
    regular file is yielded unread. So a header whose size is not the index's is refused
    before the member's bytes are read, let alone held.

    Raises `tarfile.TarError` (`LimitExceeded` among them), `EOFError`, `OSError`,
    `zlib.error` or `zstandard.ZstdError` on a damaged or oversized stream; callers decide
    whether that is a finding (verify) or a failure.
    """
    limits = limits or export_limits()
    with open_tar_stream(fileobj) as tar:
        for info in tar_headers(tar, limits):
            head = Member(info.name, info.isreg(), info.size)
            if admit is not None and not admit(head):
                continue
            if not head.is_file:
                yield head
                continue
            digest = hashlib.sha256()
            chunks: list[bytes] = []
            stream = tar.extractfile(info)
            assert stream is not None  # a regular file always has a stream
            while chunk := stream.read(_READ_CHUNK):
                digest.update(chunk)
                if keep_data:
                    chunks.append(chunk)
            data = b"".join(chunks) if keep_data else None
            del chunks
            yield Member(info.name, True, info.size, digest.hexdigest(), data)
