"""Bulk waves from a spreadsheet: one manifest per CSV row (`new --from-csv FILE --out DIR`).

Every row becomes `DIR/<name>.yml` in the manifest format of `examples/transfers/`; problems
name the CSV row as a spreadsheet shows it. `rows` reads the CSV, `render` writes YAML,
`writer` stages, validates and places the files.
"""

from __future__ import annotations

from transfer_runner.csv_manifests.render import render_manifest
from transfer_runner.csv_manifests.rows import (
    COLUMNS,
    MAX_CSV_BYTES,
    REQUIRED_COLUMNS,
    RowDiagnostic,
    row_document,
)
from transfer_runner.csv_manifests.writer import WaveResult, write_manifests_from_csv

__all__ = [
    "COLUMNS",
    "MAX_CSV_BYTES",
    "REQUIRED_COLUMNS",
    "RowDiagnostic",
    "WaveResult",
    "render_manifest",
    "row_document",
    "write_manifests_from_csv",
]
