"""moto S3 for the export unit tests: a clean AWS environment and one bucket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto import mock_aws

from transfer_runner.s3_client import S3Settings, make_s3_client

# Anything that could point boto3 away from moto (a real endpoint, profile or session).
UNSET = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
)


@contextmanager
def moto_bucket(
    monkeypatch: pytest.MonkeyPatch, bucket: str, settings: S3Settings
) -> Iterator[Any]:
    """moto S3 with `bucket`, reached through the product's own client."""
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = make_s3_client(settings)
        client.create_bucket(Bucket=bucket)
        yield client
