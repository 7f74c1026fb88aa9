"""Lazy positions: a manifest parsed without positions finds the same ones when first asked."""

from __future__ import annotations

import threading

import pytest

from tests.builders import FIXTURE, manifest, node_paths
from tests.unit.test_manifest_schema import BRIEF_EXAMPLE, VALID
from transfer_runner.errors import ManifestError
from transfer_runner.position_map import LazyPositionMap, PositionMap
from transfer_runner.yaml_positions import parse_yaml_bytes

TEXTS = [VALID, BRIEF_EXAMPLE, manifest(), FIXTURE]


@pytest.mark.parametrize("text", TEXTS, ids=["valid", "brief", "builder", "fixture"])
def test_lazy_positions_are_the_eager_ones(text: str) -> None:
    eager_doc, eager = parse_yaml_bytes(text.encode(), "m.yml")
    lazy_doc, lazy = parse_yaml_bytes(text.encode(), "m.yml", lazy_positions=True)
    assert isinstance(lazy, LazyPositionMap) and not isinstance(eager, LazyPositionMap)
    assert lazy_doc == eager_doc
    for path in node_paths(eager_doc):
        assert lazy.get(path) == eager.get(path)  # type: ignore[arg-type]
        assert lazy.key(path) == eager.key(path)  # type: ignore[arg-type]
    assert len(lazy) == len(eager)
    assert lazy.locate(("spec", "nowhere", 3)) == eager.locate(("spec", "nowhere", 3))


def test_a_document_with_problems_is_reported_as_when_parsed_eagerly() -> None:
    text = manifest().replace("kind: Transfer", "kind: Transfer\nkind: Again")
    with pytest.raises(ManifestError) as eager:
        parse_yaml_bytes(text.encode(), "m.yml")
    with pytest.raises(ManifestError) as lazy:
        parse_yaml_bytes(text.encode(), "m.yml", lazy_positions=True)
    assert lazy.value.diagnostics == eager.value.diagnostics
    assert "duplicate key 'kind'" in str(lazy.value)


def test_positions_are_found_once_whatever_the_threads() -> None:
    loads: list[int] = []
    barrier = threading.Barrier(8)

    def load() -> PositionMap:
        loads.append(1)
        return parse_yaml_bytes(manifest().encode(), "m.yml")[1]

    lazy = LazyPositionMap(load)
    seen: list[object] = []

    def ask() -> None:
        barrier.wait()
        seen.append(lazy.get(("spec", "customer")))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and seen[0] is not None  # never an empty map
    assert 1 <= len(loads) <= 8
