"""Reading a fixture's YAML into plain data plus the position of every node.

Fixtures can be large (bulk-wave benchmarks describe thousands of accounts), so unlike the
manifest loader there is no size cap. The node tree is composed once and turned into data by
hand, which gives every value its line and column, refuses anchors and aliases (nothing is ever
expanded) and reports duplicate keys. Scalars follow PyYAML's safe rules; YAML dates become
ISO strings, so a fixture may write `2026-11-01` bare or quoted.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from transfer_runner.errors import Diagnostic, ManifestError
from transfer_runner.manifest.loader import NodePath, PositionMap, format_path

__all__ = ["read_yaml"]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 32


def read_yaml(path: Path, display: str) -> tuple[Any, PositionMap]:
    """The document at `path` and its positions; ManifestError for unreadable or bad YAML."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise _error(display, 0, 0, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _error(display, 0, 0, f"not valid UTF-8 at byte {exc.start}") from None
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise _error(display, line, col, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise _error(display, 0, 0, f"YAML error: {exc}") from None
    if root is None:
        raise _error(display, 0, 0, "the file is empty: expected a fixture mapping")
    builder = _Builder(display)
    value = builder.build(root, ())
    if builder.problems:
        raise ManifestError(builder.problems)
    return value, builder.positions


def _error(display: str, line: int, col: int, message: str) -> ManifestError:
    return ManifestError([Diagnostic(display, line, col, message)])


class _Builder:
    def __init__(self, display: str) -> None:
        self.display = display
        self.positions = PositionMap()
        self.problems: list[Diagnostic] = []
        self.seen: set[int] = set()
        self.constructor = SafeConstructor()

    def problem(self, node: yaml.Node, path: NodePath, message: str) -> None:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Diagnostic(self.display, line, col, message, format_path(path)))

    def build(self, node: yaml.Node, path: NodePath) -> Any:
        self.positions.set_value(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if id(node) in self.seen:
            self.problem(node, path, "anchors and aliases are not allowed in a fixture")
            return None
        self.seen.add(id(node))
        if len(path) > _MAX_DEPTH:
            self.problem(node, path, f"nested deeper than {_MAX_DEPTH} levels")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: NodePath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, path, "keys must be strings")
                continue
            child = (*path, key)
            if key in out:
                self.problem(key_node, child, f"duplicate key {key!r}")
                continue
            self.positions.set_key(
                child, (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            )
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: yaml.Node, path: NodePath) -> Any:
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.problem(node, path, f"bad value: {getattr(exc, 'problem', None) or exc}")
            return None
        except ValueError:  # e.g. 2026-02-30 looks like a date but is none: keep the text
            return node.value
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return value
