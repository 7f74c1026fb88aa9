"""`resolve_plain_scalar`'s shortcut for words gives what the full rules give, for any text."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from transfer_runner.yaml_scalars import MAX_INT_DIGITS, resolve_plain_scalar

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")


def _by_the_rules(text: str) -> Any:
    """The rules without any shortcut (the module's docstring, spelt out)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        if len(text.lstrip("+-")) > MAX_INT_DIGITS:
            return ValueError
        return int(text)
    if _FLOAT.fullmatch(text) or _INF.fullmatch(text):
        return float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf"))
    if text in (".nan", ".NaN", ".NAN"):
        return math.nan
    return text


def _resolved(text: str) -> Any:
    try:
        return resolve_plain_scalar(text)
    except ValueError:
        return ValueError


@given(st.text(max_size=12) | st.from_regex(r"[-+.]?[0-9a-zA-Z.~]{0,8}", fullmatch=True))
@example("null")
@example("Nope")
@example("tRUE")
@example("Infinity")
@example("nan")
@example("é")
@example("1" * 101)
def test_the_shortcut_agrees_with_the_rules(text: str) -> None:
    got, wanted = _resolved(text), _by_the_rules(text)
    if isinstance(wanted, float) and math.isnan(wanted):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert type(got) is type(wanted) and got == wanted
