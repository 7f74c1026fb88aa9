"""Bundled files (JSON Schemas, the default playbook): found in a source checkout or in the
installed package, so the same code works from `git clone` and from a wheel."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from transfer_runner.errors import ConfigError

__all__ = ["resource_path", "load_json_schema"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent


def resource_path(kind: str, name: str) -> Path:
    """The bundled file `<kind>/<name>`, e.g. `("schemas", "manifest.schema.json")`.

    Looks in the source tree first (`<repo>/<kind>/<name>`), then in the package data
    (`transfer_runner/data/<kind>/<name>`). A missing file means a broken installation.
    """
    for part in (kind, name):
        if not part or "/" in part or "\\" in part or part in (".", ".."):
            raise ValueError(f"invalid resource name component {part!r}")
    candidates = (_REPO_ROOT / kind / name, _PACKAGE_DIR / "data" / kind / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"bundled file {kind}/{name} not found (looked in {looked})")


@cache
def load_json_schema(name: str) -> dict[str, Any]:
    """The parsed bundled JSON Schema `schemas/<name>`, read once. Callers must not mutate it."""
    path = resource_path("schemas", name)
    with path.open(encoding="utf-8") as handle:
        schema = json.load(handle)
    if not isinstance(schema, dict):
        raise ConfigError(f"{path}: a JSON Schema must be an object")
    return schema
