"""Idempotency keys: derived from the transfer name and the step, never random.

The same transfer and step always yield the same key, so a retry or a re-run after a crash
replays the platform's first result instead of acting twice (invariant I3).
"""

from __future__ import annotations

__all__ = ["idempotency_key"]


def idempotency_key(kind: str, transfer: str, *parts: str) -> str:
    """`kind:transfer[:part…]`, e.g. `transfer-fee:acme-com`, `domain-move:acme-com:acme.com`."""
    return ":".join((kind, transfer, *parts))
