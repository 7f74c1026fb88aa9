"""The platform and the state store of one command (or of one `apply --procs` worker): opened
together, throttled as the bulk options say, closed together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from transfer_runner.command_types import BulkOptions
from transfer_runner.config import Settings

if TYPE_CHECKING:
    from transfer_runner.platforms.base import Platform
    from transfer_runner.state.base import StateStore

__all__ = ["session"]


@contextmanager
def session(
    settings: Settings, *, read_only: bool, bulk: BulkOptions | None = None
) -> Iterator[tuple[Platform, StateStore]]:
    """The platform (throttled as `bulk` says) and the state store of one command, both
    closed when it ends."""
    from transfer_runner.platforms import open_platform
    from transfer_runner.platforms.throttle import ThrottledPlatform
    from transfer_runner.state.open import open_state

    with ExitStack() as stack:
        platform: Platform = open_platform(settings.platform)
        stack.callback(platform.close)
        if bulk and (bulk.max_platform_calls_per_second or bulk.max_platform_concurrency):
            platform = ThrottledPlatform(
                platform,
                per_second=bulk.max_platform_calls_per_second,
                concurrency=bulk.max_platform_concurrency,
            )
        state = open_state(settings.state, read_only=read_only)
        stack.callback(state.close)
        yield platform, state
