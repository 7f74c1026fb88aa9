"""Receipts, checkpoints and state objects are read with a bound (issue 18 part 2): an
object planted under their names, far larger than any the runner writes, is refused after
reading at most the bound plus one byte, never loaded whole."""

from __future__ import annotations

import json

import pytest

from tests.unit.moto_s3 import moto_bucket
from transfer_runner.errors import ExportError, StateError
from transfer_runner.export import objects
from transfer_runner.s3_client import S3Settings
from transfer_runner.state import s3_objects

BUCKET = "bounded"
SETTINGS = S3Settings(export_to=f"s3://{BUCKET}/runs")


def test_a_receipt_larger_than_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "MAX_SMALL_OBJECT", 1024)
    with moto_bucket(monkeypatch, BUCKET, SETTINGS) as s3:
        s3.put_object(Bucket=BUCKET, Key="runs/t/receipt.json", Body=b"x" * 1025)
        s3.put_object(Bucket=BUCKET, Key="runs/t/ok.json", Body=b"y" * 1024)
        with pytest.raises(ExportError, match="refused unread"):
            objects.read_bytes(s3, BUCKET, "runs/t/receipt.json")
        assert objects.read_bytes(s3, BUCKET, "runs/t/ok.json") == b"y" * 1024


def test_a_state_object_larger_than_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_objects, "MAX_STATE_OBJECT", 4096)
    with moto_bucket(monkeypatch, BUCKET, SETTINGS) as s3:
        store = s3_objects.S3Objects(s3, BUCKET, "state", f"s3://{BUCKET}/state")
        big = json.dumps({"pad": "z" * 5000}).encode()
        s3.put_object(Bucket=BUCKET, Key="state/transfers/x.json", Body=big)
        s3.put_object(Bucket=BUCKET, Key="state/transfers/y.json", Body=b'{"ok": true}')
        with pytest.raises(StateError, match="refused unread"):
            store.get("transfers/x.json")
        found = store.get("transfers/y.json")
        assert found is not None and found.body == {"ok": True}
