"""Plain YAML scalars by the YAML 1.2 core schema, stricter still: only `true`/`false`,
decimal integers without a leading zero (of at most `MAX_INT_DIGITS` digits), floats and
`null`/`~` are not strings; `yes`, `no`, `on`, `0755`, `2026-12-01` and `1:20` are."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_INT_DIGITS", "resolve_plain_scalar"]

MAX_INT_DIGITS = 100

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NANS = frozenset({".nan", ".NaN", ".NAN"})
# The letters a null or a boolean can start with; numbers start with a digit, a sign or a dot.
_MAY_NOT_BE_TEXT = frozenset("nNtTfF")


def resolve_plain_scalar(text: str) -> Any:
    """A plain (unquoted, untagged) scalar by the rules of this module's docstring.

    `ValueError` for an integer of more than `MAX_INT_DIGITS` digits, which no manifest needs
    (and which Python refuses to convert beyond 4,300 digits)."""
    first = text[:1]
    if first.isalpha() and first not in _MAY_NOT_BE_TEXT:  # most scalars: a word, a domain
        return text
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        digits = len(text.lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            raise ValueError(
                f"an integer of {digits} digits is too large (at most {MAX_INT_DIGITS})"
            )
        return int(text)
    if _FLOAT.fullmatch(text) or _INF.fullmatch(text):
        return float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf"))
    if text in _NANS:
        return float("nan")
    return text
