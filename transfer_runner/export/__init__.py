"""Mail data export to S3, verification and import (README: "Data export").

Modules: `s3` (settings and client), `layout` (keys and names), `index` (`index.jsonl`),
`packing` (tar parts), `objects` (S3 calls and retries), `source` (platform listing),
`journal` (completed parts, for resuming), `pipeline` (overlapped uploads), `exporter`,
`verifier`, `importer`, `receipt`, `extract` (safe unpacking). Crash points for the kill
tests: `transfer_runner.testpoints`.
"""

from __future__ import annotations

from transfer_runner.export.exporter import ExportResult, ExportStatus, export_store, inspect_export
from transfer_runner.export.extract import extract_part
from transfer_runner.export.importer import ImportResult, import_store, inspect_import
from transfer_runner.export.receipt import Receipt, read_receipt, write_receipt
from transfer_runner.export.s3 import S3Settings, make_s3_client, parse_s3_url
from transfer_runner.export.verifier import VerifyResult, verify_store

__all__ = [
    "S3Settings",
    "parse_s3_url",
    "make_s3_client",
    "ExportResult",
    "ExportStatus",
    "export_store",
    "inspect_export",
    "VerifyResult",
    "verify_store",
    "ImportResult",
    "import_store",
    "inspect_import",
    "extract_part",
    "Receipt",
    "write_receipt",
    "read_receipt",
]
