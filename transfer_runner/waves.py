"""Bulk waves: one manifest per spreadsheet row (`new --from-csv FILE --out DIR`).

Every row becomes `DIR/<name>.yml` in the manifest format of `examples/transfers/`. The rows are
written to a staging directory first and validated by the real manifest loader together with
the manifests already in DIR (names, domains and tickets unique across all of them); only when
every row is valid, and no existing file would be silently replaced, are they moved into place.
Problems name the CSV row as a spreadsheet shows it (the header is row 1).
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.api import DEFAULT_DATA_MODE, display_path, load_transfers
from transfer_runner.manifest.discovery import discover
from transfer_runner.manifest.loader import resolve_plain_scalar

__all__ = [
    "COLUMNS", "REQUIRED_COLUMNS", "MAX_CSV_BYTES", "RowDiagnostic", "WaveResult",
    "write_manifests_from_csv", "row_document", "render_manifest",
]  # fmt: skip

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
_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_STAGING_PREFIX = ".transfer-runner-new-"
# Which CSV column a manifest node comes from (for locating the loader's problems).
_COLUMN_OF: dict[str, str] = {
    "metadata.name": "name", "metadata.labels": "labels",
    "spec.customer.account": "customer_account", "spec.customer.domains": "domains",
    "spec.reseller.account": "reseller_account", "spec.reseller.name": "reseller_name",
    "spec.subscription.users": "users", "spec.subscription.domains": "max_domains",
    "spec.services": "services", "spec.temporary_domain": "temporary_domain",
    "spec.authorization.customer_ticket": "customer_ticket",
    "spec.authorization.reseller_ticket": "reseller_ticket",
    "spec.data.quarantine": "quarantine", "spec.data.archive": "archive",
    "spec.billing.transfer_fee": "transfer_fee", "spec.billing.prorate": "prorate",
}  # fmt: skip
# Plain scalars a YAML 1.1 reader (PyYAML, older tools) would not read as strings.
_YAML11_WORDS = frozenset(
    {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
     "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"}
)  # fmt: skip
_PLAIN_SAFE = re.compile(r"[A-Za-z](?:[A-Za-z0-9 ._/-]*[A-Za-z0-9._/-])?")
_PRINTABLE = re.compile("[\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
class WaveResult:
    """What `write_manifests_from_csv` did: files written (none unless every row is valid),
    files already identical, and every problem found."""

    csv_path: str
    out_dir: str
    rows: int = 0
    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    diagnostics: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there were no problems (and so the manifests are in place)."""
        return not self.diagnostics

    def summary(self) -> str:
        """One line for people: what was written where."""
        if not self.ok:
            return f"{len(self.diagnostics)} problem(s) in {self.csv_path}; nothing was written"
        same = f", {len(self.unchanged)} already up to date" if self.unchanged else ""
        return f"wrote {len(self.written)} manifest(s) to {self.out_dir}{same}"


@dataclass(frozen=True)
class _Row:
    number: int
    cells: dict[str, str]


@dataclass(frozen=True)
class _Staged:
    row: _Row
    staged: Path
    target: Path


