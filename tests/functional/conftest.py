"""Fixtures of the functional tests: moto S3, and the `World` of `tests/builders.py` reached
directly or over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.builders import BUCKET, TOKEN, World, write_world
from transfer_runner.platforms.sandbox.platform import SandboxPlatform


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    """moto S3 with the export bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def world(
    request: pytest.FixtureRequest, tmp_path: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The fixture's sandbox plus the acme-com manifest, with moto S3 running; reached
    directly, or over HTTP when parametrized with "http" (`both_platform_paths`)."""
    w = write_world(tmp_path)
    default = os.environ.get("TRANSFER_RUNNER_TEST_PLATFORM_PATH", "sandbox")  # or "http"
    if getattr(request, "param", default) == "sandbox":
        yield w
        return
    from transfer_runner.platforms.http.server import SandboxServer

    monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_TOKEN", TOKEN)
    with SandboxPlatform(w.sandbox) as platform, SandboxServer(platform, token=TOKEN) as server:
        w.platform_url = server.url
        yield w
