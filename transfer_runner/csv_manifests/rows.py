"""Reading a wave's CSV: the columns, the rows as a spreadsheet numbers them (the header is
row 1), and one row turned into a manifest document, with each problem named by its column."""

from __future__ import annotations

import csv
import difflib
import io
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.api import DEFAULT_DATA_MODE

__all__ = [
    "COLUMNS",
    "MAX_CSV_BYTES",
    "REQUIRED_COLUMNS",
    "Problem",
    "Row",
    "RowDiagnostic",
    "read_rows",
    "row_document",
]

COLUMNS: tuple[str, ...] = (
    "name", "customer_account", "domains", "reseller_account", "reseller_name", "users",
    "max_domains", "services", "customer_ticket", "reseller_ticket", "temporary_domain",
    "quarantine", "archive", "transfer_fee", "prorate", "labels",
)  # fmt: skip


REQUIRED_COLUMNS: tuple[str, ...] = (
    "name", "customer_account", "domains", "reseller_account", "reseller_name", "users",
    "services", "customer_ticket", "reseller_ticket",
)  # fmt: skip


MAX_CSV_BYTES = 32 * 1024 * 1024


_DELIMITERS = (",", ";", "\t")


_LIST_SEPARATORS = re.compile(r"[;,\s]+")


_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class RowDiagnostic:
    """One problem in the CSV: `wave.csv:row 7: users: 'forty' is not a whole number`.

    `row` counts like a spreadsheet (the header is row 1); 0 means the whole file.
    """

    path: str
    row: int
    message: str
    column: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:row {self.row}" if self.row else self.path
        if self.column:
            return f"{where}: {self.column}: {self.message}"
        return f"{where}: {self.message}"


Problem = RowDiagnostic | Diagnostic


@dataclass(frozen=True)
class Row:
    number: int
    cells: dict[str, str]


