"""The compiled schema check is a fast path only: whatever it passes, jsonschema passes too.

`schema_diagnostics` skips jsonschema for a document the compiled check calls valid, so that
check must never be laxer. Random mutations of valid manifests (values of every JSON type at
every path, keys removed and added, floats where integers belong) are the guard.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.builders import GLOBEX, manifest, node_paths
from tests.unit.test_manifest_schema import BRIEF_EXAMPLE, VALID
from transfer_runner.manifest.loader import parse_yaml_bytes
from transfer_runner.manifest.schema import fast_valid, manifest_validator, schema_diagnostics


def _doc(text: str) -> dict[str, Any]:
    return parse_yaml_bytes(text.encode(), "m.yml")[0]


BASES = [_doc(VALID), _doc(BRIEF_EXAMPLE), _doc(manifest()), _doc(manifest("globex-io", **GLOBEX))]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([40.0, 1e3, 0.5, -1.0])
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            "acme.com",
            "C-1001",
            "T-5001",
            "migrate",
            "skip",
            "export",
            "25.00",
            "x" * 70,
            "acme-com\n",
            "Acme",
            "a_b",
            "spamstopshere",
            "-a",
            "a-",
            "transfer-runner/v1",
            "Transfer",
            "R-301",
        ]  # fmt: skip
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(node_paths(doc)))
        if not path:
            continue
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
    return doc


@given(mutated())
def test_the_fast_path_is_never_laxer_than_jsonschema(doc: dict[str, Any]) -> None:
    if fast_valid(doc):
        assert not list(manifest_validator().iter_errors(doc)), doc


def test_the_fast_path_takes_valid_manifests_and_leaves_them_unchanged() -> None:
    for base in BASES:
        before = copy.deepcopy(base)
        assert fast_valid(base) and schema_diagnostics(base, None, "m.yml") == []  # type: ignore[arg-type]
        assert base == before  # no default filled in


def test_a_float_where_an_integer_belongs_is_left_to_jsonschema() -> None:
    doc = copy.deepcopy(BASES[0])
    doc["spec"]["subscription"]["users"] = 40.0
    assert not fast_valid(doc)
    [error] = manifest_validator().iter_errors(doc)
    assert error.validator == "type"
