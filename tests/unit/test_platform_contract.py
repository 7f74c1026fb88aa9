"""The Platform contract (tests/contracts/platform.py) against the sandbox called directly and
against the HTTP adapter over `sandbox serve` (in-process, loopback, with a token): the same
results and the same errors on both paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contracts.platform import *  # noqa: F403 (the contract's tests)
from transfer_runner.platforms.base import Platform
from transfer_runner.platforms.http.client import HttpPlatform
from transfer_runner.platforms.http.server import SandboxServer
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

TOKEN = "contract-suite-token-0123456789"


@pytest.fixture(params=["sandbox", "http"])
def platform(request: pytest.FixtureRequest, sandbox: Path) -> Iterator[Platform]:
    if request.param == "sandbox":
        with SandboxPlatform(sandbox) as direct:
            yield direct
        return
    backend = SandboxPlatform(sandbox)
    server = SandboxServer(backend, token=TOKEN).start()
    try:
        with HttpPlatform(server.url, token=TOKEN, sleep=lambda s: None) as http:
            yield http
    finally:
        server.stop()
        backend.close()
