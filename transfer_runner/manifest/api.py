"""Manifests in, `Transfer`s and diagnostics out: discovery, strict loading, schema, semantics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from transfer_runner.domains import normalize_domain
from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.discovery import discover
from transfer_runner.manifest.loader import LoadedManifest
from transfer_runner.manifest.model import Transfer
from transfer_runner.manifest.parallel import check_file, check_files, workers_for
from transfer_runner.manifest.semantic import (
    cross_diagnostics,
    temporary_domain,
)

__all__ = ["DEFAULT_DATA_MODE", "load_transfers", "display_path", "normalize_document"]

DEFAULT_DATA_MODE = "migrate"


def load_transfers(paths: Sequence[str]) -> tuple[list[Transfer], list[Diagnostic]]:
    """Every manifest under `paths`, validated; every problem of every file at once.

    Returns the transfers of the files without problems (in discovery order) and all
    diagnostics sorted by file, line and column.
    """
    files, diagnostics = discover(paths)
    cwd = os.getcwd()
    named = [(file, display_path(file, cwd)) for file in files]
    workers = workers_for(len(named))
    if workers > 1:  # a large tree: the per-file work on several cores
        checked = check_files(named, workers)
    else:
        checked = [check_file(file, display) for file, display in named]
    loaded: list[LoadedManifest] = []
    for manifest, problems in checked:
        diagnostics.extend(problems)
        if manifest is not None:
            loaded.append(manifest)
    del checked  # it holds the same manifests
    diagnostics.extend(cross_diagnostics(loaded))
    failed = {d.path for d in diagnostics}
    transfers: list[Transfer] = []
    loaded.reverse()
    while loaded:  # in discovery order, each parsed document let go once its Transfer is built
        manifest = loaded.pop()
        if manifest.display not in failed:
            transfers.append(_transfer(manifest))
    return transfers, sorted(diagnostics, key=lambda d: (d.path, d.line, d.col, d.where, d.message))


def display_path(path: Path, cwd: str | None = None) -> str:
    """`path` relative to the working directory (`cwd`, read now when not given) when it is
    under it, else as given."""
    try:
        base = os.getcwd() if cwd is None else cwd
        absolute = os.path.abspath(path)
        if absolute == base:
            return "."
        prefix = base if base.endswith(os.sep) else base + os.sep
        return absolute[len(prefix) :] if absolute.startswith(prefix) else str(path)
    except OSError:
        return str(path)


def normalize_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A valid manifest as templates see it: domains as A-labels, defaults filled in
    (temporary domain, labels, data modes, `billing.prorate`); `transfer_fee` stays a string
    and is absent when not given, so the playbook's default applies."""
    out: dict[str, Any] = _copied(doc)
    out["metadata"].setdefault("labels", {})
    spec = out["spec"]
    spec["temporary_domain"] = temporary_domain(doc)
    spec["customer"]["domains"] = [normalize_domain(d) for d in spec["customer"]["domains"]]
    subscription = spec["subscription"]
    subscription["users"], subscription["domains"] = (
        int(subscription["users"]),
        int(subscription["domains"]),
    )
    data = spec.setdefault("data", {})
    data.setdefault("quarantine", DEFAULT_DATA_MODE)
    data.setdefault("archive", DEFAULT_DATA_MODE)
    spec.setdefault("billing", {}).setdefault("prorate", True)
    return out


def _copied(node: Any) -> Any:
    """A copy of a parsed document (mappings, lists and immutable scalars only), without
    `copy.deepcopy`'s memo: a YAML document here has no shared or cyclic nodes."""
    if isinstance(node, dict):
        return {key: _copied(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copied(value) for value in node]
    return node


def _transfer(manifest: LoadedManifest) -> Transfer:
    doc = normalize_document(manifest.document)
    meta, spec = doc["metadata"], doc["spec"]
    fee = spec["billing"].get("transfer_fee")
    return Transfer(
        name=meta["name"],
        labels=dict(meta["labels"]),
        customer_account=spec["customer"]["account"],
        customer_domains=tuple(spec["customer"]["domains"]),
        reseller_account=spec["reseller"]["account"],
        reseller_name=spec["reseller"]["name"],
        users=spec["subscription"]["users"],
        max_domains=spec["subscription"]["domains"],
        services=tuple(spec["services"]),
        temporary_domain=spec["temporary_domain"],
        customer_ticket=spec["authorization"]["customer_ticket"],
        reseller_ticket=spec["authorization"]["reseller_ticket"],
        reviewed_by=spec["authorization"].get("reviewed_by"),
        quarantine=spec["data"]["quarantine"],
        archive=spec["data"]["archive"],
        transfer_fee=Decimal(fee) if fee is not None else None,
        prorate=spec["billing"]["prorate"],
        path=manifest.display,
        sha256=manifest.sha256,
        document=doc,
        positions=manifest.positions,
    )
