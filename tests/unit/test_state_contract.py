"""The StateStore contract (tests/contracts/state_store.py) against SQLite and S3 on moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contracts.state_store import *  # noqa: F403 (the contract's tests and fixtures)
from tests.unit.test_state_s3_moto import URL, moto_state_bucket
from transfer_runner.state.base import StateStore
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.sqlite import SqliteStateStore


@pytest.fixture(params=["sqlite", "s3-moto"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    if request.param == "sqlite":
        path = tmp_path / "nested" / "state.db"

        def sqlite(read_only: bool = False) -> StateStore:
            return SqliteStateStore(path, read_only=read_only)

        yield sqlite
        return
    with moto_state_bucket(monkeypatch):

        def s3(read_only: bool = False) -> StateStore:
            return S3StateStore(URL, read_only=read_only)

        yield s3
