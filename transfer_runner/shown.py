"""Input values as diagnostics show them: short, one line, and never a container's contents.

A manifest is hostile input: a value may be a megabyte long, or a mapping that holds a secret.
Messages name such values without reproducing them.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_SHOWN", "clipped", "shown", "shown_list"]

# Long enough for any valid value (a 253-character domain name), short enough for a log line.
MAX_SHOWN = 300


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """`repr(value)` for a scalar, its middle elided past `limit` characters (the full length
    follows in parentheses); a mapping or a list is named, not printed."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    full = repr(value)
    text = clipped(full, limit)
    if isinstance(value, str) and text != full:
        text += f" ({len(value)} characters)"
    return text


def shown_list(values: Sequence[str], most: int = 5) -> str:
    """`a, b, c` (unquoted) for a few values; the first `most` and how many more for many."""
    parts = [clipped(v) for v in values[:most]]
    more = len(values) - most
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def clipped(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` itself when short, else its head and tail around `...`."""
    if len(text) <= limit:
        return text
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head - 3, 1)
    return f"{text[:head]}...{text[-tail:]}"
