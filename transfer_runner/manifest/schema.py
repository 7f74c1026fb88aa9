"""Schema layer: `schemas/manifest.schema.json` errors as located, readable diagnostics."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.loader import NodePath, PositionMap, format_path
from transfer_runner.manifest.semantic import looks_like_secret
from transfer_runner.resources import load_json_schema
from transfer_runner.schema_errors import failed_instance, failed_schema, failed_value
from transfer_runner.shown import shown

__all__ = ["SCHEMA_NAME", "fast_valid", "manifest_validator", "schema_diagnostics"]

SCHEMA_NAME = "manifest.schema.json"

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}

_Located = tuple[NodePath, bool, str]  # path, point at the key?, message


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema counts 1000.0 as an integer; a manifest's `1e3` or `40.0` is not one."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@lru_cache(maxsize=1)
def _compiled_check() -> Callable[[Any], Any]:
    """The manifest schema compiled to Python (fastjsonschema), to answer "valid" quickly.

    It is never the one that reports: a document it refuses, or one holding a float, goes to
    jsonschema (`manifest_validator`), which locates every error. It only needs to be no laxer
    than jsonschema: it is stricter in places (`$` in a pattern is the true end), and it takes
    `1.0` for an integer, which is why documents with floats never take this path. References
    are inlined and `$schema` dropped (fastjsonschema knows drafts up to 7; the keywords used
    mean the same there); defaults are never filled in."""
    import fastjsonschema

    schema = load_json_schema(SCHEMA_NAME)
    inlined = _inline_refs({k: v for k, v in schema.items() if k != "$schema"}, schema)
    check: Callable[[Any], Any] = fastjsonschema.compile(
        inlined, use_default=False, use_formats=False
    )
    return check


def _inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """`node` with every local `$ref` replaced by what it points to (kept beside its sibling
    keywords under `allOf`, as 2020-12 reads them)."""
    if isinstance(node, list):
        return [_inline_refs(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_refs(v, root) for k, v in node.items() if k not in ("$ref", "$defs")}
    ref = node.get("$ref")
    if ref is None:
        return out
    target: Any = root
    for part in str(ref).removeprefix("#/").split("/"):
        target = target[part]
    return {**out, "allOf": [_inline_refs(target, root)]}


def fast_valid(doc: Any) -> bool:
    """True when `doc` certainly meets the schema (no float in it, and the compiled check
    passes); False means "ask jsonschema", not "invalid"."""
    import fastjsonschema

    if _holds_float(doc):
        return False
    try:
        _compiled_check()(doc)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _holds_float(node: Any) -> bool:
    if isinstance(node, float):
        return True
    if isinstance(node, dict):
        return any(_holds_float(v) for v in node.values())
    if isinstance(node, list):
        return any(_holds_float(v) for v in node)
    return False


@lru_cache(maxsize=1)
def manifest_validator() -> Draft202012Validator:
    """The manifest schema's validator (the schema itself is checked once, here); integers
    are whole numbers written as such, not floats with no fraction, so `users: 1e3` is
    refused, never silently read as 1000. Imported when first needed: a tree of valid
    manifests never needs it."""
    from jsonschema import Draft202012Validator, validators

    schema = load_json_schema(SCHEMA_NAME)
    Draft202012Validator.check_schema(schema)
    # (jsonschema's stub leaves `extend` unannotated; it returns a validator class like the
    # one it extends.)
    strict: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    return strict(schema)


def schema_diagnostics(
    doc: dict[str, Any], positions: PositionMap, display: str
) -> list[Diagnostic]:
    """Every schema error of `doc`, located at its node and sorted by position.

    Nothing at or under a secret-looking key is reported here: the semantic layer says that
    the key does not belong, without repeating its value in a CI log."""
    if fast_valid(doc):  # most manifests: no error to locate
        return []
    found: dict[Diagnostic, None] = {}
    for error in manifest_validator().iter_errors(doc):
        for path, at_key, message in _explain(error):
            if _under_secret(path):
                continue
            line, col = positions.locate(path, key=at_key)
            found[Diagnostic(display, line, col, message, format_path(path))] = None
    return sorted(found, key=lambda d: (d.line, d.col, d.where, d.message))


def _under_secret(path: NodePath) -> bool:
    return any(isinstance(part, str) and looks_like_secret(part) for part in path)


def _explain(error: ValidationError) -> list[_Located]:
    path: NodePath = tuple(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:
        return [((*path, failed_instance(error)), True, _message(error, "key "))]
    handler = _HANDLERS.get(str(error.validator))
    if handler is not None:
        return handler(error, path)
    return [(path, False, _message(error))]


def _additional(error: ValidationError, path: NodePath) -> list[_Located]:
    schema = failed_schema(error)
    allowed = sorted(schema.get("properties", {}))
    if not isinstance(error.instance, dict) or schema.get("additionalProperties") is not False:
        return [(path, False, error.message)]
    out: list[_Located] = []
    for key in sorted(set(error.instance) - set(allowed)):
        if looks_like_secret(key):
            continue  # the semantic layer says why secrets never belong in a manifest
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
        out.append(((*path, key), True, f"unknown key {shown(key)}; {hint}"))
    return out


def _required(error: ValidationError, path: NodePath) -> list[_Located]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    missing = [name for name in failed_value(error) if name not in instance]
    return [(path, True, f"missing required key {name!r}") for name in missing]


def _unique(error: ValidationError, path: NodePath) -> list[_Located]:
    """Each repeat, pointing at its first occurrence; linear, whatever the list's length."""
    out: list[_Located] = []
    first: dict[str, int] = {}
    unhashable: list[tuple[Any, int]] = []
    for index, item in enumerate(failed_instance(error)):
        if isinstance(item, str):
            earlier = first.setdefault(item, index)
        else:  # the schema's own type errors say what is wrong with these
            earlier = next((i for other, i in unhashable if _same(other, item)), index)
            if earlier == index:
                unhashable.append((item, index))
        if earlier != index:
            out.append(((*path, index), False, f"{shown(item)} is repeated (first at [{earlier}])"))
    return out or [(path, False, "has repeated items")]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: `1` and `true` differ, as jsonschema's `uniqueItems` has it."""
    return type(a) is type(b) and a == b


