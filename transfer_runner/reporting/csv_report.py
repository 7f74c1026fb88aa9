"""`report --format csv`: one row per transfer (`rows.TransferRow`), for a spreadsheet.

RFC 4180 (comma, CRLF, quotes where needed), UTF-8. A text cell that a spreadsheet would read
as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return: a platform's error
message or a ticket's text can) is written with a leading apostrophe, as OWASP advises for
CSV injection. Amounts are plain decimals, times ISO 8601 UTC, labels `k=v` joined by `;`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from transfer_runner.platforms.base import STORES
from transfer_runner.reporting.rows import TransferRow
from transfer_runner.utc import iso_z

__all__ = ["COLUMNS", "render_csv"]

COLUMNS = (
    "run_id",
    "transfer",
    "status",
    "customer_account",
    "reseller_account",
    "labels",
    "new_account",
    "domains_moved",
    *(f"{store}_{what}" for store in STORES for what in ("messages", "bytes")),
    "credit",
    "credit_id",
    "fee",
    "charge_id",
    "receipt",
    "failed_step",
    "message",
    "started_at",
    "ended_at",
    "duration_s",
    "manifest",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def render_csv(rows: Iterable[TransferRow]) -> str:
    """The CSV text, header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(_cells(row))
    return out.getvalue()


def _cells(row: TransferRow) -> list[str]:
    text = _safe_text
    figures = [
        str(figure.get(store, "")) for store in STORES for figure in (row.messages, row.bytes)
    ]
    return [
        text(row.run_id),
        text(row.name),
        row.status,
        text(row.customer_account),
        text(row.reseller_account),
        text(";".join(f"{k}={v}" for k, v in sorted(row.labels.items()))),
        text(row.new_account),
        text(" ".join(row.domains_moved)),
        *figures,
        "" if row.credit is None else str(row.credit),
        text(row.credit_id),
        "" if row.fee is None else str(row.fee),
        text(row.charge_id),
        text(row.receipt),
        text(row.failed_step),
        text(row.message),
        _time(row.started_at),
        _time(row.ended_at),
        f"{row.duration_s:.3f}",
        text(row.path),
    ]


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _time(value: datetime | None) -> str:
    return iso_z(value) if value is not None else ""
