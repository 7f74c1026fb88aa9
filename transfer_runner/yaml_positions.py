"""Strict YAML with positions: one mapping per document, and none of YAML's surprises.

The one YAML reader of the package: manifests (`manifest.loader`), playbooks and sandbox
fixtures are all read through `parse_yaml_bytes`.

The document is built from parser events rather than PyYAML's constructors, so every node's
position is known and nothing is ever expanded or instantiated: anchors, aliases (alias bombs)
and tags other than `!!str` are refused, duplicate and non-string keys are errors, nesting is
bounded, control and bidirectional-override characters are refused (what a reviewer sees is
what runs), and plain scalars follow the YAML 1.2 core schema, stricter still: `yes`, `no`,
`on`, `0755`, `2026-12-01` and `1:20` are strings; only `true`/`false`, decimal integers without a
leading zero, floats and `null`/`~` are not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import yaml

from transfer_runner.errors import Diagnostic, ManifestError
from transfer_runner.position_map import LazyPositionMap, NodePath, Position, PositionMap
from transfer_runner.shown import clipped, shown
from transfer_runner.yaml_scalars import MAX_INT_DIGITS, resolve_plain_scalar

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_PROBLEMS",
    "NodePath",
    "Position",
    "PositionMap",
    "LazyPositionMap",
    "fail",
    "format_path",
    "parse_yaml_bytes",
    "resolve_plain_scalar",
]

MAX_DEPTH = 32
MAX_PROBLEMS = 20


_EventLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = {
    yaml.MappingStartEvent: "tag:yaml.org,2002:map",
    yaml.SequenceStartEvent: "tag:yaml.org,2002:seq",
}
# YAML's printable set (YAML 1.2 §5.1); anything else is refused before parsing.
_NON_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Embeddings, overrides and isolates reorder what an editor or a diff shows, even in a comment
# ("Trojan Source", CVE-2021-42574); YAML allows them, a reviewed manifest does not.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SHOWN_KEY = 100  # longer keys are shown elided, in brackets


def format_path(path: NodePath) -> str:
    """`("spec", "customer", "domains", 0)` -> `spec.customer.domains[0]`; odd keys quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part) and len(part) <= _SHOWN_KEY:
            out += f".{part}" if out else part
        else:
            out += f"[{shown(part)}]"
    return out


def parse_yaml_bytes(
    data: bytes, display: str, *, lazy_positions: bool = False
) -> tuple[dict[str, Any], PositionMap]:
    """Decode (strict UTF-8) and parse one YAML mapping document with positions; with
    `lazy_positions`, they are found again from `data` when first asked for (a document with
    problems is parsed again at once, with them, for its report)."""
    text = _decode(data, display)
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line, col = _line_col(text, bad.start())
        code = f"U+{ord(bad.group()):04X}"
        raise fail(display, line, col, f"control character {code} is not allowed in YAML")
    bidi = _BIDI.search(text)
    if bidi:
        line, col = _line_col(text, bidi.start())
        code = f"U+{ord(bidi.group()):04X}"
        raise fail(
            display,
            line,
            col,
            f"bidirectional control character {code} is not allowed: it makes the file "
            "display as something other than what it is",
        )
    builder = _Builder(display, record=not lazy_positions)
    try:
        with closing(_events(text)) as events:
            for event in events:
                if not builder.feed(event):
                    break
    except yaml.MarkedYAMLError as exc:
        builder.syntax_error(exc)
    except yaml.YAMLError as exc:
        builder.problem(0, 0, f"YAML error: {exc}")
    if lazy_positions:
        if builder.problems or builder.root is _NO_KEY or not isinstance(builder.root, dict):
            return parse_yaml_bytes(data, display)  # the report, located
        return builder.root, LazyPositionMap(functools.partial(_positions_of, data, display))
    return builder.result()


def _positions_of(data: bytes, display: str) -> PositionMap:
    """A document's positions, parsed again (a module-level function: a LazyPositionMap that
    holds it can be pickled, e.g. to come back from a worker process)."""
    return parse_yaml_bytes(data, display)[1]


def _events(text: str) -> Generator[yaml.Event, None, None]:
    loader = _EventLoader(text)
    try:  # get_event() is None once the stream has ended
        yield from iter(loader.get_event, None)
    finally:
        loader.dispose()


def _decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line, col = _line_col(prefix, len(prefix))
        byte = data[exc.start]
        raise fail(
            display, line, col, f"not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8"
        ) from None


def _line_col(text: str, index: int) -> Position:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def fail(display: str, line: int, col: int, message: str) -> ManifestError:
    return ManifestError([Diagnostic(display, line, col, message)])


def _pos(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1)