def _simple(error: ValidationError, path: NodePath) -> list[_Located]:
    return [(path, False, _message(error))]


_HANDLERS: dict[str, Callable[[ValidationError, NodePath], list[_Located]]] = {
    "additionalProperties": _additional,
    "required": _required,
    "uniqueItems": _unique,
}


def _message(error: ValidationError, subject: str = "") -> str:
    """A readable message for one keyword's failure; jsonschema's own where it already is."""
    value, instance = failed_value(error), failed_instance(error)
    match error.validator:
        case "type":
            return _type_message(value, instance)
        case "pattern":
            hint = failed_schema(error).get("x-pattern-message", f"must match {value}")
            return f"{subject}{shown(instance)} {hint}"
        case "enum":
            return f"{shown(instance)} is not one of: {', '.join(map(str, value))}"
        case "const":
            return f"must be {value!r}, not {shown(instance)}"
        case "minItems" if value == 1:
            return "must not be empty"
        case "minLength" if value == 1:
            return f"{subject}must not be empty"
        case "maxLength":
            return f"{subject}{shown(instance)} is longer than {value} characters"
        case "maxProperties":
            return f"has {len(instance)} entries; at most {value} are allowed"
    return error.message


def _type_message(expected: Any, instance: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    message = f"must be {wanted}, not {_describe(instance)}"
    if "string" in names and isinstance(instance, (bool, int, float)):
        message += " (put the value in quotes)"
    return message


def _describe(instance: Any) -> str:
    if instance is None:
        return "null (an empty value)"
    if isinstance(instance, bool):
        return f"the boolean {str(instance).lower()}"
    if isinstance(instance, (int, float)):
        return f"the number {instance}"
    if isinstance(instance, str):
        return f"the string {shown(instance)}"
    return "a list" if isinstance(instance, list) else "a mapping"
