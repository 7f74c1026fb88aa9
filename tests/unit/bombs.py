"""Small inputs that claim, or inflate to, huge ones (issue 18, "bounded everywhere"), and the
peak-RSS measurement of a child process that meets them.

Nothing here holds a bomb's inflated size in memory: each is built from a small repeated unit,
and `LazyTar` makes a member's bytes only when they are read (and counts what was read).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class Served:
    """What the loopback server answers every request with: `body`, then `zeros` zero bytes
    made as they are sent; `Content-Length` unless `chunked`. `seen` holds each request's
    headers."""

    body: bytes = b"{}"
    zeros: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    seen: list[dict[str, str]] = field(default_factory=list)

    def pieces(self) -> Iterator[bytes]:
        yield self.body
        left = self.zeros
        while left:
            count = min(left, MiB)
            left -= count
            yield bytes(count)


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            served.seen.append(dict(self.headers.items()))
            self.send_response(200)
            for name, value in {"Content-Type": "application/json", **served.headers}.items():
                self.send_header(name, value)
            if served.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(served.body) + served.zeros))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may hang up: it refused the reply
                for piece in served.pieces():
                    if served.chunked and piece:
                        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                    self.wfile.write(piece)
                if served.chunked:
                    self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = _serve

    return Handler


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def start_server(served: Served) -> _Quiet:
    """A loopback HTTP server answering every request with `served`, serving on a daemon
    thread (a child process may just exit); its base URL is `url(server)`."""
    httpd = _Quiet(("127.0.0.1", 0), _handler(served))
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    return httpd


def url(httpd: _Quiet) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@contextlib.contextmanager
def http_server(served: Served) -> Iterator[str]:
    """`start_server`, stopped at the end; yields its base URL."""
    httpd = start_server(served)
    try:
        yield url(httpd)
    finally:
        httpd.shutdown()
        httpd.server_close()


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
