"""One builder for the tests' worlds: the fixture (accounts, tickets, mail), manifests for it,
and a `World` (sandbox, state, manifests directory) with helpers to run commands on it.

Functional tests get a `World` from the `world` fixture (tests/functional/conftest.py);
integration and CLI tests build one under their own directory with `write_world`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from transfer_runner import commands
from transfer_runner.clock import clock_from_env
from transfer_runner.config import Settings
from transfer_runner.engine.results import RunReport
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

BUCKET = "exports"
SELECTION_KEYS = ("limits", "tags", "shard", "git")

_ACME = """\
  - id: C-1001
    type: direct
    name: Acme Inc
    domains: [acme.com, acme.net]
    users: 40
    services: [spamstopshere, restoremail]
    billing: {{price: "120.00", period_start: today-10d, period_end: today+20d}}
    quarantine: {{messages: {quarantine}, size: {q_size}}}
    archive: {{messages: {archive}, size: {a_size}}}
"""
_GLOBEX_ACCOUNT = """\
  - id: C-1002
    type: direct
    name: Globex
    domains: [globex.io]
    users: 5
    services: [spamstopshere]
    billing: {price: "60.00", period_start: today-10d, period_end: today+20d}
    quarantine: {messages: 5, size: 1KiB}
    archive: {messages: 10, size: 1KiB}
"""
_RESELLER = """\
  - id: R-301
    type: reseller
    name: Northwind IT
"""
_TICKETS = """\
  - id: {customer_ticket}
    account: {account}
    subject: Authorize transfer of account
    body: >-
      We, {domain}, authorize the transfer of our direct account
      to resold under Northwind IT.
  - id: {reseller_ticket}
    account: R-301
    subject: Authorize Customer Transfer
    body: We, Northwind IT, Authorize {domain} to be transferred to our account.
