"""Input values as diagnostics show them: short, one line, and never a container's contents.

A manifest is hostile input: a value may be a megabyte long, or a mapping that holds a secret.
Messages name such values without reproducing them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MAX_SHOWN", "clipped", "lines_safe", "log_safe", "shown", "shown_list"]

# C0 and C1 controls (but tab and newline), DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A line that starts with these, after blanks, is a command to a CI runner: GitHub's workflow
# commands (`::error::`, `::add-mask::`, `::stop-commands::`) and Azure's (`##vso[`, `##[`).
_CI_COMMANDS = ("::", "##vso[", "##[")

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


def log_safe(text: str) -> str:
    """`text` as one line no terminal or CI runner acts on: newlines and other control
    characters (terminal escapes among them) shown as `\\n`, `\\x1b`..., and a leading `::`,
    `##vso[` or `##[` preceded by a backslash. For text from the platform, S3 or a manifest."""
    one = text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    return _defused(_CONTROLS.sub(_escaped, one))


def lines_safe(text: str) -> str:
    """`text` with its lines kept, each made safe as `log_safe` makes one line."""
    return "\n".join(log_safe(line) for line in text.split("\n"))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _defused(line: str) -> str:
    body = line.lstrip()
    if body.startswith(_CI_COMMANDS):
        return f"{line[: len(line) - len(body)]}\\{body}"
    return line
