"""The kill points: production code only calls `testpoints.reached`; the tests' hook
(`kill_points`) is installed from the environment by the CLI's entry point, and `POINT#N` fires
on the N-th time a point is reached."""

from __future__ import annotations

import subprocess
import sys

import pytest

from transfer_runner import kill_points, testpoints


@pytest.fixture
def killed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    signals: list[int] = []
    monkeypatch.setattr(kill_points.os, "kill", lambda pid, sig: signals.append(sig))
    before = testpoints.install(None)
    yield signals
    testpoints.install(before)


def test_a_numbered_point_fires_on_its_occurrence_only(killed: list[int]) -> None:
    assert kill_points.install_from_env({kill_points.CRASH_ENV: "platform-after-x#3"})
    for _ in range(2):
        testpoints.reached("platform-after-x")
    testpoints.reached("platform-after-y")
    assert killed == []
    testpoints.reached("platform-after-x")
    assert len(killed) == 1
    testpoints.reached("platform-after-x")
    assert len(killed) == 1


def test_a_bare_point_fires_every_time(killed: list[int]) -> None:
    kill_points.install_from_env({kill_points.CRASH_ENV: "a, b"})
    testpoints.reached("b")
    testpoints.reached("c")
    testpoints.reached("b")
    assert len(killed) == 2


def test_without_the_variables_no_hook_is_installed(killed: list[int]) -> None:
    assert kill_points.install_from_env({kill_points.CRASH_ENV: " "}) is None
    testpoints.reached("a")
    assert killed == [] and testpoints.install(None) is None


def test_production_modules_never_read_the_kill_variables() -> None:
    """Importing the package and reaching a point with the variable set does nothing: only an
    entry point that installs the hook makes the variable count."""
    code = (
        "import os, transfer_runner.engine.runner, transfer_runner.export.exporter;"
        "from transfer_runner import testpoints;"
        "testpoints.reached('after-step-1'); print('alive')"
    )
    env = {kill_points.CRASH_ENV: "after-step-1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr
