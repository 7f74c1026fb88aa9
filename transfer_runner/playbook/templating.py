"""Sandboxed Jinja2 templating with strict undefined variables.

A string that is exactly one `{{ expression }}` keeps the expression's native type (a list stays a
list, an int an int), as in Ansible; any other string renders to a string. Templates cannot reach
Python internals (SandboxedEnvironment) and an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from transfer_runner.errors import TemplateError

__all__ = ["render", "evaluate", "ENVIRONMENT"]

ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}$", re.DOTALL)


@lru_cache(maxsize=4096)
def _compiled_expression(expression: str) -> Any:
    # Compiling is most of templating's cost; a playbook has a few dozen distinct expressions.
    return ENVIRONMENT.compile_expression(expression, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _compiled_template(text: str) -> Any:
    return ENVIRONMENT.from_string(text)


def evaluate(expression: str, variables: Mapping[str, Any], task: str) -> Any:
    """Evaluate a bare Jinja2 expression (used for `when`) to its native value."""
    try:
        value = _compiled_expression(expression)(**variables)
        _reject_undefined(value)
        return value
    except (JinjaTemplateError, ArithmeticError, TypeError, ValueError) as exc:  # a bad expression
        raise TemplateError(task, f"{expression!r}: {exc}") from exc


def render(value: Any, variables: Mapping[str, Any], task: str) -> Any:
    """Render every string inside `value` (dicts and lists recursively)."""
    if isinstance(value, str):
        return _render_string(value, variables, task)
    if isinstance(value, Mapping):
        return {k: render(v, variables, task) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, variables, task) for v in value]
    return value


def _render_string(text: str, variables: Mapping[str, Any], task: str) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    single = _SINGLE_EXPRESSION.match(text.strip())
    if single:
        return evaluate(single.group("expr").strip(), variables, task)
    try:
        return _compiled_template(text).render(**variables)
    except (JinjaTemplateError, ArithmeticError, TypeError, ValueError) as exc:  # a bad expression
        raise TemplateError(task, f"{text!r}: {exc}") from exc


def _reject_undefined(value: Any) -> None:
    # compile_expression hands back an Undefined object instead of raising for a bare name.
    if isinstance(value, StrictUndefined):
        str(value)  # raises UndefinedError with Jinja's own message
