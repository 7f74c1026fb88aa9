"""`sandbox serve`: the platform REST API (schemas/platform-api.yaml) over a `SandboxPlatform`.

`build_app` makes the WSGI application (Werkzeug routing and wrappers); `SandboxServer` runs
it on waitress with keep-alive connections (`serving.py`), on 127.0.0.1 by default. Each
request: the `Host` (421 unless a loopback name, the bound address or an allowed host: DNS
rebinding sends the attacker's name), `GET /v1/health` (the one request without a token),
latency, the bearer token (401 whatever the path or method: no route is told without it), the
route (404/405), Idempotency-Key on writes (400), body within its size limit (413), then maybe
an injected fault (`faults.py`), then the handler (`routes.py`), whose errors become RFC 9457
problems. Handlers run on the server's fixed pool of threads, so the sandbox's SQLite
connections (one per thread) are bounded by it.

The access log (logger `transfer_runner.http.server`) shows method, path, status and time,
never headers: neither the Authorization header nor the token is ever logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from transfer_runner import errors
from transfer_runner.platforms.http.faults import FaultPlan
from transfer_runner.platforms.http.problems import error_response, problem
from transfer_runner.platforms.http.routes import ROUTES, Call, Reply, Route
from transfer_runner.platforms.http.serving import DEFAULT_THREADS, DROP_KEY, KeepAliveServer
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = [
    "build_app",
    "SandboxApp",
    "SandboxServer",
    "MAX_JSON_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_KEY_LENGTH",
    "LOOPBACK_HOSTS",
    "host_name",
    "is_loopback",
]

log = logging.getLogger("transfer_runner.http.server")

MAX_JSON_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_KEY_LENGTH = 512  # of an Idempotency-Key, as the contract says
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # always answered, with any port
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what a bearer header can carry: no spaces, ASCII
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")  # a DNS name or an IPv4 address
_PORT = re.compile(r"(?::[0-9]{0,5})?")


class _Dropped(ConnectionAbortedError):
    """An injected fault that drops the connection (the server's `DROP_KEY` hook does it)."""


class SandboxApp:
    """The WSGI application. Build it with `build_app`."""

    def __init__(
        self,
        platform: SandboxPlatform,
        *,
        token: str,
        allowed_hosts: Iterable[str] = (),
        faults: FaultPlan | None = None,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if not _TOKEN.fullmatch(token or ""):
            raise errors.ConfigError(
                "the sandbox server's token must be printable ASCII without spaces, not empty"
            )
        self.platform = platform
        self.faults = faults or FaultPlan()
        self._token = token.encode()
        self.allowed_hosts = frozenset(LOOPBACK_HOSTS) | {_allowed(n) for n in allowed_hosts}
        self._limits = {"json": max_json_bytes, "message": max_message_bytes}
        self._limits["none"] = max_json_bytes
        self._routes = {route.name: route for route in ROUTES}
        self._urls = Map(
            [Rule(r.rule, endpoint=r.name, methods=[r.method]) for r in ROUTES],
            merge_slashes=False,
        )

    def __repr__(self) -> str:
        return f"SandboxApp({self.platform!r}, hosts={sorted(self.allowed_hosts)})"

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request = Request(environ)
        path = _raw_path(environ)
        try:
            response = self._handle(request, path, environ.get("HTTP_HOST"))
        except _Dropped as dropped:
            _log_access(request.method, path, f"dropped ({dropped})", started)
            _drop_connection(environ, str(dropped))
        except Exception:
            log.exception("internal error on %s %s", request.method, path)
            response = problem(500, "internal", "unexpected server error; see the server log")
        _log_access(request.method, path, str(response.status_code), started)
        return response(environ, start_response)

    # -- one request -------------------------------------------------------------------------
    def _handle(self, request: Request, path: str, host: str | None) -> Response:
        if host_name(host or "") not in self.allowed_hosts:
            detail = "this server does not answer to that Host (see sandbox serve --allowed-host)"
            return problem(421, "misdirected-request", detail)
        route, args, refusal = self._match(request.method, path)
        if route is not None and route.name == "health":
            return _reply(route.handler(Call("health", self.platform, {}, {})))
        self.faults.delay()
        if not self._authorized(request.headers.get("Authorization")):
            realm = {"WWW-Authenticate": 'Bearer realm="transfer-runner sandbox"'}
            detail = "a valid bearer token is required"
            return problem(401, "unauthorized", detail, headers=realm)
        if refusal is not None:
            return refusal
        assert route is not None
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
            response = _reply(route.handler(call))
        except errors.PlatformError as exc:
            response = error_response(exc)
        if fault == "lost-ack":
            raise _Dropped("lost-ack")
        return response


def build_app(
    platform: SandboxPlatform,
    *,
    token: str,
    faults: FaultPlan | None,
    allowed_hosts: Iterable[str] = (),
    max_json_bytes: int = MAX_JSON_BYTES,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> SandboxApp:
    """The WSGI application serving `platform` to requests carrying `token`, with a `Host` of
    `LOOPBACK_HOSTS` or `allowed_hosts` (names or addresses, any port)."""
    return SandboxApp(
        platform,
        token=token,
        allowed_hosts=allowed_hosts,
        faults=faults,
        max_json_bytes=max_json_bytes,
        max_message_bytes=max_message_bytes,
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
    return problem(413, "payload-too-large", detail)


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
    """Drop the client's connection with nothing written, through the server's hook."""
    drop = environ.get(DROP_KEY)
    if callable(drop):
        drop()
    raise _Dropped(kind)  # a server without the hook answers its own error


def _log_access(method: str, path: str, outcome: str, started: float) -> None:
    log.info("%s %s %s %.1fms", method, path, outcome, (time.monotonic() - started) * 1000)


def host_name(value: str) -> str | None:
    """The host of a `Host` header (`name[:port]`, `[v6]:port`): lower case, without the port,
    an IPv6 address in brackets and compressed; None when it is neither a name nor an address."""
    text = value.strip().lower()
    if text.startswith("["):
        literal, bracket, port = text[1:].partition("]")
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            return None
        if not bracket:
            return None
    else:
        name, colon, port = text.partition(":")
        port = colon + port
        if not _NAME.fullmatch(name):
            return None
    return name if _PORT.fullmatch(port) else None


def _allowed(value: str) -> str:
    """An allowed host as `host_name` gives it (a bare IPv6 address gets its brackets)."""
    text = value.strip()
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"
    name = host_name(text)
    if name is None:
        raise errors.ConfigError(f"allowed host {value!r} is neither a host name nor an address")
    return name


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


class SandboxServer:
    """`with SandboxServer(platform, port=0) as server: ... server.url ...`.

    Binds on construction (port 0 picks a free port); `start()` serves on a background thread,
    `serve_forever()` in the calling thread; `stop()` shuts down. Every request but the health
    check needs `token`; the `Host` may name loopback, the bound `host` or `allowed_hosts`.
    `threads` requests are handled at once (each sleeps through any injected latency), on
    keep-alive connections.
    """

    def __init__(
        self,
        platform: SandboxPlatform,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str,
        allowed_hosts: Iterable[str] = (),
        faults: FaultPlan | None = None,
        max_json_bytes: int = MAX_JSON_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        self.app = build_app(
            platform,
            token=token,
            allowed_hosts=(*allowed_hosts, host),  # the bound address itself, too
            faults=faults,
            max_json_bytes=max_json_bytes,
            max_message_bytes=max_message_bytes,
        )
        host = host.strip("[]")
        try:
            listener = _listen(host, port)
        except (OSError, OverflowError) as exc:
            raise errors.ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
        # Bodies a little over the app's limits still reach it, which answers a 413 problem.
        body_limit = max(max_json_bytes, max_message_bytes) + 1024 * 1024
        self._server = KeepAliveServer(
            self.app, listener, threads=threads, max_body_bytes=body_limit
        )
        self.host = host
        self._thread: threading.Thread | None = None
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
        return self._server.address[1]

    @property
    def url(self) -> str:
        """`http://HOST:PORT` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.run, name="sandbox-serve", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` from another thread or KeyboardInterrupt."""
        self._server.run()

    def stop(self) -> None:
        """Stop serving and close the sockets (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
