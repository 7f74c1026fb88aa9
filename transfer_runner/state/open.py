"""Open a state store from its URL (`--state`, `TRANSFER_RUNNER_STATE`)."""

from __future__ import annotations

import re

from transfer_runner.config import DEFAULT_STATE_URL
from transfer_runner.errors import ConfigError
from transfer_runner.state.base import StateStore
from transfer_runner.state.s3 import S3StateStore
from transfer_runner.state.sqlite import SqliteStateStore

__all__ = ["open_state", "DEFAULT_STATE_URL"]

_ACCEPTED = "sqlite:PATH (or a bare PATH), e.g. " + DEFAULT_STATE_URL + ", or s3://BUCKET/PREFIX"
# A scheme is two or more letters before ':' so that a Windows drive (C:\...) stays a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def open_state(url: str, *, read_only: bool = False) -> StateStore:
    """The state store named by `url`: `sqlite:PATH`, a bare path, or `s3://BUCKET/PREFIX`.

    With `read_only`, nothing is written and a missing SQLite file reads as an empty store.
    Opening S3 state for writing first probes that the bucket honours conditional writes.
    """
    text = url.strip()
    if not text:
        raise ConfigError(f"empty state URL; use {_ACCEPTED}")
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme == "s3":
        if not text.startswith("s3://"):
            raise ConfigError(f"state URL {url!r} must look like s3://BUCKET/PREFIX")
        return S3StateStore(text, read_only=read_only)
    if scheme == "sqlite":
        path = text[len("sqlite:") :]
        if not path:
            raise ConfigError(f"state URL {url!r} has no path; use {_ACCEPTED}")
        return SqliteStateStore(path, read_only=read_only)
    if scheme:
        raise ConfigError(f"unsupported state URL {url!r}; use {_ACCEPTED}")
    return SqliteStateStore(text, read_only=read_only)
