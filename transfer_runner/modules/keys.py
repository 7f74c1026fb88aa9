"""Idempotency keys: derived from the transfer name and the step, never random.

The same transfer and step always yield the same key, so a retry or a re-run after a crash
replays the platform's first result instead of acting twice (invariant I3).
"""

from __future__ import annotations

__all__ = ["idempotency_key", "with_attempt"]


def idempotency_key(kind: str, transfer: str, *parts: str) -> str:
    """`kind:transfer[:part…]`, e.g. `transfer-fee:acme-com`, `domain-move:acme-com:acme.com`."""
    return ":".join((kind, transfer, *parts))


def with_attempt(key: str, attempt: int) -> str:
    """The key of a write made before the cut-over, which an `abort` undoes, as the
    transfer's n-th attempt (after n-1 aborts) sends it: `key` for the first, `key#n` after,
    since the platform remembers the first attempt's key with that attempt's request
    (`account:acme-com#2`)."""
    return key if attempt <= 1 else f"{key}#{attempt}"
