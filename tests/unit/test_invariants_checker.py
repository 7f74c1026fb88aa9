"""tests/invariants.py on hand-broken worlds: it must name every break, and pass a clean one.

One transfer is applied once (sandbox + moto S3); each case copies that world (sandbox file and
S3 objects), breaks one thing through the platform API, SQL or S3, and expects the checker to
report it. Without these the crash matrix could pass vacuously.
"""

from __future__ import annotations

import io
import sqlite3
import tarfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import zstandard
from moto import mock_aws

from tests.crash_world import NAME, crash_manifest, small_fixture
from tests.invariants import check_world, load_manifests
from tests.unit.moto_s3 import UNSET
from transfer_runner import commands
from transfer_runner.config import Settings
from transfer_runner.export.packing import read_members
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import NewAccount
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

BUCKET = "exports"
QUARANTINE = "quarantine/part-00001.tar.zst"


@dataclass
class Case:
    """A copy of the applied world: break it, then check it."""

    sandbox: Path
    s3: Any
    prefix: str
    transfers: list[Transfer]
    baseline: dict[str, Any]

    @property
    def export_to(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"

    def key(self, rest: str) -> str:
        return f"{self.prefix}/{NAME}/{rest}"

    def check(self, *, complete: bool = True) -> list[str]:
        return check_world(
            self.transfers,
            self.sandbox,
            self.s3,
            self.export_to,
            complete=complete,
            baseline=self.baseline,
        )

    def sql(self, statement: str, *params: Any) -> None:
        with closing(sqlite3.connect(self.sandbox)) as conn, conn:
            conn.execute(statement, params)

    def platform(self) -> SandboxPlatform:
        return SandboxPlatform(self.sandbox)

    def new_account(self) -> str:
        accounts = dump_sandbox(self.sandbox)["accounts"]
        return next(a["id"] for a in accounts if a["type"] == "resold")


@dataclass(frozen=True)
class Applied:
    root: Path
    s3: Any
    transfers: list[Transfer]
    baseline: dict[str, Any]


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    """acme-com applied once against a sandbox and moto S3 (kept running for the module)."""
    root = tmp_path_factory.mktemp("applied")
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name in UNSET:
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        (root / "fixture.yml").write_text(small_fixture())
        init_sandbox(root / "sandbox.db", root / "fixture.yml")
        baseline = dump_sandbox(root / "sandbox.db")
        (root / "transfers").mkdir()
        (root / "transfers" / f"{NAME}.yml").write_text(crash_manifest())
        settings = Settings(
            platform=f"sandbox:{root / 'sandbox.db'}",
            state=f"sqlite:{root / 'state.db'}",
            export_to=f"s3://{BUCKET}/base",
        )
        [result] = commands.apply(settings, commands.Selection([str(root / "transfers")])).transfers
        assert result.status == "succeeded", result.message
        yield Applied(root, s3, load_manifests([root / "transfers"]), baseline)


@pytest.fixture
def case(applied: Applied, tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    """A private copy of the applied world (sandbox file and S3 objects)."""
    sandbox = tmp_path / "sandbox.db"
    with (
        closing(sqlite3.connect(applied.root / "sandbox.db")) as source,
        closing(sqlite3.connect(sandbox)) as target,
    ):
        source.backup(target)
    prefix = f"case-{abs(hash(request.node.nodeid)):x}"
    originals = _objects(applied.s3, "base/")
    for key in originals:
        applied.s3.copy_object(
            Bucket=BUCKET,
            Key=prefix + key.removeprefix("base"),
            CopySource={"Bucket": BUCKET, "Key": key},
        )
    # A copy's LastModified is the time of the copy, seconds or minutes after the apply
    # (whatever ran before this test): move the copied world's audit by as much, so that the
    # order of its writes and its exports (which the checker compares) is the apply's.
    later = max(_objects(applied.s3, prefix + "/").values()) - max(originals.values())
    _shift_audit(sandbox, later)
    return Case(sandbox, applied.s3, prefix, applied.transfers, applied.baseline)


def _objects(s3: Any, prefix: str) -> dict[str, datetime]:
    """Key -> LastModified of every object under `prefix`."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", ())}


def _shift_audit(sandbox: Path, by: timedelta) -> None:
    with closing(sqlite3.connect(sandbox)) as conn, conn:
        rows = conn.execute("SELECT seq, at FROM audit").fetchall()
        conn.executemany(
            "UPDATE audit SET at = ? WHERE seq = ?",
            [((datetime.fromisoformat(at) + by).isoformat(), seq) for seq, at in rows],
        )


def test_a_clean_world_has_no_violation(case: Case) -> None:
    assert case.check() == []
    assert case.check(complete=False) == []


def test_an_untouched_world_is_safe_but_not_complete(applied: Applied, tmp_path: Path) -> None:
    (tmp_path / "fixture.yml").write_text(small_fixture())
    init_sandbox(tmp_path / "sandbox.db", tmp_path / "fixture.yml")
    args = (applied.transfers, tmp_path / "sandbox.db", applied.s3, f"s3://{BUCKET}/nothing")
    assert check_world(*args, complete=False) == []
    found = "\n".join(check_world(*args))
    for expected in ("0 new resold accounts", "no index.jsonl", "0 transfer-fee charges",
                     "0 pro-ration credits", "not cancelled", "has 0 new claim comments",
                     "has 0 new outcome comments"):  # fmt: skip
        assert expected in found


# -- the breaks: each names what the checker must say ------------------------------------------
def _extra_charge(c: Case) -> None:
    with c.platform() as p:
        p.charge("R-301", Decimal("25.00"), f"transfer fee for {NAME}", f"transfer-fee:{NAME}:x")


def _wrong_fee(c: Case) -> None:
    c.sql("UPDATE charges SET amount = '30.00'")


def _extra_credit(c: Case) -> None:
    with c.platform() as p:
        p.credit("C-1001", Decimal("1.00"), f"pro-ration for transfer {NAME}", "other-key")


def _wrong_credit(c: Case) -> None:
    c.sql("UPDATE credits SET amount = '0.01'")


def _second_account(c: Case) -> None:
    spec = NewAccount("R-301", "acme.com", "gdi2.acme.com", 40, 2, ("spamstopshere", "restoremail"))
    with c.platform() as p:
        p.create_account(spec, "account:other")


def _account_shape(c: Case) -> None:
    c.sql("UPDATE accounts SET users = 3 WHERE type = 'resold'")


def _temporary_domain_left(c: Case) -> None:
    with c.platform() as p:
        p.attach_domain(c.new_account(), "gdi.acme.com", "attach:again")


def _domain_not_moved(c: Case) -> None:
    with c.platform() as p:
        p.detach_domain(c.new_account(), "acme.net", "detach:acme.net")


def _direct_still_active(c: Case) -> None:
    c.sql("UPDATE accounts SET status = 'active', cancelled_at = NULL WHERE id = 'C-1001'")


def _extra_comment(c: Case) -> None:
    with c.platform() as p:
        p.add_ticket_comment("T-5002", "done, again", "comment:again")


def _claimed_by_another(c: Case) -> None:
    """The customer ticket's claim names another transfer (it replaces this one's)."""
    c.sql(
        "UPDATE comments SET body = replace(body, 'for transfer acme-com.', 'for transfer x.') "
        "WHERE ticket = 'T-5001' AND idempotency_key = 'ticket-claim:T-5001'"
    )


def _not_imported(c: Case) -> None:
    c.sql("DELETE FROM messages WHERE account != 'C-1001' AND rowid = (SELECT max(rowid) FROM "
          "messages WHERE account != 'C-1001')")  # fmt: skip


def _cancel_before_verify(c: Case) -> None:
    c.sql("UPDATE audit SET at = '2001-01-01T00:00:00+00:00' WHERE op = 'cancel_account'")


Members = list[tuple[str, bytes]]


def _rewrite_part(c: Case, change: Callable[[Members], Members]) -> None:
    key = c.key(QUARANTINE)
    body = c.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    members = [(m.name, m.data or b"") for m in read_members(io.BytesIO(body), keep_data=True)]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in change(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    c.s3.put_object(Bucket=BUCKET, Key=key, Body=zstandard.compress(out.getvalue()))


def _message_lost(c: Case) -> None:
    _rewrite_part(c, lambda members: members[1:])


def _message_altered(c: Case) -> None:
    _rewrite_part(c, lambda m: [(m[0][0], m[0][1] + b"tampered"), *m[1:]])


def _message_twice(c: Case) -> None:
    _rewrite_part(c, lambda members: [*members, members[0]])


def _index_deleted(c: Case) -> None:
    c.s3.delete_object(Bucket=BUCKET, Key=c.key("archive/index.jsonl"))


def _stray_part(c: Case) -> None:
    c.s3.put_object(Bucket=BUCKET, Key=c.key("archive/part-00002.tar.zst"), Body=b"x")


def _receipt_deleted(c: Case) -> None:
    c.s3.delete_object(Bucket=BUCKET, Key=c.key("receipt.json"))


BREAKS: list[tuple[Callable[[Case], None], str]] = [
    (_extra_charge, "2 transfer-fee charges"),
    (_extra_charge, f"has key 'transfer-fee:{NAME}:x'"),
    (_wrong_fee, "is 30.00, want 25.00"),
    (_extra_credit, "2 pro-ration credits"),
    (_wrong_credit, "is 0.01, want"),
    (_second_account, "2 new resold accounts"),
    (_account_shape, "has 3 users, want 40"),
    (_temporary_domain_left, "temporary domain gdi.acme.com is still on"),
    (_domain_not_moved, "acme.net is on no account"),
    (_direct_still_active, "direct account C-1001 is active, not cancelled"),
    (_extra_comment, "ticket T-5002 has 2 new outcome comments"),
    (_claimed_by_another, "I1: ticket T-5001 is claimed by another transfer"),
    (_not_imported, "import quarantine: 1 messages not imported"),
    (_cancel_before_verify, "cancel_account at 2001-01-01 00:00:00+00:00 before quarantine"),
    (_message_lost, "I2: quarantine: "),
    (_message_altered, "has a SHA-256 unlike the source"),
    (_message_twice, "is in parts ['part-00001.tar.zst', 'part-00001.tar.zst']"),
    (_index_deleted, "I2: archive: no index.jsonl on S3"),
    (_stray_part, "part objects the index does not name"),
    (_receipt_deleted, "with no export receipt on S3"),
]


@pytest.mark.parametrize(("breaker", "expected"), BREAKS, ids=[b.__name__[1:] for b, _ in BREAKS])
def test_a_broken_world_is_reported(case: Case, breaker, expected: str) -> None:
    breaker(case)
    found = case.check()
    assert any(expected in line for line in found), found
    assert all(line.startswith(f"{NAME}: ") for line in found)


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_extra_charge, "want at most 1"),
        (_second_account, "2 new resold accounts"),
        (_extra_comment, "2 new outcome comments"),
        (_cancel_before_verify, "before quarantine was verified"),
        (_message_lost, "I2: quarantine"),
    ],
    ids=["charge", "account", "comment", "order", "export"],
)
def test_what_must_hold_at_every_instant_is_checked_mid_transfer(
    case: Case, breaker, expected: str
) -> None:
    breaker(case)
    found = case.check(complete=False)
    assert any(expected in line for line in found), found
