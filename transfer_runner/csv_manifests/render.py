"""Writing a manifest document as YAML that reads the same to every YAML reader: plain
scalars only where YAML 1.1 and 1.2 agree, everything else double-quoted."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from transfer_runner.yaml_scalars import resolve_plain_scalar

__all__ = [
    "MODELINE_PREFIX",
    "SCHEMA_BESIDE",
    "render_manifest",
    "schema_location",
    "schema_modeline",
]

# The YAML language server's first line naming a file's JSON Schema (a path is read relative
# to the file). By default the schema sits in .schemas/ beside the manifests' directory, as
# `transfer-runner schema manifest --out .schemas/transfer-manifest.json` run from the
# repository root puts it for manifests in transfers/.
MODELINE_PREFIX = "# yaml-language-server: $schema="
SCHEMA_BESIDE = "../.schemas/transfer-manifest.json"

# Plain scalars a YAML 1.1 reader (PyYAML, older tools) would not read as strings.
_YAML11_WORDS = frozenset(
    {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
     "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"}
)  # fmt: skip


_PLAIN_SAFE = re.compile(r"[A-Za-z](?:[A-Za-z0-9 ._/-]*[A-Za-z0-9._/-])?")


_PRINTABLE = re.compile("[\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def schema_modeline(out_dir: str | os.PathLike[str], schema: str | os.PathLike[str] | None) -> str:
    """The first line of a manifest written into `out_dir`: `schema` (a path as given on the
    command line) relative to `out_dir`, or `SCHEMA_BESIDE` when None.

    Raises ValueError for a path the line cannot hold (white space ends it)."""
    if schema is None:
        return f"{MODELINE_PREFIX}{SCHEMA_BESIDE}\n"
    target = os.path.abspath(schema)
    try:
        shown = Path(os.path.relpath(target, os.path.abspath(out_dir))).as_posix()
    except ValueError:  # another drive (Windows): only an absolute URI reaches it
        shown = Path(target).as_uri()
    if any(ch.isspace() for ch in shown):
        raise ValueError(f"the schema path {shown!r} holds white space, which ends the line")
    return f"{MODELINE_PREFIX}{shown}\n"


def schema_location(out_dir: str | os.PathLike[str], schema: str | os.PathLike[str] | None) -> Path:
    """Where the file that `schema_modeline(out_dir, schema)` names is."""
    if schema is not None:
        return Path(schema)
    return Path(os.path.normpath(os.path.join(os.path.abspath(out_dir), SCHEMA_BESIDE)))


# -- YAML -----------------------------------------------------------------------------------
def render_manifest(doc: Mapping[str, Any]) -> str:
    """The manifest as YAML text in the style of `examples/transfers/`: block mappings, flow
    lists and labels, strings quoted wherever YAML 1.1 or 1.2 could read them as non-strings."""
    return "".join(_block(doc, 0))


def _block(mapping: Mapping[str, Any], indent: int) -> Iterator[str]:
    pad = "  " * indent
    for key, value in mapping.items():
        if isinstance(value, Mapping) and key != "labels":  # labels stay on one line
            yield f"{pad}{_scalar(key)}:\n"
            yield from _block(value, indent + 1)
        else:
            yield f"{pad}{_scalar(key)}: {_flow(value)}\n"


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    plain = (
        _PLAIN_SAFE.fullmatch(text)
        and text not in _YAML11_WORDS
        and resolve_plain_scalar(text) == text
    )
    return text if plain else _double_quoted(text)


def _double_quoted(text: str) -> str:
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _escape(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    if _PRINTABLE.fullmatch(ch) and ch not in "\u2028\u2029\ufeff":  # breaks, BOM: escaped
        return ch
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
