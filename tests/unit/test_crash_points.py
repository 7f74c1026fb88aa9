"""The crash hook's `POINT#N` form fires on the N-th time a point is reached."""

from __future__ import annotations

import pytest

from transfer_runner import crash


def test_a_numbered_point_fires_on_its_occurrence_only(monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    monkeypatch.setattr(crash.os, "kill", lambda pid, sig: killed.append(sig))
    monkeypatch.setattr(crash, "_reached", {})
    monkeypatch.setenv(crash.CRASH_ENV, "platform-after-x#3")
    for _ in range(2):
        crash.crash_point("platform-after-x")
    crash.crash_point("platform-after-y")
    assert killed == []
    crash.crash_point("platform-after-x")
    assert len(killed) == 1
    crash.crash_point("platform-after-x")
    assert len(killed) == 1


def test_a_bare_point_fires_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []
    monkeypatch.setattr(crash.os, "kill", lambda pid, sig: killed.append(sig))
    monkeypatch.setattr(crash, "_reached", {})
    monkeypatch.setenv(crash.CRASH_ENV, "a, b")
    crash.crash_point("b")
    crash.crash_point("c")
    assert len(killed) == 1
