"""Which modules a playbook may name: the built-in families, then any a package registers
under the `transfer_runner.modules` entry point (a registered name replaces a built-in)."""

from __future__ import annotations

from importlib.metadata import entry_points

from transfer_runner.modules import (
    account,
    billing,
    data,
    data_import,
    domain,
    final_sync,
    ticket,
)
from transfer_runner.modules.base import ModuleRegistry

__all__ = ["ENTRY_POINT_GROUP", "load_modules"]

ENTRY_POINT_GROUP = "transfer_runner.modules"


def load_modules() -> ModuleRegistry:
    """The built-in modules plus any registered under the `transfer_runner.modules` entry point."""
    registry: ModuleRegistry = {}
    for family in (ticket, account, data, data_import, final_sync, domain, billing):
        for module in family.MODULES:
            registry[module.name] = module
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        registry[ep.name] = ep.load()()
    return registry
