"""Mail data export to S3, verification and import (README: "Data export").

Modules: `layout` (keys and names), `index` (`index.jsonl`), `packing` (tar parts),
`objects` (S3 calls and retries), `source` (platform listing), `journal` (completed parts, for
resuming), `pipeline` (overlapped uploads), `exporter`, `verifier`, `importer`, `receipt`,
`extract` (safe unpacking). The S3 settings and client are `transfer_runner.s3_client`; the
points the kill tests stop at are `transfer_runner.testpoints`.
"""

from __future__ import annotations

from transfer_runner.export.exporter import export_store
from transfer_runner.export.extract import extract_part
from transfer_runner.export.importer import ImportResult, import_store, inspect_import
from transfer_runner.export.receipt import Receipt, read_receipt, write_receipt
from transfer_runner.export.status import ExportResult, ExportStatus, inspect_export
from transfer_runner.export.verifier import VerifyResult, verify_store
from transfer_runner.s3_client import S3Settings, make_s3_client, parse_s3_url

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
