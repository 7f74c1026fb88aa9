"""The HTTP server under `sandbox serve`: waitress, with keep-alive and a fixed pool of threads.

Werkzeug's development server closes the connection after every reply, so each platform call
cost a new TCP connection and a new thread on both sides; a real control panel keeps
connections alive, and a benchmark of the runner must not measure the server's accept loop.

Two things waitress does not give, added here:
- **A way to drop a connection** (the `reset` and `lost-ack` faults): every request's environ
  holds a callable under `DROP_KEY` that shuts the client's socket down and ends the request
  with nothing written.
- **A stop from another thread**: the event loop runs one poll at a time until `stop()` sets
  its flag and wakes it through waitress's trigger; the loop's thread then closes every socket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

__all__ = ["DROP_KEY", "DEFAULT_THREADS", "KeepAliveServer"]

DROP_KEY = "transfer_runner.drop_connection"
DEFAULT_THREADS = 64  # requests handled at once: above a wave's forks, which sleep on latency
IDLE_TIMEOUT_S = 120  # an idle keep-alive connection is closed after this
# waitress warns "Task queue depth is N" whenever a request waits for a thread, which also
# happens between a thread's wake-up and its taking the task: noise in `sandbox serve`'s output.
_QUEUE_LOG = logging.Logger("transfer_runner.http.queue", level=logging.ERROR)


class _Task(WSGITask):
    """waitress's WSGI task, with `DROP_KEY` in the environ."""

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        environ[DROP_KEY] = self._drop
        return environ

    def _drop(self) -> NoReturn:
        sock = self.channel.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # waitress ends a request that raises this without writing a byte, and closes.
        raise ClientDisconnected("dropped by the server (injected fault)")


class _Channel(HTTPChannel):
    task_class = _Task


class _Server(TcpWSGIServer):
    channel_class = _Channel


class KeepAliveServer:
    """A WSGI application served on an already bound `listener` (which this server owns).

    `run()` serves in the calling thread until `stop()` (from any thread) or a
    KeyboardInterrupt; either way it closes the listener and every connection on the way out.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        listener: socket.socket,
        *,
        threads: int = DEFAULT_THREADS,
        max_body_bytes: int,
    ) -> None:
        self._stopping = threading.Event()
        self._running = threading.Event()
        self._closed = threading.Event()
        self._closing = threading.Lock()
        self._map: dict[int, Any] = {}
        self._adj = Adjustments(
            threads=threads,
            ident="transfer-runner-sandbox",
            asyncore_use_poll=True,  # select() stops at 1,024 descriptors
            channel_timeout=IDLE_TIMEOUT_S,
            max_request_body_size=max_body_bytes,
            connection_limit=4096,
            backlog=1024,
            expose_tracebacks=False,
            clear_untrusted_proxy_headers=False,  # no proxy in front: no header rewriting
            log_socket_errors=False,
        )
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.queue_logger = _QUEUE_LOG
        self._dispatcher.set_thread_count(threads)
        sockname = listener.getsockname()
        self._server = _Server(
            app,
            map=self._map,
            _sock=listener,
            dispatcher=self._dispatcher,
            adj=self._adj,
            sockinfo=(listener.family, listener.type, listener.proto, sockname),
            bind_socket=False,
        )
        self.address: tuple[str, int] = (str(sockname[0]), int(sockname[1]))

    def run(self) -> None:
        """Serve until `stop()` or a KeyboardInterrupt."""
        self._running.set()
        try:
            while not self._stopping.is_set():
                wasyncore.loop(
                    timeout=self._adj.asyncore_loop_timeout,
                    use_poll=True,
                    map=self._map,
                    count=1,
                )
        finally:
            self._close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close every socket (idempotent; also for a server never run)."""
        self._stopping.set()
        if self._running.is_set():
            with contextlib.suppress(OSError):
                self._server.pull_trigger()
            self._closed.wait(timeout)
        else:
            self._close()

    def _close(self) -> None:
        with self._closing:
            if self._closed.is_set():
                return
            try:
                self._dispatcher.shutdown(timeout=5)
                wasyncore.close_all(self._map)
            finally:
                self._closed.set()
