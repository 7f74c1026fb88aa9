"""format_diagnostics: text lines, a JSON document, GitHub workflow annotations."""

from __future__ import annotations

import json

import pytest

from transfer_runner.errors import ConfigError, Diagnostic
from transfer_runner.reporting.diagnostics import format_diagnostics

USERS = Diagnostic(
    "transfers/acme.yml", 14, 12, "-3 is less than the minimum of 1", "spec.subscription.users"
)
WHOLE_FILE = Diagnostic("transfers/empty", 0, 0, "no manifests (*.yml, *.yaml) in this directory")
TRICKY = Diagnostic("odd,dir/a:b.yml", 3, 1, "100% wrong\r\nsecond line", "metadata.name")


def test_text_is_one_line_per_diagnostic() -> None:
    assert format_diagnostics([USERS, WHOLE_FILE], "text") == (
        "transfers/acme.yml:14:12: spec.subscription.users: -3 is less than the minimum of 1\n"
        "transfers/empty:0:0: no manifests (*.yml, *.yaml) in this directory"
    )


def test_json_document() -> None:
    assert json.loads(format_diagnostics([USERS, WHOLE_FILE], "json")) == {
        "valid": False,
        "errors": [
            {
                "file": "transfers/acme.yml",
                "line": 14,
                "column": 12,
                "path": "spec.subscription.users",
                "message": "-3 is less than the minimum of 1",
            },
            {
                "file": "transfers/empty",
                "line": 0,
                "column": 0,
                "path": "",
                "message": "no manifests (*.yml, *.yaml) in this directory",
            },
        ],
    }


@pytest.mark.parametrize(
    ("diagnostic", "line"),
    [
        (
            USERS,
            "::error file=transfers/acme.yml,line=14,col=12::spec.subscription.users: "
            "-3 is less than the minimum of 1",
        ),
        (
            WHOLE_FILE,
            "::error file=transfers/empty::no manifests (*.yml, *.yaml) in this directory",
        ),
        (
            TRICKY,
            "::error file=odd%2Cdir/a%3Ab.yml,line=3,col=1::metadata.name: "
            "100%25 wrong%0D%0Asecond line",
        ),
    ],
)
def test_github_annotations_are_escaped(diagnostic: Diagnostic, line: str) -> None:
    assert format_diagnostics([diagnostic], "github") == line


@pytest.mark.parametrize(("fmt", "expected"), [("text", ""), ("github", "")])
def test_nothing_to_report(fmt: str, expected: str) -> None:
    assert format_diagnostics([], fmt) == expected


def test_json_when_valid() -> None:
    assert json.loads(format_diagnostics([], "json")) == {"valid": True, "errors": []}


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown diagnostics format 'xml'"):
        format_diagnostics([USERS], "xml")
