"""Tar parts: written one member at a time into a spooled file, read back as a stream.

A part is a plain POSIX (pax) tar of `<id>.eml` members, gzip-compressed unless compression
is "none", so anyone can open it with `tar`. Writing never holds more than one message plus a
bounded spool in memory; reading (`tarfile` mode "r|*") never seeks and never holds the part.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from transfer_runner.export.s3 import MiB

__all__ = ["GZIP_LEVEL", "SPOOL_LIMIT", "PartWriter", "Member", "read_members", "content_type"]

GZIP_LEVEL = 6
SPOOL_LIMIT = 8 * MiB  # a part larger than this spills to a temporary file on disk
_READ_CHUNK = 1 * MiB


def content_type(compression: str) -> str:
    """The Content-Type of a part object."""
    return "application/gzip" if compression == "gzip" else "application/x-tar"


class PartWriter:
    """One part under construction. `stored_bytes` is its (compressed) size so far."""

    def __init__(self, name: str, compression: str, spool_limit: int = SPOOL_LIMIT) -> None:
        self.name = name
        # The spool and the tar stream are owned by this writer and released by close().
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_limit)  # noqa: SIM115
        self._gzip: gzip.GzipFile | None = None
        target: IO[bytes] = self.file
        if compression == "gzip":
            # mtime=0: the same messages always give the same bytes.
            self._gzip = gzip.GzipFile(
                filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=self.file, mtime=0
            )
            target = self._gzip  # type: ignore[assignment]
        self._tar = tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.members = 0
        self.size: int | None = None  # final size, set by finish()

    @property
    def stored_bytes(self) -> int:
        """Bytes in the spool so far (compression buffers lag a little behind)."""
        return self.file.tell()

    def add(self, member_name: str, raw: bytes, mtime: float) -> None:
        """Append one regular-file member holding `raw`."""
        info = tarfile.TarInfo(member_name)
        info.size = len(raw)
        info.mtime = int(mtime)
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        self._tar.addfile(info, io.BytesIO(raw))
        self.members += 1

    def finish(self) -> int:
        """Close the tar (and gzip) streams; returns the part's size in bytes."""
        self._tar.close()
        if self._gzip is not None:
            self._gzip.close()
        self.size = self.file.tell()
        self.file.seek(0)
        return self.size

    def close(self) -> None:
        """Release the spool (and its temporary file, if it spilled), finished or not."""
        if self.size is None:  # abandoned: close the streams before the file under them
            with contextlib.suppress(OSError, ValueError):
                self._tar.close()
                if self._gzip is not None:
                    self._gzip.close()
        self.file.close()


@dataclass(frozen=True)
class Member:
    """One tar member as read: name, whether it is a regular file, size, SHA-256, bytes."""

    name: str
    is_file: bool
    size: int
    sha256: str
    data: bytes | None = None  # only when asked for


def read_members(fileobj: Any, keep_data: bool = False) -> Iterator[Member]:
    """Stream the members of a tar (any compression tarfile knows), hashing each.

    Raises `tarfile.TarError`, `EOFError`, `OSError` or `zlib.error` on a damaged stream;
    callers decide whether that is a finding (verify) or a failure (import).
    """
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for info in tar:
            if not info.isreg():
                yield Member(info.name, False, info.size, "")
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
            yield Member(info.name, True, info.size, digest.hexdigest(), data)