"""


def fixture(
    *,
    seed: int = 7,
    quarantine: tuple[int, str] = (30, "2KiB"),
    archive: tuple[int, str] = (80, "3KiB"),
    globex: bool = True,
) -> str:
    """The sandbox fixture: acme.com's direct account C-1001 (its mail as (messages, size) per
    store), globex.io's C-1002 (with `globex`), the reseller R-301 Northwind IT, and each
    customer's two authorization tickets. Billing periods surround the clock's today, so a
    pro-ration credit is never zero."""
    accounts = _ACME.format(
        quarantine=quarantine[0], q_size=quarantine[1], archive=archive[0], a_size=archive[1]
    )
    tickets = _TICKETS.format(
        customer_ticket="T-5001", reseller_ticket="T-5002", account="C-1001", domain="acme.com"
    )
    if globex:
        accounts += _GLOBEX_ACCOUNT
        tickets += _TICKETS.format(
            customer_ticket="T-5003", reseller_ticket="T-5004", account="C-1002",
            domain="globex.io",
        )  # fmt: skip
    return f"seed: {seed}\naccounts:\n{accounts}{_RESELLER}tickets:\n{tickets}"


FIXTURE = fixture()


def manifest(name: str = "acme-com", **over: Any) -> str:
    """A manifest for the fixture above; keyword arguments override fields."""
    v = {
        "account": "C-1001",
        "domains": "[acme.com, acme.net]",
        "reseller": "R-301",
        "reseller_name": "Northwind IT",
        "users": 40,
        "max_domains": 2,
        "services": "[spamstopshere, restoremail]",
        "customer_ticket": "T-5001",
        "reseller_ticket": "T-5002",
        "quarantine": "export",
        "archive": "migrate",
        "temporary": "gdi.acme.com",
        "prorate": "true",
    }
    v.update(over)
    return textwrap.dedent(
        f"""\
        apiVersion: transfer-runner/v1
        kind: Transfer
        metadata:
          name: {name}
          labels: {{wave: "w1"}}
        spec:
          customer: {{account: {v["account"]}, domains: {v["domains"]}}}
          reseller: {{account: {v["reseller"]}, name: {v["reseller_name"]}}}
          subscription: {{users: {v["users"]}, domains: {v["max_domains"]}}}
          services: {v["services"]}
          temporary_domain: {v["temporary"]}
          authorization:
            customer_ticket: {v["customer_ticket"]}
            reseller_ticket: {v["reseller_ticket"]}
          data: {{quarantine: {v["quarantine"]}, archive: {v["archive"]}}}
          billing: {{prorate: {v["prorate"]}}}
        """
    )


GLOBEX = dict(
    account="C-1002",
    domains="[globex.io]",
    users=5,
    max_domains=1,
    services="[spamstopshere]",
    customer_ticket="T-5003",
    reseller_ticket="T-5004",
    temporary="gdi.globex.io",
)


@dataclass
class World:
    """A sandbox, a state store and a manifests directory in a temporary folder."""

    root: Path
    sandbox: Path
    state: Path
    manifests: Path
    export_to: str = f"s3://{BUCKET}/runs"
    extra: dict[str, Any] = field(default_factory=dict)
    platform_url: str = ""  # http://… when the platform is reached over HTTP

    def settings(self, **over: Any) -> Settings:
        values = {
            "platform": self.platform_url or f"sandbox:{self.sandbox}",
            "state": f"sqlite:{self.state}",
            "export_to": self.export_to,
            "part_size_mib": 1,
        }
        values.update(over)
        return Settings(**values)

    def write(self, filename: str, text: str) -> Path:
        path = self.manifests / filename
        path.write_text(text, encoding="utf-8")
        return path

    def selection(self, *paths: str, **kw: Any) -> commands.Selection:
        """The manifests directory (or `paths`), with `limits`, `tags`, `shard`, `git`."""
        return commands.Selection(paths or [str(self.manifests)], **kw)

    def apply(self, *paths: str, **kw: Any) -> RunReport:
        """`commands.apply`; selection keywords (`limits`, `tags`, ...) go to the Selection."""
        chosen = {k: kw.pop(k) for k in SELECTION_KEYS if k in kw}
        return commands.apply(self.settings(), self.selection(*paths, **chosen), **kw)

    def plan(self, *paths: str, **kw: Any) -> RunReport:
        chosen = {k: kw.pop(k) for k in SELECTION_KEYS if k in kw}
        return commands.plan(self.settings(), self.selection(*paths, **chosen), **kw)

    def dump(self) -> dict[str, Any]:
        return dump_sandbox(self.sandbox)

    def account(self, account_id: str) -> dict[str, Any]:
        return next(a for a in self.dump()["accounts"] if a["id"] == account_id)

    def writes(self) -> int:
        platform = SandboxPlatform(self.sandbox)
        try:
            return platform.write_calls()
        finally:
            platform.close()


PLATFORM_PATHS = ("sandbox", "http")
both_platform_paths = pytest.mark.parametrize("world", PLATFORM_PATHS, indirect=True)
"""Run a test module or test over both paths to the platform: the embedded sandbox, and the
HTTP adapter against `sandbox serve` (in-process, loopback, with a token). Outcomes must be
identical (issue 5)."""

TOKEN = "test-token-0123456789"


def write_manifests(root: Path, *, fixture: str = FIXTURE, globex: bool = False) -> Path:
    """Under `root`: the fixture file `fixture.yml` (for `sandbox init`) and `transfers/` with
    acme-com's manifest (and globex-io's); returns the manifests directory."""
    (root / "fixture.yml").write_text(fixture, encoding="utf-8")
    manifests = root / "transfers"
    manifests.mkdir()
    (manifests / "acme-com.yml").write_text(manifest(), encoding="utf-8")
    if globex:
        (manifests / "globex-io.yml").write_text(manifest("globex-io", **GLOBEX), encoding="utf-8")
    return manifests


def write_world(root: Path, *, fixture: str = FIXTURE, globex: bool = False) -> World:
    """`write_manifests`, and the sandbox `root/sandbox.db` made from the fixture; the state
    store is `root/state.db`, not created yet."""
    manifests = write_manifests(root, fixture=fixture, globex=globex)
    sandbox = root / "sandbox.db"
    init_sandbox(sandbox, root / "fixture.yml")
    return World(root, sandbox, root / "state.db", manifests)


def node_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of a parsed document, the root's `()` first."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += node_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += node_paths(value, (*path, index))
    return found


def cut_over_day() -> date:
    """The session clock's day (`--clock`, else today): a subscription's start in tests."""
    return clock_from_env().now().date()


def next_first(day: date) -> date:
    """The 1st of the month after `day`: where a first period billed on the 1st ends."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
