"""`sandbox serve` secure by default (issue 18 part 3), attacked as the issue reproduced it: a
local user with curl (a 9,999.00 charge, an account cancelled), a browser page that rebinds
its DNS name to 127.0.0.1 (a foreign `Host`), route enumeration without a token, and anyone
reading the process list. Each attack gets its status and writes nothing: the sandbox's audit
of write calls (`SandboxPlatform.write_calls`) is the witness, and one authorised write at the
end proves it counts."""

from __future__ import annotations

import http.client
import json
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.served import Served, serve_env, servers
from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

pytestmark = [pytest.mark.e2e]

TOKEN = "secure-serve-token-41d7c0e2b9"
CHARGE = json.dumps({"amount": "9999.00", "reason": "gotcha"})
ATTACKS = (  # what the curl did, and the route guesses of an enumeration
    ("POST", "/v1/accounts/C-1001/charges", CHARGE),
    ("POST", "/v1/accounts/C-1001/cancel", "{}"),
    ("GET", "/v1/accounts/C-1001", None),
    ("GET", "/v1/admin", None),
    ("DELETE", "/v1/credits", None),
    ("POST", "/v1/health", None),
)
GENERATED = re.compile(r"TRANSFER_RUNNER_PLATFORM_TOKEN=(\S+) transfer-runner --platform ")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def problem_type(self) -> str:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        return str(json.loads(self.body)["type"])


def call(
    url: str,
    method: str,
    path: str,
    body: str | None = None,
    *,
    token: str | None = TOKEN,
    host: str | None = None,
) -> Answer:
    """One request on its own connection, with the Host header given (default: the URL's)."""
    parts = urlsplit(url)
    headers = {"Idempotency-Key": f"k-{method}-{path}", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if host is not None:
        headers["Host"] = host
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        reply = conn.getresponse()
        return Answer(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        conn.close()


_env = serve_env  # the environment a served sandbox runs in (no TRANSFER_RUNNER_*)


def _writes(sandbox: Path) -> int:
    with SandboxPlatform(str(sandbox)) as platform:
        return platform.write_calls()


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path)


@pytest.fixture
def serve(tmp_path: Path, sandbox: Path) -> Iterator[Any]:
    """serve(*ARGS, env=...) starts `sandbox serve SANDBOX --port 0 ARGS` (by default with
    TOKEN in TRANSFER_RUNNER_SANDBOX_TOKEN); all killed after the test."""
    with servers(Served, tmp_path, _env(TRANSFER_RUNNER_SANDBOX_TOKEN=TOKEN)) as begin:
        yield lambda *args, env=None: begin((str(sandbox), "--port", "0", *args), env)


def test_requests_without_the_token_are_401_whatever_they_ask_and_write_nothing(
    serve: Any, sandbox: Path
) -> None:
    served = serve()
    before = _writes(sandbox)
    for method, path, body in ATTACKS:
        for token in (None, "", "wrong", TOKEN[:-1], TOKEN + "x"):
            answer = call(served.url, method, path, body, token=token)
            assert (answer.status, answer.problem_type) == (401, "/problems/unauthorized"), (
                method,
                path,
                token,
            )
            assert answer.headers["www-authenticate"].startswith("Bearer ")
    assert _writes(sandbox) == before
    # The token holder is answered, and the audit counts its one write.
    assert call(served.url, "GET", "/v1/admin").status == 404
    assert call(served.url, "DELETE", "/v1/credits").status == 405
    assert call(served.url, "GET", "/v1/health", token=None).status == 200  # the only one
    comment = json.dumps({"body": "let in"})
    assert call(served.url, "POST", "/v1/tickets/T-5001/comments", comment).status == 201
    assert served.stop()[0] == 0
    assert _writes(sandbox) == before + 1
    dump = dump_sandbox(str(sandbox))
    ticket = next(t for t in dump["tickets"] if t["id"] == "T-5001")
    assert dump["charges"] == [] and ticket["comments"] == ["let in"]
    assert next(a for a in dump["accounts"] if a["id"] == "C-1001")["status"] == "active"


def test_a_foreign_host_is_421_even_with_the_token_and_writes_nothing(
    serve: Any, sandbox: Path
) -> None:
    served = serve("--allowed-host", "panel.test")
    port = urlsplit(served.url).port
    before = _writes(sandbox)
    for host in ("attacker.example", f"attacker.example:{port}", f"127.0.0.1.nip.io:{port}", ""):
        for method, path, body in (*ATTACKS, ("GET", "/v1/health", None)):
            answer = call(served.url, method, path, body, host=host)
            assert answer.status == 421, (host, method, path, answer.body)
            assert answer.problem_type == "/problems/misdirected-request"
    assert _writes(sandbox) == before
    for host in ("localhost", f"localhost:{port}", "[::1]:1", "127.0.0.1:9", "PANEL.test:8443"):
        assert call(served.url, "GET", "/v1/accounts/C-1001", host=host).status == 200, host
    code, _, err = served.stop()
    assert code == 0 and "Traceback" not in err
    assert "GET /v1/health 421" in err  # the access log shows the refusals
    assert _writes(sandbox) == before


def test_without_a_token_one_is_generated_printed_once_on_stderr_and_required(
    serve: Any,
) -> None:
    served = serve(env=_env())
    assert served.line.strip().endswith("(generated token, shown on stderr)")
    found = GENERATED.search(served.log.read_text())  # written before the banner line
    assert found, served.log.read_text()
    token = found.group(1)
    assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert call(served.url, "GET", "/v1/accounts/C-1001", token=token).status == 200
    assert call(served.url, "GET", "/v1/accounts/C-1001", token=None).status == 401
    assert call(served.url, "GET", "/v1/accounts/C-1001", token=TOKEN).status == 401
    code, out, err = served.stop(signal.SIGTERM)
    assert code == 0, err
    assert err.count(token) == 1 and token not in served.line + out  # -vvv logs included
    assert f"--platform {served.url} " in err
    other = serve(env=_env())
    other_token = GENERATED.search(other.log.read_text())
    assert other_token and other_token.group(1) != token


@pytest.mark.parametrize("source", ["environment", "file"])
def test_the_token_never_shows_in_the_process_list(serve: Any, tmp_path: Path, source: str) -> None:
    if source == "file":
        path = tmp_path / "token.txt"
        path.write_text(TOKEN + "\n", encoding="utf-8")
        path.chmod(0o600)
        served = serve("--token-file", str(path), env=_env())
        assert served.line.strip().endswith("(token from --token-file)")
    else:
        served = serve()
        assert served.line.strip().endswith("(token from TRANSFER_RUNNER_SANDBOX_TOKEN)")
    assert call(served.url, "GET", "/v1/accounts/C-1001").status == 200  # that token it is
    cmdline = Path(f"/proc/{served.proc.pid}/cmdline").read_bytes()  # what `ps` shows
    assert b"sandbox\x00serve" in cmdline and TOKEN.encode() not in cmdline
    code, out, err = served.stop()
    assert code == 0 and TOKEN not in served.line + out + err
    assert "readable by other users" not in err
