"""Platform adapters: the only code that talks to the provider's control panel.

`open_platform(url)` picks the adapter by URL scheme: `sandbox:PATH` is the embedded SQLite
platform. Third-party adapters register under the `transfer_runner.platforms` entry-point group
by scheme.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from transfer_runner.errors import ConfigError
from transfer_runner.platforms.base import Platform

__all__ = ["open_platform", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "transfer_runner.platforms"


def open_platform(url: str) -> Platform:
    """The platform adapter for `url` (ConfigError for an unknown scheme or missing sandbox)."""
    scheme, _, rest = url.partition(":")
    if scheme == "sandbox":
        from transfer_runner.platforms.sandbox.platform import SandboxPlatform

        path, _, query = rest.partition("?")
        if not path or not Path(path).is_file():
            raise ConfigError(
                f"no sandbox platform at {path or '(empty path)'}: "
                "create one with `transfer-runner sandbox init PATH --fixture FILE`"
            )
        return SandboxPlatform(path, latency_ms=_latency(query, url))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return ep.load()(url)
    raise ConfigError(
        f"unknown platform URL {url!r}: use sandbox:PATH or a scheme registered under "
        f"the {ENTRY_POINT_GROUP!r} entry-point group"
    )


def _latency(query: str, url: str) -> float:
    """`latency_ms=20` in a sandbox URL simulates a remote platform (benchmarks)."""
    if not query:
        return 0.0
    key, _, value = query.partition("=")
    try:
        latency = float(value)
    except ValueError:
        latency = -1.0
    if key != "latency_ms" or latency < 0:
        raise ConfigError(f"{url}: the only sandbox option is ?latency_ms=N (N >= 0)")
    return latency
