"""Issue 18, reproduced: a part in S3 replaced by someone with write access to the bucket, holding
a member far larger than the index says. Import and verify refuse it on the member's tar
header, before its data is read: the child's peak RSS stays within `BOUND_MIB` of what it was
before the attack. Before the fix, import read the whole member into memory first (a 32 KiB
part holding one 1 GiB member: 2 GiB more RSS) and only then compared its size with the index.
"""

from __future__ import annotations

import pytest

from tests.unit.bombs import MiB, measured

BOUND_MIB = 64  # what reading a refused part may add to the peak RSS (1 GiB claimed)

# An export of three messages in moto, its one part then swapped for `BOMB` (a zstd part of one
# member named NAME claiming SIZE bytes of zeros: the member's bytes really are in it).
SETUP = """
import os
for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
             "AWS_REGION", "AWS_SESSION_TOKEN"):
    os.environ.pop(name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
)
from moto import mock_aws

mock_aws().start()
from tests.unit.bombs import zstd_bomb
from tests.unit.fake_platform import FakePlatform
from transfer_runner.export.exporter import export_store
from transfer_runner.export.importer import import_store
from transfer_runner.export.verifier import verify_store
from transfer_runner.s3_client import S3Settings, make_s3_client

settings = S3Settings("s3://exports/runs", compression="zstd")
s3 = make_s3_client(settings)
s3.create_bucket(Bucket="exports")
platform = FakePlatform()
platform.add_messages("C-1001", "archive", 3, size=2048)
(part,) = export_store(platform, s3, settings, "acme-com", "C-1001", "archive").parts
NAME = NAME.replace("FIRST", sorted(platform.ids("C-1001", "archive"))[0])
bomb = zstd_bomb(NAME, SIZE)
s3.put_object(Bucket="exports", Key=part, Body=bomb)
print("bomb part:", len(bomb), "bytes", file=sys.stderr)
"""

IMPORT = """
import_store(platform, s3, settings, "acme-com", "A-2001", "archive", "k", from_account="C-1001")
"""

VERIFY = """
outcome = verify_store(platform, s3, settings, "acme-com", "C-1001", "archive")
raise RuntimeError(" | ".join(outcome.problems))
"""

ATTACKS = {
    # a member of 1 GiB: over the message limit (256 MiB), whatever the index says
    "one 1 GiB member": ("FIRST.eml", 1024 * MiB, "claims 1 GiB, more than a message may be"),
    # 200 MiB, under the limit, where the index says 2048 bytes
    "a member larger than the index says": ("FIRST.eml", 200 * MiB, "209,715,200 bytes"),
    # a message the index does not list at all
    "a member the index lacks": ("intruder.eml", 200 * MiB, "'intruder.eml'"),
}


def attack(name: str, size: int, action: str) -> dict[str, object]:
    setup = f"NAME, SIZE = {name!r}, {size}\nimport sys\n" + SETUP
    return measured(setup, action)


@pytest.mark.parametrize("case", list(ATTACKS))
def test_import_refuses_an_oversized_member_before_reading_it(case: str) -> None:
    name, size, expected = ATTACKS[case]
    result = attack(name, size, IMPORT)
    outcome = str(result["outcome"])
    assert outcome.startswith("ExportError: "), outcome
    assert expected in outcome
    assert result["grew_mib"] < BOUND_MIB, result


def test_import_names_the_limit_and_the_variable_that_raises_it() -> None:
    name, size, _ = ATTACKS["one 1 GiB member"]
    outcome = str(attack(name, size, IMPORT)["outcome"])
    assert "is damaged" in outcome
    assert "the limit is 256 MiB; TRANSFER_RUNNER_MAX_MESSAGE_MIB raises it" in outcome


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("one 1 GiB member", "damaged after 0 member(s): member 'msg-"),
        (
            "a member larger than the index says",
            "209715200 bytes in part-00001.tar.zst, index 2048",
        ),
        (
            "a member the index lacks",
            "message intruder: in part-00001.tar.zst but not in the index",
        ),
    ],
)
def test_verify_finds_the_oversized_member_unread(case: str, problem: str) -> None:
    name, size, _ = ATTACKS[case]
    result = attack(name, size, VERIFY)
    assert problem in str(result["outcome"]), result["outcome"]
    assert result["grew_mib"] < BOUND_MIB, result
