"""Counting what S3 is asked: every request of every client a module makes."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


def count_requests(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[tuple[str, str]]:
    """(operation, key or prefix) of every S3 call of the clients `module.make_s3_client`
    makes from now on (patched for the test)."""
    seen: list[tuple[str, str]] = []
    real = module.make_s3_client

    def make(settings: Any) -> Any:
        client = real(settings)

        def note(params: dict[str, Any], model: Any, **_: Any) -> None:
            seen.append((model.name, str(params.get("Key") or params.get("Prefix") or "")))

        client.meta.events.register("provide-client-params.s3", note)
        return client

    monkeypatch.setattr(module, "make_s3_client", make)
    return seen
