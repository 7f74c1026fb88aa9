"""`sandbox serve`: the platform REST API (schemas/platform-api.yaml) over a `SandboxPlatform`.

`build_app` makes the WSGI application (Werkzeug routing and wrappers); `SandboxServer` runs
it on Werkzeug's threaded server, on 127.0.0.1 by default. Each request: route (404/405),
latency, bearer token (401), Idempotency-Key on writes (400), body within its size limit (413),
then maybe an injected fault (`faults.py`), then the handler (`routes.py`) on a small worker
pool, whose errors become RFC 9457 problems. Platform calls run on the pool rather than on the
server's thread-per-request because the sandbox keeps one SQLite connection per thread.

The access log (logger `transfer_runner.http.server`) shows method, path, status and time,
never headers: neither the Authorization header nor the token is ever logged.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from transfer_runner import errors
from transfer_runner.platforms.http.faults import FaultPlan
from transfer_runner.platforms.http.problems import error_response, problem
from transfer_runner.platforms.http.routes import ROUTES, Call, Reply, Route
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = [
    "build_app",
    "SandboxApp",
    "SandboxServer",
    "MAX_JSON_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_KEY_LENGTH",
    "is_loopback",
]

log = logging.getLogger("transfer_runner.http.server")

MAX_JSON_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_KEY_LENGTH = 512  # of an Idempotency-Key, as the contract says
DEFAULT_WORKERS = 16


class _Dropped(ConnectionAbortedError):
    """Raised after shutting the client's socket: Werkzeug's server then writes nothing."""


class SandboxApp:
    """The WSGI application; `close()` stops its worker pool. Build it with `build_app`."""

    def __init__(
        self,
        platform: SandboxPlatform,
        *,
        token: str | None = None,
        faults: FaultPlan | None = None,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if token is not None and not token.strip():
            raise errors.ConfigError("the sandbox server's token must not be empty")
        self.platform = platform
        self.faults = faults or FaultPlan()
        self._token = token.encode() if token is not None else None
        self._limits = {
            "json": max_json_bytes,
            "message": max_message_bytes,
            "none": max_json_bytes,
        }
        self._routes = {route.name: route for route in ROUTES}
        self._urls = Map(
            [Rule(r.rule, endpoint=r.name, methods=[r.method]) for r in ROUTES],
            merge_slashes=False,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-api")

    def __repr__(self) -> str:
        return f"SandboxApp({self.platform!r}, token={'set' if self._token else 'none'})"

    @property
    def token_required(self) -> bool:
        """Whether requests need a bearer token."""
        return self._token is not None

    def close(self) -> None:
        """Stop the worker pool (the platform is the caller's to close)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        path = _raw_path(environ)
        try:
            response = self._handle(request, path)
        except _Dropped as dropped:
            _log_access(request.method, path, f"dropped ({dropped})", started)
            _drop_connection(environ, str(dropped))
        except Exception:
            log.exception("internal error on %s %s", request.method, path)
            response = problem(500, "internal", "unexpected server error; see the server log")
        _log_access(request.method, path, str(response.status_code), started)
        return response(environ, start_response)

    # -- one request -------------------------------------------------------------------------
    def _handle(self, request: Request, path: str) -> Response:
        route, args, refusal = self._match(request.method, path)
        if route is not None and route.name == "health":
            return _reply(route.handler(Call("health", self.platform, {}, {})))
        self.faults.delay()
        if refusal is not None:
            return refusal
        assert route is not None
        if not self._authorized(request.headers.get("Authorization")):
            realm = {"WWW-Authenticate": 'Bearer realm="transfer-runner sandbox"'}
            detail = "a valid bearer token is required"
            return problem(401, "unauthorized", detail, headers=realm)
        call_or_refusal = self._call(request, route, args)
        if isinstance(call_or_refusal, Response):
            return call_or_refusal
        return self._perform(route, call_or_refusal)

    def _match(
        self, method: str, path: str
    ) -> tuple[Route | None, Mapping[str, str], Response | None]:
        try:
            name, args = self._urls.bind("sandbox").match(path, method=method)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            detail = f"{method} is not allowed on {path} (allowed: {allowed})"
            return None, {}, problem(405, "method-not-allowed", detail, headers={"Allow": allowed})
        except (NotFound, RequestRedirect):
            return None, {}, problem(404, "not-found", f"no endpoint {method} {path}")
        # Every rule's placeholders use the default converter, which gives strings.
        return self._routes[str(name)], cast(Mapping[str, str], args), None

    def _authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def _call(self, request: Request, route: Route, raw_args: Mapping[str, str]) -> Call | Response:
        key = request.headers.get("Idempotency-Key")
        if route.write and not (key and key.strip()):
            return problem(400, "bad-request", "every write needs an Idempotency-Key header")
        if route.write and key and len(key) > MAX_KEY_LENGTH:
            detail = f"the Idempotency-Key header is longer than {MAX_KEY_LENGTH} characters"
            return problem(400, "bad-request", detail)
        try:
            args = {k: unquote(v, errors="strict") for k, v in raw_args.items()}
        except UnicodeDecodeError:
            return problem(400, "bad-request", "path segments must be percent-encoded UTF-8")
        limit = self._limits[route.body]
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        request.max_content_length = limit
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return _too_large(limit)
        query = request.args.to_dict()
        content_type = request.headers.get("Content-Type", "")
        return Call(
            route.name, self.platform, args, query, body, content_type, key if route.write else None
        )

    def _perform(self, route: Route, call: Call) -> Response:
        fault = self.faults.draw(write=route.write)
        if fault is not None:
            log.debug("injecting fault %s into %s", fault, route.name)
        if fault == "429":
            after = {"Retry-After": str(self.faults.retry_after)}
            return problem(429, "rate-limited", "too many requests (injected)", headers=after)
        if fault == "503":
            return problem(503, "unavailable", "the platform is unavailable (injected)")
        if fault == "reset":
            raise _Dropped("reset")
        try:
            response = _reply(self._pool.submit(route.handler, call).result())
        except errors.PlatformError as exc:
            response = error_response(exc)
        if fault == "lost-ack":
            raise _Dropped("lost-ack")
        return response


def build_app(
    platform: SandboxPlatform,
    *,
    token: str | None,
    faults: FaultPlan | None,
    max_json_bytes: int = MAX_JSON_BYTES,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    workers: int = DEFAULT_WORKERS,
) -> SandboxApp:
    """The WSGI application serving `platform`; `token=None` means no authentication."""
    return SandboxApp(
        platform,
        token=token,
        faults=faults,
        max_json_bytes=max_json_bytes,
        max_message_bytes=max_message_bytes,
        workers=workers,
    )


# -- helpers -------------------------------------------------------------------------------------
def _reply(reply: Reply) -> Response:
    headers = dict(reply.headers)
    if reply.status == 204:
        return Response(status=204, headers=headers)
    if reply.raw is not None:
        return Response(
            reply.raw, status=reply.status, headers=headers, content_type=reply.content_type
        )
    body = json.dumps(reply.data, separators=(",", ":"))
    return Response(body, status=reply.status, headers=headers, content_type="application/json")


def _too_large(limit: int) -> Response:
    detail = f"the request body is larger than {limit} bytes"
    return problem(413, "payload-too-large", detail, headers={"Connection": "close"})


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The request path still percent-encoded, so `%2F` inside an id stays inside it."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if raw.startswith("/"):
            return raw.split("?", 1)[0].split("#", 1)[0] or "/"
        return urlsplit(raw).path or "/"
    path_info = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8", "replace")
    return quote(path_info, safe="/:@!$&'()*+,;=-._~") or "/"


def _drop_connection(environ: Mapping[str, Any], kind: str) -> None:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise _Dropped(kind)


def _log_access(method: str, path: str, outcome: str, started: float) -> None:
    log.info("%s %s %s %.1fms", method, path, outcome, (time.monotonic() - started) * 1000)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _make_server(host: str, port: int, app: SandboxApp) -> BaseWSGIServer:
    """Werkzeug's threaded server on a socket bound here: its own bind calls sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=128)
    try:
        return make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler, fd=listener.fileno()
        )
    finally:
        listener.close()  # the server holds its own duplicate of the descriptor


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without its own access log (ours is in `SandboxApp`)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SandboxServer:
    """`with SandboxServer(platform, port=0) as server: ... server.url ...`.

    Binds on construction (port 0 picks a free port); `start()` serves on a background thread,
    `serve_forever()` in the calling thread; `stop()` shuts down and stops the worker pool. A
    host that is not loopback needs a token (ConfigError otherwise).
    """

    def __init__(
        self,
        platform: SandboxPlatform,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        faults: FaultPlan | None = None,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if not is_loopback(host) and not token:
            raise errors.ConfigError(
                f"refusing to serve the sandbox on {host} without a token: set --token or "
                "TRANSFER_RUNNER_SANDBOX_TOKEN, or serve on 127.0.0.1"
            )
        self.app = build_app(
            platform,
            token=token,
            faults=faults,
            max_json_bytes=max_json_bytes,
            max_message_bytes=max_message_bytes,
            workers=workers,
        )
        host = host.strip("[]")
        try:
            self._server = _make_server(host, port, self.app)
        except (OSError, OverflowError) as exc:
            self.app.close()
            raise errors.ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.host = host
        self._thread: threading.Thread | None = None
        self._serving = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"SandboxServer({self.url!r})"

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://HOST:PORT` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="sandbox-serve",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` from another thread or KeyboardInterrupt."""
        self._serving = True
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            # A KeyboardInterrupt (Ctrl-C, or SIGTERM in `sandbox serve`) can land on entry to
            # socketserver's serve_forever, before it arms the event its shutdown() waits for:
            # that shutdown() would then wait forever. Once this returns, nothing is to stop.
            self._serving = False

    def stop(self) -> None:
        """Stop serving, close the socket and the worker pool (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._serving:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
        self.app.close()