def write_manifests_from_csv(
    csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> WaveResult:
    """Write `<out_dir>/<name>.yml` for every row of `csv_path`, all or nothing.

    A file that exists with the same content is left alone (`unchanged`); one that differs is
    an error unless `overwrite`. Nothing is written when any problem is found; every problem
    of every row is reported at once.
    """
    source, out = Path(csv_path), Path(out_dir)
    display = display_path(source)
    rows, problems = _read_rows(source, display)
    base = WaveResult(display, display_path(out), rows=len(rows))
    documents: list[tuple[_Row, dict[str, Any]]] = []
    for row in rows:
        doc, cell_problems = row_document(row.cells)
        problems.extend(RowDiagnostic(display, row.number, m, c) for c, m in cell_problems)
        if doc is not None:
            documents.append((row, doc))
    if not rows and not problems:
        problems.append(RowDiagnostic(display, 0, "no data rows under the header"))
    if out.exists() and not out.is_dir():
        problems.append(RowDiagnostic(base.out_dir, 0, "--out must be a directory"))
    elif documents:
        try:
            with tempfile.TemporaryDirectory(prefix=_STAGING_PREFIX, dir=_anchor(out)) as tmp:
                return _stage_and_place(base, documents, Path(tmp), out, overwrite, problems)
        except OSError as exc:
            message = f"cannot write here: {exc.strerror or exc}; nothing was written"
            problems.append(RowDiagnostic(base.out_dir, 0, message))
    return replace(base, diagnostics=tuple(sorted(problems, key=_order)))


def _stage_and_place(
    base: WaveResult,
    documents: list[tuple[_Row, dict[str, Any]]],
    tmp: Path,
    out: Path,
    overwrite: bool,
    problems: list[Problem],
) -> WaveResult:
    staged = [_stage(tmp, out, row, doc) for row, doc in documents]
    fresh, unchanged, refused = _compare_targets(base, staged, overwrite)
    problems = [*problems, *refused, *_validate(base.csv_path, staged, _existing(out, staged))]
    if problems:
        return replace(base, diagnostics=tuple(sorted(problems, key=_order)))
    try:
        written = _place(fresh, out)
    except OSError as exc:
        message = f"could not write the manifests ({exc}); nothing was written"
        return replace(base, diagnostics=(RowDiagnostic(base.out_dir, 0, message),))
    return replace(base, written=written, unchanged=unchanged)


# -- reading the CSV ------------------------------------------------------------------------
def _read_rows(path: Path, display: str) -> tuple[list[_Row], list[Problem]]:
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
    rows: list[_Row] = []
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
        rows.append(_Row(number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
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


# -- YAML -----------------------------------------------------------------------------------
def render_manifest(doc: Mapping[str, Any]) -> str:
    """The manifest as YAML text in the style of `examples/transfers/`: block mappings, flow
    lists and labels, strings quoted wherever YAML 1.1 or 1.2 could read them as non-strings."""
    return "".join(_block(doc, 0))


def _block(mapping: Mapping[str, Any], indent: int) -> Iterator[str]:
    pad = "  " * indent
    for key, value in mapping.items():
        if isinstance(value, Mapping) and key != "labels":  # labels stay on one line
            yield f"{pad}{_scalar(key)}:\n"
            yield from _block(value, indent + 1)
        else:
            yield f"{pad}{_scalar(key)}: {_flow(value)}\n"


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    plain = (
        _PLAIN_SAFE.fullmatch(text)
        and text not in _YAML11_WORDS
        and resolve_plain_scalar(text) == text
    )
    return text if plain else _double_quoted(text)


def _double_quoted(text: str) -> str:
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _escape(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    if _PRINTABLE.fullmatch(ch) and ch not in "\u2028\u2029\ufeff":  # breaks, BOM: escaped
        return ch
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# -- staging, validation, placing -----------------------------------------------------------
def _anchor(out: Path) -> Path:
    """Where to stage: `out` itself, or its nearest existing ancestor (same file system, so
    the final move is a rename, and nothing is created when a row is invalid)."""
    for candidate in (out, *out.absolute().parents):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def _stage(tmp: Path, out: Path, row: _Row, doc: dict[str, Any]) -> _Staged:
    staged = tmp / f"row-{row.number:06d}.yml"
    staged.write_text(render_manifest(doc), encoding="utf-8", newline="\n")
    name = doc["metadata"]["name"]
    # a name that is not a DNS label never becomes a path (the schema reports it)
    target = out / f"{name}.yml" if _NAME.fullmatch(name) else staged
    return _Staged(row, staged, target)


def _compare_targets(
    base: WaveResult, staged: list[_Staged], overwrite: bool
) -> tuple[list[_Staged], tuple[Path, ...], list[Problem]]:
    """Split rows into new or replaced files and identical ones; refuse the rest."""
    fresh: list[_Staged] = []
    unchanged: list[Path] = []
    problems: list[Problem] = []
    for item in staged:
        if item.target == item.staged or not os.path.lexists(item.target):
            fresh.append(item)
            continue
        shown = display_path(item.target)
        if not item.target.is_file():
            message = f"{shown} exists and is not a file"
        elif item.target.read_bytes() == item.staged.read_bytes():
            unchanged.append(item.target)
            continue
        elif overwrite:
            fresh.append(item)
            continue
        else:
            message = f"{shown} already exists with other content; --overwrite replaces it"
        problems.append(RowDiagnostic(base.csv_path, item.row.number, message, "name"))
    return fresh, tuple(unchanged), problems


def _existing(out: Path, staged: Sequence[_Staged]) -> list[Path]:
    """The manifests already under `out`, minus the files this wave writes or keeps."""
    if not out.is_dir():
        return []
    files, _ = discover([str(out)])
    targets = {os.path.abspath(item.target) for item in staged}
    return [f for f in files if os.path.abspath(f) not in targets]


def _validate(
    csv_display: str, staged: Sequence[_Staged], existing: Sequence[Path]
) -> list[Problem]:
    """Run the real loader over the existing manifests and then the rows (so that a clash is
    reported on the row), mapping each problem of a staged file back to its row and column."""
    rows = {display_path(item.staged): item.row for item in staged}
    paths = [str(p) for p in existing] + [str(item.staged) for item in staged]
    _, diagnostics = load_transfers(paths)
    out: list[Problem] = []
    for diag in diagnostics:
        message = _rename(diag.message, rows, csv_display)
        row = rows.get(diag.path)
        if row is None:
            out.append(replace(diag, message=message))
        else:
            out.append(RowDiagnostic(csv_display, row.number, message, _column(diag.where, row)))
    return out


def _order(problem: Problem) -> tuple[int, str, int, int]:
    """Rows in order first, then problems of existing manifests by file and line."""
    if isinstance(problem, RowDiagnostic):
        return (0, "", problem.row, 0)
    return (1, problem.path, problem.line, problem.col)


def _rename(message: str, rows: Mapping[str, _Row], csv_display: str) -> str:
    for shown, row in rows.items():
        message = message.replace(shown, f"{csv_display}:row {row.number}")
    return message


def _column(where: str, row: _Row) -> str:
    for prefix, column in _COLUMN_OF.items():
        if where == prefix or where.startswith((prefix + ".", prefix + "[")):
            if column == "temporary_domain" and not row.cells.get(column):
                return "domains"  # the default temporary domain comes from the first domain
            return column
    return where


def _place(items: Sequence[_Staged], out: Path) -> tuple[Path, ...]:
    """Move staged files into place; on any failure put every target back as it was."""
    out.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, bytes | None]] = []
    try:
        for item in items:
            before = item.target.read_bytes() if item.target.is_file() else None
            _move(item.staged, item.target, replace_existing=before is not None)
            done.append((item.target, before))
    except OSError:
        for target, before in reversed(done):
            _restore(target, before)
        raise
    return tuple(item.target for item in items)


def _move(source: Path, target: Path, *, replace_existing: bool) -> None:
    if replace_existing:
        os.replace(source, target)
        return
    try:
        os.link(source, target)  # raises FileExistsError if one appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system
        if os.path.lexists(target):
            raise FileExistsError(f"{target} appeared while writing") from None
        shutil.copyfile(source, target)


def _restore(target: Path, before: bytes | None) -> None:
    with contextlib.suppress(OSError):
        if before is None:
            target.unlink()
        else:
            target.write_bytes(before)