# -- reading the CSV ------------------------------------------------------------------------
def read_rows(path: Path, display: str) -> tuple[list[Row], list[Problem]]:
    """Data rows (blank ones skipped) and every problem of the file's text and shape."""
    text, problem = _read_text(path, display)
    if problem is not None:
        return [], [problem]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    records = _records(reader, display)
    header_cells = next(records, None)
    if not isinstance(header_cells, list) or not any(c.strip() for c in header_cells):
        first = header_cells if isinstance(header_cells, RowDiagnostic) else None
        return [], [first or RowDiagnostic(display, 0, "the file is empty: expected a header row")]
    header, problems = _header(header_cells, display)
    rows: list[Row] = []
    for number, cells in enumerate(records, start=2):
        if isinstance(cells, RowDiagnostic):
            problems.append(cells)
            break
        if problems or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            message = f"has {len(cells)} fields but the header has {len(header)}"
            problems.append(RowDiagnostic(display, number, message))
            continue
        rows.append(Row(number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    return rows, problems


def _read_text(path: Path, display: str) -> tuple[str, RowDiagnostic | None]:
    def fail(message: str, row: int = 0) -> tuple[str, RowDiagnostic]:
        return "", RowDiagnostic(display, row, message)

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return fail("not a regular file")
        if info.st_size > MAX_CSV_BYTES:
            return fail(f"is {info.st_size} bytes; at most {MAX_CSV_BYTES} (split the wave)")
        data = path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read: {exc.strerror or exc}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return fail("is UTF-16 text; save the spreadsheet as CSV UTF-8")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        row = _row_at(data[: exc.start].decode("utf-8-sig"))
        return fail(f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save as CSV UTF-8", row)


def _row_at(prefix: str) -> int:
    """The spreadsheet row that the text after `prefix` starts in (best effort)."""
    try:
        count = sum(1 for _ in csv.reader(io.StringIO(prefix, newline="")))
    except csv.Error:
        count = prefix.count("\n") + 1
    return count + 1 if not prefix or prefix.endswith(("\n", "\r")) else count


def _delimiter(text: str) -> str:
    """`,` unless the header reads better split by `;` or tab (European Excel, TSV)."""
    first = text.split("\n", 1)[0]

    def known(sep: str) -> int:
        return sum(_column_key(cell.strip().strip('"')) in COLUMNS for cell in first.split(sep))

    return max(_DELIMITERS, key=known) if first else ","


def _records(reader: Any, display: str) -> Iterator[list[str] | RowDiagnostic]:
    """The reader's records; a malformed one ends the iteration as a located problem."""
    number = 0
    try:
        for record in reader:
            number += 1
            yield record
    except csv.Error as exc:
        yield RowDiagnostic(display, number + 1, f"malformed CSV: {exc}")


def _column_key(cell: str) -> str:
    return re.sub(r"[\s-]+", "_", cell.strip().lower())


def _header(cells: list[str], display: str) -> tuple[list[str], list[Problem]]:
    header = [_column_key(c) for c in cells]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, column in enumerate(header, start=1):
        if not column:
            problems.append(RowDiagnostic(display, 1, f"column {index} has no name"))
        elif column not in COLUMNS:
            close = difflib.get_close_matches(column, COLUMNS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"unknown column {cells[index - 1].strip()!r}{hint}"
            problems.append(RowDiagnostic(display, 1, message + f"; known: {', '.join(COLUMNS)}"))
        elif column in seen:
            problems.append(RowDiagnostic(display, 1, f"column {column} appears twice"))
        seen.add(column)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        message = f"missing required column(s): {', '.join(missing)}"
        problems.append(RowDiagnostic(display, 1, message))
    return header, problems


# -- a row as a manifest --------------------------------------------------------------------
def row_document(cells: Mapping[str, str]) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The manifest for one row's cells (column -> text), keys in manifest order, or None and
    (column, message) problems for cells that cannot be read. Schema and semantic rules are
    left to the manifest loader."""
    problems: list[tuple[str, str]] = []

    def cell(column: str) -> str:
        value = cells.get(column, "").strip()
        if not value and column in REQUIRED_COLUMNS:
            problems.append((column, "is empty; this column is required"))
        return value

    domains = _split(cell("domains"))
    users = _integer(cell("users"), "users", problems)
    max_text = cell("max_domains")
    max_domains = _integer(max_text, "max_domains", problems) if max_text else len(domains)
    prorate = _boolean(cell("prorate"), problems)
    labels = _labels(cell("labels"), problems)
    metadata: dict[str, Any] = {"name": cell("name")}
    if labels:
        metadata["labels"] = labels
    spec: dict[str, Any] = {
        "customer": {"account": cell("customer_account"), "domains": domains},
        "reseller": {"account": cell("reseller_account"), "name": cell("reseller_name")},
        "subscription": {"users": users, "domains": max_domains},
        "services": _split(cell("services")),
    }
    if cell("temporary_domain"):
        spec["temporary_domain"] = cell("temporary_domain")
    spec["authorization"] = {
        "customer_ticket": cell("customer_ticket"),
        "reseller_ticket": cell("reseller_ticket"),
    }
    spec["data"] = {
        "quarantine": cell("quarantine") or DEFAULT_DATA_MODE,
        "archive": cell("archive") or DEFAULT_DATA_MODE,
    }
    billing = {"transfer_fee": cell("transfer_fee") or None, "prorate": prorate}
    if any(v is not None for v in billing.values()):
        spec["billing"] = {k: v for k, v in billing.items() if v is not None}
    if problems:
        return None, problems
    doc = {"apiVersion": "transfer-runner/v1", "kind": "Transfer", "metadata": metadata}
    return {**doc, "spec": spec}, []


def _split(text: str) -> list[str]:
    return [part for part in _LIST_SEPARATORS.split(text) if part]


def _integer(text: str, column: str, problems: list[tuple[str, str]]) -> int:
    if _INTEGER.fullmatch(text):
        return int(text)
    if text:
        problems.append((column, f"{text!r} is not a whole number"))
    return 0


def _boolean(text: str, problems: list[tuple[str, str]]) -> bool | None:
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    problems.append(("prorate", f"{text!r} is not true or false"))
    return None


def _labels(text: str, problems: list[tuple[str, str]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in _split(text):
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(("labels", f"{item!r} is not key=value (write k=v;k=v)"))
        elif key in labels:
            problems.append(("labels", f"label {key!r} is given twice"))
        else:
            labels[key] = value
    return labels
