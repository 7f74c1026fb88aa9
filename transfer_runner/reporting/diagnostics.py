"""Diagnostics rendered for people (text), programs (json) and GitHub Actions (annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from transfer_runner.errors import ConfigError, Diagnostic
from transfer_runner.shown import log_safe

__all__ = ["DiagnosticFormat", "FORMATS", "format_diagnostics"]

DiagnosticFormat = Literal["text", "json", "github"]
FORMATS: tuple[str, ...] = ("text", "json", "github")


def format_diagnostics(diags: Sequence[Diagnostic], fmt: str = "text") -> str:
    """All diagnostics in one string (no trailing newline); text and github print nothing for
    no diagnostics, json always prints `{"valid": ..., "errors": [...]}`."""
    if fmt == "text":  # one line each: a path or value cannot start a CI command line
        return "\n".join(log_safe(str(d)) for d in diags)
    if fmt == "json":
        return _json(diags)
    if fmt == "github":
        return "\n".join(_github(d) for d in diags)
    raise ConfigError(f"unknown diagnostics format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def _json(diags: Sequence[Diagnostic]) -> str:
    errors = [
        {"file": d.path, "line": d.line, "column": d.col, "path": d.where, "message": d.message}
        for d in diags
    ]
    return json.dumps({"valid": not diags, "errors": errors}, indent=2, ensure_ascii=False)


def _github(d: Diagnostic) -> str:
    """A workflow command; line and column are left out for whole-file problems (0)."""
    props = [f"file={_escape_property(d.path)}"]
    if d.line > 0:
        props.append(f"line={d.line}")
        if d.col > 0:
            props.append(f"col={d.col}")
    message = f"{d.where}: {d.message}" if d.where else d.message
    return f"::error {','.join(props)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    """GitHub's workflow-command escaping of the message (as in @actions/core)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """Property values additionally escape `:` and `,`, which delimit the command."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
