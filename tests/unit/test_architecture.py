"""The house rules of the package, read from its import graph (grimp) and its files: no
import cycle between its packages, and no module longer than a reader can hold."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

PACKAGE = "transfer_runner"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
MAX_LINES = 400


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE)


def _room(module: str) -> str:
    """A module's room: its first-level package (`engine`), or itself at the top level."""
    return ".".join(module.split(".")[:2])


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected sets of rooms (Tarjan), each with more than one room."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _room(module), _room(imported)
            if a != b:
                edges.setdefault(a, set()).add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(room: str) -> None:
        index[room] = low[room] = len(index)
        stack.append(room)
        for other in sorted(edges.get(room, ())):
            if other not in index:
                visit(other)
                low[room] = min(low[room], low[other])
            elif other in stack:
                low[room] = min(low[room], index[other])
        if low[room] == index[room]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == room:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for room in sorted({_room(m) for m in graph.modules}):
        if room not in index:
            visit(room)
    return found


def _why(graph: grimp.ImportGraph, rooms: list[str]) -> list[str]:
    """The direct imports that close a cycle among `rooms`."""
    return sorted(
        f"{module} -> {imported}"
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if _room(module) in rooms and _room(imported) in rooms and _room(module) != _room(imported)
    )


def test_no_import_cycle_between_packages(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph)
    assert not cycles, "\n".join(
        f"cycle {' <-> '.join(c)}:\n  " + "\n  ".join(_why(graph, c)) for c in cycles
    )


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    lengths = {
        str(path.relative_to(ROOT.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(ROOT.rglob("*.py"))
    }
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