_NO_KEY = object()  # a mapping frame is waiting for a key
_SKIP = object()  # the next value belongs to a rejected key and is dropped
_ALIAS = object()  # stands for an alias, which is reported and never expanded


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {value}"


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: NodePath | None  # None: inside a rejected node, positions are not recorded
    key: Any = _NO_KEY
    key_lines: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Turns parser events into plain Python data plus a `PositionMap`, collecting problems."""

    def __init__(self, display: str, record: bool = True) -> None:
        self.display = display
        self.record = record  # False: no paths, no positions (LazyPositionMap finds them)
        self.problems: list[Diagnostic] = []
        self.positions = PositionMap()
        self.stack: list[_Frame] = []
        self.root: Any = _NO_KEY
        self.root_position: Position = (0, 0)
        self.documents = 0
        self.stopped = False

    def problem(self, line: int, col: int, message: str, path: NodePath | None = None) -> None:
        if len(self.problems) == MAX_PROBLEMS:
            self.problems.append(
                Diagnostic(self.display, line, col, "too many problems; stopped reading here")
            )
            self.stopped = True
        elif len(self.problems) < MAX_PROBLEMS:
            where = format_path(path) if path else ""
            self.problems.append(Diagnostic(self.display, line, col, message, where))

    def syntax_error(self, exc: yaml.MarkedYAMLError) -> None:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (0, 0)
        message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
        if exc.context and exc.problem and exc.context_mark is not None:
            cline, ccol = _pos(exc.context_mark)
            message += f" ({exc.context} at line {cline}, column {ccol})"
        self.problem(line, col, message)

    def feed(self, event: yaml.Event) -> bool:
        """Handle one event; False stops the parse (a problem that makes the rest moot)."""
        kind = type(event)
        if kind is yaml.ScalarEvent:  # most events: straight to it
            self._scalar(event)  # type: ignore[arg-type]
            return not self.stopped
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                line, col = _pos(event.start_mark)
                self.problem(line, col, "only one YAML document per file is allowed")
                return False
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            return self._start(event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.stack.pop()
        return not self.stopped

    def result(self) -> tuple[dict[str, Any], PositionMap]:
        if not self.problems:
            self._check_root()
        if self.problems:
            raise ManifestError(self.problems)
        return self.root, self.positions

    def _check_root(self) -> None:
        if self.root is _NO_KEY:
            self.problem(0, 0, "the file is empty: expected a Transfer manifest")
        elif self.root is None:
            self.problem(*self.root_position, "the document is empty: expected a mapping")
        elif not isinstance(self.root, dict):
            kind = "a list" if isinstance(self.root, list) else f"the value {shown(self.root)}"
            self.problem(
                *self.root_position,
                f"the top level must be a mapping (apiVersion, kind, metadata, spec), not {kind}",
            )

    def _alias(self, event: yaml.AliasEvent) -> None:
        line, col = _pos(event.start_mark)
        self.problem(
            line,
            col,
            f"YAML aliases (*{clipped(str(event.anchor))}) are not allowed: write the value out",
            self._current_path(),
        )
        self._place(_ALIAS, event.start_mark)

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        if event.anchor is not None:
            self._check_anchor(event)
        if event.tag is None and event.implicit[0]:
            try:
                value: Any = resolve_plain_scalar(event.value)
            except ValueError as exc:
                self.problem(*_pos(event.start_mark), str(exc), self._current_path())
                value = None
        else:
            if event.tag not in (None, "!", _STR_TAG):
                self._bad_tag(event)
            value = event.value
        self._place(value, event.start_mark)

    def _start(self, event: yaml.CollectionStartEvent) -> bool:
        self._check_anchor(event)
        if event.tag not in (None, _COLLECTION_TAGS[type(event)]):
            self._bad_tag(event)
        if len(self.stack) >= MAX_DEPTH:
            line, col = _pos(event.start_mark)
            self.problem(line, col, f"nested deeper than {MAX_DEPTH} levels")
            return False
        container: dict[str, Any] | list[Any] = (
            {} if isinstance(event, yaml.MappingStartEvent) else []
        )
        path = self._place(container, event.start_mark)
        self.stack.append(_Frame(container, path))
        return not self.stopped

    def _place(self, value: Any, mark: Any) -> NodePath | None:
        """Put a new node where the parser is; returns its path (None if it is dropped)."""
        position = (mark.line + 1, mark.column + 1)  # _pos, inlined: once per node
        if not self.stack:
            self.root, self.root_position = value, position
            if not self.record:
                return None  # below a None path nothing is recorded
            self.positions.set_value((), position)
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            top.container.append(None if value is _ALIAS else value)
            path = None if top.path is None else (*top.path, len(top.container) - 1)
        elif top.key is _NO_KEY:
            self._take_key(top, value, position)
            return None
        else:
            key, top.key = top.key, _NO_KEY
            if key is _SKIP:
                return None
            top.container[key] = None if value is _ALIAS else value
            path = None if top.path is None else (*top.path, key)
        if path is not None:
            self.positions.set_value(path, position)
        return path

    def _take_key(self, top: _Frame, key: Any, position: Position) -> None:
        assert isinstance(top.container, dict)
        child = None if top.path is None else (*top.path, key)
        if key is _ALIAS:
            top.key = _SKIP
        elif not isinstance(key, str):
            top.key = _SKIP
            self.problem(
                *position, f"keys must be strings, not {_describe(key)} (quote it)", top.path
            )
        elif key in top.key_lines:
            top.key = _SKIP
            self.problem(
                *position,
                f"duplicate key {shown(key)} (first at line {top.key_lines[key]})",
                child,
            )
        else:
            top.key = key
            top.key_lines[key] = position[0]
            if child is not None:
                self.positions.set_key(child, position)

    def _check_anchor(self, event: yaml.NodeEvent) -> None:
        if event.anchor is not None:
            line, col = _pos(event.start_mark)
            self.problem(
                line,
                col,
                f"YAML anchors (&{clipped(event.anchor)}) are not allowed: repeat the value "
                "instead",
                self._current_path(),
            )

    def _bad_tag(self, event: yaml.ScalarEvent | yaml.CollectionStartEvent) -> None:
        tag = str(event.tag).replace("tag:yaml.org,2002:", "!!")
        line, col = _pos(event.start_mark)
        self.problem(line, col, f"YAML tag {clipped(tag)} is not allowed (only !!str)")

    def _current_path(self) -> NodePath | None:
        if not self.stack:
            return None
        top = self.stack[-1]
        if top.path is None:
            return None
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        if top.key in (_NO_KEY, _SKIP):
            return top.path
        return (*top.path, top.key)
