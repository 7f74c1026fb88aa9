"""The StateStore contract (tests/contracts/state_store.py) against S3 on a real server on
loopback: conditional writes, listing and races as a real server does them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contracts.state_store import *  # noqa: F403 (the contract's tests and fixtures)
from transfer_runner.state.base import StateStore
from transfer_runner.state.s3 import S3StateStore

pytestmark = pytest.mark.integration


@pytest.fixture
def make_store(s3_server: Any, s3_env: str) -> Callable[..., StateStore]:
    url = f"s3://{s3_server.bucket}/{s3_env}/state"

    def s3(read_only: bool = False) -> StateStore:
        return S3StateStore(url, read_only=read_only)

    return s3
