"""Platform adapters: the only code that talks to the provider's control panel.

`open_platform(url)` picks the adapter by URL scheme: `sandbox:PATH` is the embedded SQLite
platform, `http://` and `https://` the platform REST API. Third-party adapters register a
factory `(url: str) -> Platform` under the `transfer_runner.platforms` entry-point group, named
by scheme (this package registers `http` and `https` there too, as the example to copy).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from transfer_runner.errors import ConfigError, TransferRunnerError
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
    if scheme in ("http", "https"):
        from transfer_runner.platforms.http.client import open_http_platform

        return open_http_platform(url)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return _open_plugin(ep, url)
    raise ConfigError(
        f"unknown platform URL scheme {scheme!r}: use sandbox:PATH, http(s)://HOST or a scheme "
        f"registered under the {ENTRY_POINT_GROUP!r} entry-point group"
    )


def _open_plugin(ep: EntryPoint, url: str) -> Platform:
    """Load a plug-in and open `url` with it; a broken plug-in is a ConfigError naming it."""
    name = f"platform plug-in {ep.name!r} ({ep.value})"
    try:
        factory = ep.load()
    except Exception as exc:  # any import-time failure of third-party code
        raise ConfigError(f"{name} could not be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"{name} is not callable: it must be a factory (url) -> Platform")
    try:
        platform = factory(url)
    except TransferRunnerError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"{name} failed to open the platform: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(platform, Platform):
        raise ConfigError(
            f"{name} returned a {type(platform).__name__}, which does not implement the "
            "Platform protocol (transfer_runner.platforms.base.Platform)"
        )
    return platform


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
