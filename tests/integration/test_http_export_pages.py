"""The export over HTTP fetches pages of messages (`POST .../stores/{store}/fetch`), and a
flaky platform slows it down instead of failing it: against `sandbox serve` failing 30% of
its requests (503 and connection resets), a store of 450 messages exports in 5 pages, every
page retried as a whole where needed, and verifies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.builders import FIXTURE
from tests.served import Served
from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner.export.exporter import export_store
from transfer_runner.export.verifier import verify_store
from transfer_runner.platforms.http.client import HttpPlatform
from transfer_runner.s3_client import S3Settings, make_s3_client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pages-token-0b1c"
STORE = "{messages: 80, size: 3KiB}"  # acme's archive in the functional fixture


class Counted:
    """The platform, its message fetches counted."""

    def __init__(self, inner: HttpPlatform) -> None:
        self.inner, self.calls = inner, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("fetch_"):
            self.calls[name] += 1
        return attr


@pytest.mark.parametrize("faults", ["--fail-rate=0", "--fail-rate=0.3"])
def test_a_large_store_exports_in_pages_through_faults(
    tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch, faults: str
) -> None:
    assert STORE in FIXTURE
    make_sandbox(tmp_path, FIXTURE.replace(STORE, "{messages: 450, size: 1KiB}"))
    env = {"PATH": "/usr/bin:/bin", "TRANSFER_RUNNER_SANDBOX_TOKEN": TOKEN}
    args = ("sandbox", "serve", "sandbox.db", "--port", "0", faults, "--faults", "503,reset",
            "--seed", "7")  # fmt: skip
    served = Served.start(args, tmp_path, {**env, "PYTHONPATH": str(ROOT)},
                          tmp_path / "serve.log")  # fmt: skip
    try:
        assert served.url, served.log.read_text()
        for key, value in s3_server.env().items():
            monkeypatch.setenv(key, value)
        platform = Counted(HttpPlatform(served.url, token=TOKEN))
        settings = S3Settings(export_to=f"s3://{s3_server.bucket}/pages-{tmp_path.name[-8:]}")
        s3 = make_s3_client(settings)
        result = export_store(platform, s3, settings, "acme-com", "C-1001", "archive")  # type: ignore[arg-type]
        assert result.messages == 450
        assert platform.calls == Counter({"fetch_messages": 5})  # 100 a page; none one by one
        check = verify_store(platform, s3, settings, "acme-com", "C-1001", "archive")  # type: ignore[arg-type]
        assert check.ok, check
    finally:
        served.kill()
