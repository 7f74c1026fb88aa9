"""The embedded sandbox platform: the `Platform` Protocol over one SQLite file
(README: "The sandbox platform").

`SandboxPlatform` enforces the real platform's rules (a domain on one account, cancelled
accounts take no writes, idempotency keys); `init_sandbox` creates a sandbox from a YAML
fixture, `dump_sandbox` prints its whole state, and `MailFlow` makes its mailboxes live.
"""

from __future__ import annotations

from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox, load_fixture
from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = [
    "SandboxPlatform",
    "init_sandbox",
    "load_fixture",
    "dump_sandbox",
    "MailFlow",
    "FlowSpec",
]
