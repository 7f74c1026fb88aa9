"""Invariant I6 on the SQLite state: a transfer held by another runner is not executed."""

from __future__ import annotations

from tests.builders import World, both_platform_paths
from transfer_runner import commands
from transfer_runner.errors import StateError
from transfer_runner.state.open import open_state

pytestmark = both_platform_paths  # the embedded sandbox, and over HTTP


def test_locked_transfer_is_skipped_and_reported(world: World) -> None:
    state = open_state(f"sqlite:{world.state}")
    assert state.acquire_lock("acme-com", "ci-job-7", "r-other", "other-host", 600)
    state.close()
    [result] = world.apply().transfers
    assert result.status == "locked"
    assert "ci-job-7" in result.message
    assert world.writes() == 0

    removed = commands.unlock(world.settings(), "acme-com")
    assert removed.owner == "ci-job-7"
    assert world.apply().transfers[0].status == "succeeded"


def test_expired_lock_is_taken_over(world: World) -> None:
    state = open_state(f"sqlite:{world.state}")
    assert state.acquire_lock("acme-com", "crashed-runner", "r-dead", "gone", -1)
    state.close()
    assert world.apply().transfers[0].status == "succeeded"


def test_lock_is_released_after_apply(world: World) -> None:
    world.apply()
    state = open_state(f"sqlite:{world.state}")
    try:
        assert state.get_lock("acme-com") is None
    finally:
        state.close()


def test_unlock_without_lock_is_an_error(world: World) -> None:
    import pytest

    with pytest.raises(StateError, match="not locked"):
        commands.unlock(world.settings(), "acme-com")
