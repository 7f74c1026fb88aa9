"""Fixtures shared by the unit tests: a small sandbox platform built from a fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A sandbox file created from the unit tests' fixture."""
    return make_sandbox(tmp_path)


@pytest.fixture
def platform(sandbox: Path) -> Iterator[SandboxPlatform]:
    """The sandbox opened as a platform, closed after the test."""
    with SandboxPlatform(sandbox) as p:
        yield p
