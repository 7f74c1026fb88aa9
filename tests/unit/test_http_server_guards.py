"""`sandbox serve`'s guards, in process: the Host check (421), the token before the route (401,
never 404/405), and where the token comes from (environment, --token-file, generated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from transfer_runner.errors import ConfigError
from transfer_runner.platforms.http.server import (
    LOOPBACK_HOSTS,
    SandboxApp,
    SandboxServer,
    build_app,
    host_name,
)
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
from transfer_runner.sandbox_commands import serve_token

TOKEN = "guard-token-0c4e9a"
CHARGE = json.dumps({"amount": "9999.00", "reason": "not yours"})


def _call(
    app: SandboxApp,
    method: str,
    path: str,
    *,
    host: str | None = "127.0.0.1:8080",
    token: str | None = TOKEN,
    body: str | None = None,
) -> Response:
    """One request through the WSGI app; `host=None` sends no Host header at all."""
    headers = {"Idempotency-Key": f"k-{method}-{path}", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    environ = EnvironBuilder(path=path, method=method, headers=headers, data=body).get_environ()
    environ.pop("HTTP_HOST", None)
    if host is not None:
        environ["HTTP_HOST"] = host
    return Response.from_app(app, environ)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("LocalHost:1", "localhost"),
        ("localhost:", "localhost"),
        ("[::1]:8080", "[::1]"),
        ("[0:0:0:0:0:0:0:1]", "[::1]"),
        ("panel.test:8443", "panel.test"),
        ("", None),
        ("localhost.", None),  # not the same name to us: only the names listed are answered
        ("::1", None),  # an IPv6 address without brackets is not a Host
        ("[::1", None),
        ("[evil]:80", None),
        ("localhost:80:80", None),
        ("localhost:http", None),
        ("evil.test@127.0.0.1", None),
        ("a b", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_the_answered_hosts(platform: SandboxPlatform) -> None:
    app = build_app(
        platform, token=TOKEN, faults=None, allowed_hosts=("Panel.Test", "::", "10.1.2.3")
    )
    assert app.allowed_hosts == {*LOOPBACK_HOSTS, "panel.test", "[::]", "10.1.2.3"}
    with pytest.raises(ConfigError, match="allowed host 'http://x' is neither"):
        build_app(platform, token=TOKEN, faults=None, allowed_hosts=("http://x",))
    # the address the server binds is answered too
    with SandboxServer(platform, host="127.0.0.2", token=TOKEN) as server:
        assert "127.0.0.2" in server.app.allowed_hosts


@pytest.mark.parametrize(
    "host", [None, "", "attacker.example", "attacker.example:8080", "127.0.0.1.nip.io", "[::2]"]
)
def test_a_foreign_host_is_421_before_anything_else(
    platform: SandboxPlatform, host: str | None
) -> None:
    app = build_app(platform, token=TOKEN, faults=None)
    before = platform.write_calls()
    for method, path, body in (
        ("POST", "/v1/accounts/C-1001/charges", CHARGE),
        ("POST", "/v1/accounts/C-1001/cancel", "{}"),
        ("GET", "/v1/health", None),
        ("GET", "/v1/nothing/here", None),
    ):
        for token in (TOKEN, None):
            reply = _call(app, method, path, host=host, token=token, body=body)
            assert reply.status_code == 421, (method, path, token, reply.get_data())
            problem = json.loads(reply.get_data())
            assert problem["type"] == "/problems/misdirected-request", problem
            assert reply.headers["Content-Type"] == "application/problem+json"
            assert "WWW-Authenticate" not in reply.headers
    assert platform.write_calls() == before
    assert _call(app, "POST", "/v1/accounts/C-1001/charges", body=CHARGE).status_code == 201
    assert platform.write_calls() == before + 1  # the count does see a write that is let in


def test_the_token_comes_before_the_route(platform: SandboxPlatform) -> None:
    app = build_app(platform, token=TOKEN, faults=None)
    cases = [
        ("GET", "/v1/nothing/here", 404),
        ("DELETE", "/v1/credits", 405),
        ("POST", "/v1/health", 405),
        ("PATCH", "/v1/accounts/C-1001", 405),
        ("GET", "/v1/accounts/C-1001/", 404),
        ("POST", "/v1/accounts/C-1001/charges", 201),
    ]
    before = platform.write_calls()
    for method, path, _ in cases:
        for token in (None, "wrong", ""):
            reply = _call(app, method, path, token=token, body=CHARGE)
            assert reply.status_code == 401, (method, path, token)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer ")
    assert platform.write_calls() == before
    for method, path, status in cases:  # what the token holder is told instead
        assert _call(app, method, path, body=CHARGE).status_code == status, (method, path)
    assert _call(app, "GET", "/v1/health", token=None).status_code == 200


# -- where the token comes from ------------------------------------------------------------------
def test_a_token_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert serve_token(" from-env ", None) == serve_token("from-env", None)
    assert serve_token("from-env", None).source == "environment"
    path = tmp_path / "token"
    path.write_text("from-file\n", encoding="utf-8")
    path.chmod(0o600)
    said: list[str] = []
    found = serve_token(None, str(path), say=said.append)
    assert (found.value, found.source, said) == ("from-file", "file", [])
    assert "from-file" not in repr(found)
    path.chmod(0o644)
    serve_token(None, str(path), say=said.append)
    assert said == [f"warning: --token-file {path} is readable by other users (chmod 600 it)"]


def test_without_one_a_token_is_generated() -> None:
    first, second = serve_token(None, None), serve_token(None, None)
    assert first.source == second.source == "generated"
    assert first.value != second.value and len(first.value) >= 43  # 32 random bytes
    assert first.value not in repr(first)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "cannot read it: No such file or directory"),
        ("empty", "is empty"),
        ("binary", "not UTF-8 text"),
        ("both", "give the sandbox token one way"),
    ],
)
def test_token_refusals(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "token"
    if setup == "empty":
        path.write_text(" \n", encoding="utf-8")
    elif setup == "binary":
        path.write_bytes(b"\xff\xfe")
    elif setup == "both":
        path.write_text("t", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        serve_token("env" if setup == "both" else None, str(path))
