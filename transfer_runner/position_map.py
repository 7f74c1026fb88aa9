"""Where the nodes of a parsed YAML document are: `PositionMap` (recorded while parsing) and
`LazyPositionMap` (found again when first asked for), keyed by `NodePath`."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LazyPositionMap", "NodePath", "Position", "PositionMap"]

NodePath = tuple[str | int, ...]
Position = tuple[int, int]


class PositionMap:
    """Where each node of a document is, as 1-based (line, col).

    `positions[path]` is the value node at `path`, e.g. `("spec", "customer", "domains", 0)`;
    `positions.key(path)` is the mapping key whose value is at `path` (for "unknown key").
    """

    def __init__(self) -> None:
        self._values: dict[NodePath, Position] = {}
        self._keys: dict[NodePath, Position] = {}

    def set_value(self, path: NodePath, position: Position) -> None:
        self._values[path] = position

    def set_key(self, path: NodePath, position: Position) -> None:
        self._keys[path] = position

    def __getitem__(self, path: NodePath) -> Position:
        return self._values[path]

    def __contains__(self, path: object) -> bool:
        return path in self._values

    def __len__(self) -> int:
        return len(self._values)

    def get(self, path: NodePath) -> Position | None:
        """The value position at `path`, or None."""
        return self._values.get(path)

    def key(self, path: NodePath) -> Position | None:
        """The position of the key of `path`, or None (list items and the root have none)."""
        return self._keys.get(path)

    def locate(self, path: NodePath, *, key: bool = False) -> Position:
        """Best position for a problem at `path`: its key if `key` and known, else its value,
        else the nearest ancestor's; (1, 1) when nothing is known."""
        if key and path in self._keys:
            return self._keys[path]
        for end in range(len(path), -1, -1):
            found = self._values.get(path[:end])
            if found is not None:
                return found
        return (1, 1)


class LazyPositionMap(PositionMap):
    """The positions of a document parsed without them, found by `load` (which parses its
    bytes again) the first time one is asked for: a valid manifest never needs one, and
    keeping its bytes costs less than keeping a position per node."""

    def __init__(self, load: Callable[[], PositionMap]) -> None:
        super().__init__()
        self._source: Callable[[], PositionMap] | None = load

    def _load(self) -> None:
        load = self._source
        if load is not None:
            full = load()
            self._values, self._keys = full._values, full._keys
            self._source = None  # last: a thread that sees None sees the maps

    def __getitem__(self, path: NodePath) -> Position:
        self._load()
        return super().__getitem__(path)

    def __contains__(self, path: object) -> bool:
        self._load()
        return super().__contains__(path)

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def get(self, path: NodePath) -> Position | None:
        self._load()
        return super().get(path)

    def key(self, path: NodePath) -> Position | None:
        self._load()
        return super().key(path)

    def locate(self, path: NodePath, *, key: bool = False) -> Position:
        self._load()
        return super().locate(path, key=key)
