"""The typed, validated form of a manifest (README: "Writing a manifest")."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["DataMode", "Transfer", "DEFAULT_TRANSFER_FEE"]

DataMode = Literal["migrate", "export", "skip"]
DEFAULT_TRANSFER_FEE = Decimal("25.00")


@dataclass(frozen=True)
class Transfer:
    """One validated transfer. Domains are A-labels (punycode), lowercase, no trailing dot.

    `document` is the normalized manifest as a plain mapping (domains as A-labels,
    `temporary_domain` filled in), which is what playbook templates see.
    """

    name: str
    labels: dict[str, str]
    customer_account: str
    customer_domains: tuple[str, ...]
    reseller_account: str
    reseller_name: str
    users: int
    max_domains: int
    services: tuple[str, ...]
    temporary_domain: str
    customer_ticket: str
    reseller_ticket: str
    quarantine: DataMode
    archive: DataMode
    transfer_fee: Decimal | None  # None: the playbook default applies
    prorate: bool
    path: str  # the file it came from, as given
    sha256: str  # of the file's bytes: a changed manifest is drift
    reviewed_by: str | None = None  # who approved a ticket that needs review (I1)
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    positions: Any = field(default=None, compare=False, repr=False)  # loader.PositionMap

    def locate(self, *path: str | int) -> tuple[int, int]:
        """1-based (line, col) of the node at `path` in the manifest file ((0, 0) if unknown)."""
        if self.positions is None:
            return (0, 0)
        return tuple(self.positions.locate(tuple(path)))

    def data_mode(self, store: str) -> DataMode:
        """The manifest's choice for a store: migrate, export or skip."""
        return self.quarantine if store == "quarantine" else self.archive

    def facts(self) -> dict[str, Any]:
        """What a report shows of the manifest (recorded when the transfer starts): its file,
        accounts, domains and labels; nothing secret is in a manifest."""
        return {
            "path": self.path,
            "customer_account": self.customer_account,
            "reseller_account": self.reseller_account,
            "reseller_name": self.reseller_name,
            "domains": list(self.customer_domains),
            "labels": dict(self.labels),
        }
