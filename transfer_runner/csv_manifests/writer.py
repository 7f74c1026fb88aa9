"""`new --from-csv FILE --out DIR`: one manifest per row, all or nothing.

The rows are written to a staging directory first and validated by the real manifest loader
together with the manifests already in DIR (names, domains and tickets unique across all of
them); only when every row is valid, and no existing file would be silently replaced, are they
moved into place."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transfer_runner.csv_manifests.render import MODELINE_PREFIX, render_manifest, schema_modeline
from transfer_runner.csv_manifests.rows import Problem, Row, RowDiagnostic, read_rows, row_document
from transfer_runner.manifest.api import display_path, load_transfers
from transfer_runner.manifest.discovery import discover

__all__ = ["WaveResult", "write_manifests_from_csv"]

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
class _Staging:
    """Where rows are staged, where they go, and the first line of each."""

    tmp: Path
    out: Path
    head: str


@dataclass(frozen=True)
class _Staged:
    row: Row
    staged: Path
    target: Path


def write_manifests_from_csv(
    csv_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    schema: str | os.PathLike[str] | None = None,
    modeline: bool = True,
) -> WaveResult:
    """Write `<out_dir>/<name>.yml` for every row of `csv_path`, all or nothing.

    Each file starts with the YAML language server's line naming the manifest schema
    (`schema`, default `.schemas/transfer-manifest.json` beside `out_dir`), unless not
    `modeline`. A file that exists with the same content is left alone (`unchanged`), also
    when only that first line differs (a manifest's bytes are its identity once applied); one
    that differs otherwise is an error unless `overwrite`. Nothing is written when any problem
    is found; every problem of every row is reported at once.
    """
    source, out = Path(csv_path), Path(out_dir)
    display = display_path(source)
    rows, problems = read_rows(source, display)
    base = WaveResult(display, display_path(out), rows=len(rows))
    head = ""
    if modeline:
        try:
            head = schema_modeline(out, schema)
        except ValueError as exc:
            problems.append(RowDiagnostic(str(schema), 0, str(exc)))
    documents: list[tuple[Row, dict[str, Any]]] = []
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
                staging = _Staging(Path(tmp), out, head)
                return _stage_and_place(base, documents, staging, overwrite, problems)
        except OSError as exc:
            message = f"cannot write here: {exc.strerror or exc}; nothing was written"
            problems.append(RowDiagnostic(base.out_dir, 0, message))
    return replace(base, diagnostics=tuple(sorted(problems, key=_order)))


def _stage_and_place(
    base: WaveResult,
    documents: list[tuple[Row, dict[str, Any]]],
    staging: _Staging,
    overwrite: bool,
    problems: list[Problem],
) -> WaveResult:
    out = staging.out
    staged = [_stage(staging, row, doc) for row, doc in documents]
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


# -- staging, validation, placing -----------------------------------------------------------
def _anchor(out: Path) -> Path:
    """Where to stage: `out` itself, or its nearest existing ancestor (same file system, so
    the final move is a rename, and nothing is created when a row is invalid)."""
    for candidate in (out, *out.absolute().parents):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def _stage(staging: _Staging, row: Row, doc: dict[str, Any]) -> _Staged:
    staged, out = staging.tmp / f"row-{row.number:06d}.yml", staging.out
    staged.write_text(staging.head + render_manifest(doc), encoding="utf-8", newline="\n")
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
        elif _same_manifest(item.target.read_bytes(), item.staged.read_bytes()):
            unchanged.append(item.target)
            continue
        elif overwrite:
            fresh.append(item)
            continue
        else:
            message = f"{shown} already exists with other content; --overwrite replaces it"
        problems.append(RowDiagnostic(base.csv_path, item.row.number, message, "name"))
    return fresh, tuple(unchanged), problems


def _same_manifest(existing: bytes, staged: bytes) -> bool:
    """The same bytes, or the same but for the schema line (with or without one)."""
    return existing == staged or _without_modeline(existing) == _without_modeline(staged)


def _without_modeline(text: bytes) -> bytes:
    first, newline, rest = text.partition(b"\n")
    return rest if newline and first.startswith(MODELINE_PREFIX.encode()) else text


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


def _rename(message: str, rows: Mapping[str, Row], csv_display: str) -> str:
    for shown, row in rows.items():
        message = message.replace(shown, f"{csv_display}:row {row.number}")
    return message


def _column(where: str, row: Row) -> str:
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
