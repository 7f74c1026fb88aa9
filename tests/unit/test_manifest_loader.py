"""Strict YAML loading: every refusal is a located diagnostic, never a traceback."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from transfer_runner import yaml_positions
from transfer_runner.errors import ManifestError
from transfer_runner.manifest.loader import (
    MAX_BYTES,
    MAX_DEPTH,
    format_path,
    load_manifest,
    load_yaml_document,
    parse_yaml_bytes,
    resolve_plain_scalar,
)

BILLION_LAUGHS = b"""\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def _nested_block(depth: int) -> bytes:
    lines = [f"{'  ' * level}k{level}:" for level in range(depth)]
    return ("\n".join(lines) + " leaf\n").encode()


# (case, YAML bytes, expected diagnostics as "line:col: where: message" prefixes)
ERRORS: list[tuple[str, bytes, list[str]]] = [
    (
        "duplicate key",
        b"a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n",
        ["5:3: b.c: duplicate key 'c' (first at line 3)"],
    ),
    (
        "duplicate top-level key",
        b"kind: Transfer\nkind: Other\n",
        ["2:1: kind: duplicate key 'kind' (first at line 1)"],
    ),
    (
        "anchor and alias",
        b"a: &x 1\nb: *x\n",
        [
            "1:4: a: YAML anchors (&x) are not allowed",
            "2:4: b: YAML aliases (*x) are not allowed",
        ],
    ),
    (
        "anchor on a mapping",
        b"base: &base {users: 1}\n",
        ["1:7: base: YAML anchors (&base) are not allowed"],
    ),
    (
        "merge key through an alias",
        b"a: &a {x: 1}\nb:\n  <<: *a\n",
        ["1:4: a: YAML anchors (&a)", "3:7: b['<<']: YAML aliases (*a)"],
    ),
    (
        "alias as a key",
        b"a: &k x\n*k : 1\n",
        ["1:4: a: YAML anchors (&k)", "2:1: YAML aliases (*k) are not allowed"],
    ),
    ("two documents", b"a: 1\n---\nb: 2\n", ["2:1: only one YAML document per file"]),
    ("empty file", b"", ["0:0: the file is empty"]),
    ("only a comment", b"# nothing here\n", ["0:0: the file is empty"]),
    ("null document", b"~\n", ["1:1: the document is empty"]),
    ("list at the top", b"- a\n- b\n", ["1:1: the top level must be a mapping"]),
    ("scalar at the top", b"hello\n", ["1:1: the top level must be a mapping"]),
    ("integer key", b"1: a\n", ["1:1: keys must be strings, not the number 1"]),
    ("boolean key", b"x:\n  true: a\n", ["2:3: x: keys must be strings, not the boolean true"]),
    ("null key", b"null: a\n", ["1:1: keys must be strings, not null"]),
    ("list key", b"? [a, b]\n: c\n", ["1:3: keys must be strings, not a list"]),
    ("syntax error", b"a: [1, 2\nb: 3\n", ["2:2: YAML syntax error: "]),
    ("tab indentation", b"a:\n\tb: 1\n", ["2:1: YAML syntax error: "]),
    ("bad indentation", b"a:\n  b: 1\n c: 2\n", ["3:2: YAML syntax error: "]),
    ("int tag", b"a: !!int 5\n", ["1:4: YAML tag !!int is not allowed"]),
    ("python tag", b"a: !!python/object/apply:os.system [ls]\n", ["1:4: YAML tag !!python"]),
    ("set tag", b"a: !!set {x}\n", ["1:4: YAML tag !!set is not allowed"]),
    ("local tag", b"a: !secret x\n", ["1:4: YAML tag !secret is not allowed"]),
    ("not UTF-8", b"a: 1\nb: caf\xe9\n", ["2:7: not valid UTF-8 (byte 0xe9)"]),
    ("UTF-16", "a: 1\n".encode("utf-16"), ["1:1: not valid UTF-8 (byte 0xff)"]),
    ("NUL byte", "a: 1\nb: ü\x00\n".encode(), ["2:5: control character U+0000"]),
    ("escape character", b"a: \x1b[31m\n", ["1:4: control character U+001B"]),
    (
        "too deep (flow)",
        b"a: " + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5) + b"\n",
        [f"1:{4 + MAX_DEPTH - 1}: nested deeper than {MAX_DEPTH} levels"],
    ),
    (
        "too deep (block)",
        _nested_block(MAX_DEPTH + 1),
        [f"{MAX_DEPTH + 1}:{2 * MAX_DEPTH + 1}: nested deeper than {MAX_DEPTH} levels"],
    ),
    (
        "problems before a syntax error are kept",
        b"a: 1\na: 2\nb: [\n",
        ["2:1: a: duplicate key 'a'", "4:1: YAML syntax error: "],
    ),
]


def _parse_errors(data: bytes) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_yaml_bytes(data, "t.yml")
    for diagnostic in caught.value.diagnostics:
        assert diagnostic.path == "t.yml"
    return [str(d).removeprefix("t.yml:") for d in caught.value.diagnostics]


PARSERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if yaml.__with_libyaml__ else [])


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize(("case", "data", "expected"), ERRORS, ids=[c[0] for c in ERRORS])
def test_refusals_are_located(
    monkeypatch: pytest.MonkeyPatch, parser: type, case: str, data: bytes, expected: list[str]
) -> None:
    monkeypatch.setattr(yaml_positions, "_EventLoader", parser)
    found = _parse_errors(data)
    assert len(found) == len(expected), found
    for line, prefix in zip(found, expected, strict=True):
        assert line.startswith(prefix), (line, prefix)


