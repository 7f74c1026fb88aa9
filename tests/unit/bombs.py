"""Small inputs that claim, or inflate to, huge ones (issue 18, "bounded everywhere"), and the
peak-RSS measurement of a child process that meets them.

Nothing here holds a bomb's inflated size in memory: each is built from a small repeated unit,
and `LazyTar` makes a member's bytes only when they are read (and counts what was read).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zlib
from pathlib import Path
from typing import Any

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """The header block(s) of one member that claims `size` bytes of data."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, 0o644, kind
    return info.tobuf(tarfile.PAX_FORMAT)


def zstd_bomb(name: str, size: int) -> bytes:
    """A zstd part holding one member of `size` zero bytes: about 32 KiB for 1 GiB."""
    import zstandard

    out = io.BytesIO()
    writer = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)
    writer.write(tar_header(name, size))
    zeros = bytes(MiB)
    for _ in range(size // MiB):
        writer.write(zeros)
    writer.write(bytes(size % MiB + (-size % tarfile.BLOCKSIZE) + 2 * tarfile.BLOCKSIZE))
    writer.flush(zstandard.FLUSH_FRAME)
    writer.close()
    return out.getvalue()


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes as gzip (a member per MiB, as gzip allows): about 1 KiB per MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    unit = packer.compress(bytes(MiB)) + packer.flush()
    return unit * (size // MiB)


class LazyTar(io.RawIOBase):
    """A plain tar stream of `members` ((name, size) or (name, size, type) each, data all zeros,
    made as it is read), then the end of the archive; `read_count` says how many bytes were
    read from it."""

    def __init__(self, *members: tuple[str, int] | tuple[str, int, bytes]) -> None:
        self._pieces: list[bytes | int] = []
        for name, size, *kind in members:
            header = tar_header(name, size, *kind)
            self._pieces += [header, size + (-size % tarfile.BLOCKSIZE)]
        self._pieces.append(bytes(2 * tarfile.BLOCKSIZE))
        self.read_count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._pieces:
            piece = self._pieces[0]
            if isinstance(piece, bytes):
                count = min(len(view), len(piece))
                view[:count] = piece[:count]
                self._pieces[0] = piece[count:]
            else:
                count = min(len(view), piece)
                view[:count] = bytes(count)
                self._pieces[0] = piece - count
            if not self._pieces[0]:
                self._pieces.pop(0)
            if count:
                self.read_count += count
                return count
        return 0


_HEAD = """\
import json, resource, sys
sys.path.insert(0, {root!r})


def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


"""
_TAIL = """
print(json.dumps({"before_kib": before, "after_kib": peak(), "outcome": outcome[:2000]}))
"""


def measured(setup: str, attack: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `setup` then `attack` (Python source) in a child process: its peak RSS (KiB) just
    before and after the attack, `grew_mib` between the two, and what the attack raised
    (`outcome`: "no error", or the exception's type and message)."""
    body = textwrap.indent(textwrap.dedent(attack).strip(), "    ")
    code = (
        _HEAD.format(root=str(ROOT))
        + textwrap.dedent(setup)
        + '\nbefore = peak()\noutcome = "no error"\ntry:\n'
        + body
        + '\nexcept Exception as exc:\n    outcome = f"{type(exc).__name__}: {exc}"\n'
        + _TAIL
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["grew_mib"] = (result["after_kib"] - result["before_kib"]) / 1024
    return result
