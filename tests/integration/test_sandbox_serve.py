"""`transfer-runner sandbox serve` in a subprocess on a free loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.served import Served, cli, serve_env, servers
from tests.unit.test_sandbox_fixture import make_sandbox

pytestmark = [pytest.mark.e2e]

TOKEN = "serve-token-8d1e5b2a"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


_env = serve_env  # the environment a served sandbox runs in (no TRANSFER_RUNNER_*)


class ServedHere(Served):
    """`Served` with a small HTTP client for the requests these tests make."""

    def get(
        self, path: str, token: str | None = TOKEN, **kw: Any
    ) -> tuple[int, dict[str, str], bytes]:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, headers=headers, **kw)
        try:
            with _OPENER.open(request, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    with servers(ServedHere, tmp_path, _env(TRANSFER_RUNNER_SANDBOX_TOKEN=TOKEN)) as start:
        yield lambda *args, env=None: start((*args, "--port", "0"), env)


def test_serves_with_a_token_from_the_environment_and_stops_on_sigint(
    serve: Any, sandbox: Path
) -> None:
    served = serve(str(sandbox), env=_env(TRANSFER_RUNNER_SANDBOX_TOKEN=TOKEN))
    assert served.line.strip().endswith("(token from TRANSFER_RUNNER_SANDBOX_TOKEN)")
    assert served.line.startswith(f"serving sandbox {sandbox} on http://127.0.0.1:")
    status, _, body = served.get("/v1/accounts/C-1001")
    assert status == 200 and json.loads(body)["id"] == "C-1001"
    assert served.get("/v1/accounts/C-1001", token=None)[0] == 401
    assert served.get("/v1/accounts/C-1001", token="wrong")[0] == 401
    assert served.get("/v1/health", token=None)[0] == 200
    code, out, err = served.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err
    assert TOKEN not in served.line + out + err  # -vvv: every debug log included
    assert "GET /v1/accounts/C-1001 200" in err and "GET /v1/accounts/C-1001 401" in err


def test_stops_cleanly_on_sigterm(serve: Any, sandbox: Path) -> None:
    served = serve(str(sandbox))
    assert served.get("/v1/tickets/T-5002")[0] == 200
    code, _, err = served.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in err


def test_faults_and_latency_from_the_command_line(serve: Any, sandbox: Path) -> None:
    served = serve(
        str(sandbox),
        "--fail-rate",
        "1",
        "--faults",
        "429",
        "--retry-after",
        "3",
        "--latency",
        "200",
        "--seed",
        "4",
    )
    started = time.monotonic()
    status, headers, body = served.get("/v1/accounts/C-1001")
    assert time.monotonic() - started >= 0.2
    assert status == 429 and headers["Retry-After"] == "3"
    assert json.loads(body)["type"] == "/problems/rate-limited"
    assert served.get("/v1/health")[0] == 200
    assert served.stop()[0] == 0


def test_lost_ack_performs_the_write_that_the_dump_then_shows(serve: Any, sandbox: Path) -> None:
    served = serve(str(sandbox), "--fail-rate", "1", "--faults", "lost-ack")
    body = json.dumps({"amount": "25.00", "reason": "transfer fee"}).encode()
    headers = {"Idempotency-Key": "k-lost-ack", "Content-Type": "application/json"}
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        served.get("/v1/accounts/C-1001/charges", data=body, headers=headers, method="POST")
    assert served.stop()[0] == 0
    dump = subprocess.run(
        cli("sandbox", "dump", str(sandbox)),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    charges = json.loads(dump.stdout)["charges"]
    assert [(c["idempotency_key"], c["amount"]) for c in charges] == [("k-lost-ack", "25.00")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.db"], "error: no sandbox at missing.db"),
        (["{sandbox}", "--faults", "429,boom"], "--faults must be"),
        (["{sandbox}", "--token", "s3cret"], "--token is no longer accepted"),
        (["{sandbox}", "--token-file", "missing.txt"], "--token-file missing.txt: cannot read"),
        (["{sandbox}", "--allowed-host", "a b"], "allowed host 'a b' is neither"),
    ],
)
def test_refusals_are_clean_errors(sandbox: Path, args: list[str], message: str) -> None:
    argv = [a.replace("{sandbox}", str(sandbox)) for a in args]
    proc = subprocess.run(
        cli("sandbox", "serve", *argv, "--port", "0"),
        cwd=sandbox.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "serving" not in proc.stdout