def test_alias_bomb_is_refused_without_expansion() -> None:
    started = time.perf_counter()
    found = _parse_errors(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.5
    assert found[0].startswith("1:4: a: YAML anchors (&a) are not allowed")
    assert found[1] == "2:4: b: YAML anchors (&b) are not allowed: repeat the value instead"
    assert found[2] == "2:8: b[0]: YAML aliases (*a) are not allowed: write the value out"
    assert len(found) == yaml_positions.MAX_PROBLEMS + 1
    assert found[-1].endswith("too many problems; stopped reading here")


def test_problems_are_capped() -> None:
    data = b"".join(b"k: %d\n" % i for i in range(100))
    found = _parse_errors(data)
    assert len(found) == yaml_positions.MAX_PROBLEMS + 1
    assert found[-1].endswith("too many problems; stopped reading here")


def test_nesting_at_the_limit_is_accepted() -> None:
    doc, _ = parse_yaml_bytes(_nested_block(MAX_DEPTH), "t.yml")
    for level in range(MAX_DEPTH):
        doc = doc[f"k{level}"]
    assert doc == "leaf"


SCALARS: list[tuple[str, Any]] = [
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("0755", "0755"),
    ("0o755", "0o755"),
    ("0x1F", "0x1F"),
    ("2026-12-01", "2026-12-01"),
    ("1:20", "1:20"),
    ("1_000", "1_000"),
    ("00.5", "00.5"),
    ("true", True),
    ("False", False),
    ("TRUE", True),
    ("null", None),
    ("~", None),
    ("", None),
    ("0", 0),
    ("-3", -3),
    ("+7", 7),
    ("40", 40),
    ("1.5", 1.5),
    ("25.00", 25.0),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("-.inf", float("-inf")),
    ("acme.com", "acme.com"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS)
def test_plain_scalars_follow_yaml_1_2_core(text: str, expected: Any) -> None:
    value = resolve_plain_scalar(text)
    assert value == expected and type(value) is type(expected)


def test_scalars_in_a_document() -> None:
    doc, _ = parse_yaml_bytes(
        b"a: [yes, 'true', \"1\", !!str 12, ! 34, .nan]\nb: |\n  text\nc: >-\n  folded\n", "t.yml"
    )
    values = doc["a"]
    assert values[:5] == ["yes", "true", "1", "12", "34"]
    assert values[5] != values[5]  # nan
    assert doc["b"] == "text\n" and doc["c"] == "folded"


def test_positions_of_values_and_keys() -> None:
    data = (
        b"apiVersion: transfer-runner/v1\n"
        b"spec:\n"
        b"  customer: {account: C-1, domains: [acme.com, acme.net]}\n"
        b"  subscription:\n"
        b"    users: 40\n"
    )
    doc, positions = parse_yaml_bytes(data, "t.yml")
    assert doc["spec"]["subscription"]["users"] == 40
    assert positions[("spec", "subscription", "users")] == (5, 12)
    assert positions.key(("spec", "subscription", "users")) == (5, 5)
    assert positions[("spec", "customer", "domains", 1)] == (3, 48)
    assert positions.key(("spec", "customer", "domains", 1)) is None
    assert positions[()] == (1, 1)
    assert positions.locate(("spec", "customer", "missing")) == (3, 13)
    assert positions.locate(("spec", "customer"), key=True) == (3, 3)
    assert ("nope",) not in positions and positions.get(("nope",)) is None


def test_crlf_and_bom_are_accepted() -> None:
    doc, positions = parse_yaml_bytes("\ufeffa: 1\r\nb: x\r\n".encode(), "t.yml")
    assert doc == {"a": 1, "b": "x"}
    assert positions[("b",)] == (2, 4)


def test_load_yaml_document_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_bytes(b"a: 1\n")
    doc, positions = load_yaml_document(path, "shown.yml")
    assert doc == {"a": 1} and positions[("a",)] == (1, 4)
    loaded = load_manifest(path, "shown.yml")
    assert loaded.display == "shown.yml"
    assert loaded.sha256 == hashlib.sha256(b"a: 1\n").hexdigest()


def test_oversized_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.yml"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_open)
    with pytest.raises(ManifestError) as caught:
        load_yaml_document(path, "big.yml")
    assert [str(d) for d in caught.value.diagnostics] == [
        f"big.yml:0:0: file is {MAX_BYTES + 1} bytes; a manifest may be at most 1 MiB "
        f"({MAX_BYTES} bytes)"
    ]


def test_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yml"
    path.write_bytes(b"a: " + b"x" * (MAX_BYTES - 4) + b"\n")
    doc, _ = load_yaml_document(path, "edge.yml")
    assert len(doc["a"]) == MAX_BYTES - 4


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "cannot read: No such file or directory"),
        (lambda p: (p.mkdir(), p)[1], "not a regular file"),
    ],
)
def test_unreadable_paths(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path / "x.yml")
    with pytest.raises(ManifestError) as caught:
        load_yaml_document(path, "x.yml")
    assert [str(d) for d in caught.value.diagnostics] == [f"x.yml:0:0: {message}"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("spec",), "spec"),
        (("spec", "customer", "domains", 0), "spec.customer.domains[0]"),
        (
            ("metadata", "labels", "app.kubernetes.io/name"),
            "metadata.labels['app.kubernetes.io/name']",
        ),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text
