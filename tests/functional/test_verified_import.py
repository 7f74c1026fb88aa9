"""Import reads only the export that was verified (issue 18, part 1).

The attacker can write to the export bucket between `data.verify` and `data.import` (or between
the import's check and its write). Replacing the index and a part with ones that hold a planted
message under a real id used to import the planted message: import checked each member only
against the index it read then. Now the recorded verification pins the index's SHA-256 and
every part's ETag; a changed export fails the step before anything is imported, and the direct
account stays as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
import zstandard

from tests.builders import BUCKET, World
from transfer_runner import commands, testpoints
from transfer_runner.export.index import IndexEntry
from transfer_runner.export.layout import StoreLayout

BASE = "runs/acme-com/archive/"
PLANTED = b"From: attacker@example.net\r\nSubject: planted\r\n\r\nnot the customer's mail\r\n"


def _plant_a_message(s3: Any) -> str:
    """Replace the archive's index by one listing a planted body under a real message's id,
    in a new part of its own; the id."""
    index = s3.get_object(Bucket=BUCKET, Key=BASE + "index.jsonl")["Body"].read()
    first = json.loads(index.splitlines()[0])
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(StoreLayout.member_name(first["id"]))
        info.size = len(PLANTED)
        archive.addfile(info, io.BytesIO(PLANTED))
    part = "part-00099.tar"
    s3.put_object(Bucket=BUCKET, Key=BASE + part, Body=tar.getvalue())
    entry = IndexEntry(first["id"], part, len(PLANTED), hashlib.sha256(PLANTED).hexdigest(),
                       first["received_at"], 1)  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=BASE + "index.jsonl", Body=entry.to_line())
    return str(first["id"])


def _recompress_a_part(s3: Any) -> str:
    """Replace part 1 by the same messages compressed anew: other bytes, same content."""
    key = BASE + "part-00001.tar.zst"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    tar = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    s3.put_object(Bucket=BUCKET, Key=key, Body=zstandard.ZstdCompressor(level=19).compress(tar))
    return ""


def _until_verified(world: World) -> None:
    from transfer_runner.playbook.loader import default_playbook_path

    data = yaml.safe_load(default_playbook_path().read_text())
    names = [t["name"] for t in data["tasks"]]
    data["tasks"] = data["tasks"][: names.index("Verify both exports against the source") + 1]
    playbook = world.root / "until-verify.yml"
    playbook.write_text(yaml.safe_dump(data, sort_keys=False))
    commands.apply(world.settings(playbook=str(playbook)), world.selection())


@pytest.fixture
def at_point() -> Iterator[Callable[[str, Callable[[], object]], None]]:
    """Run an action once when the process reaches a named test point."""
    before = testpoints.install(None)

    def arm(point: str, action: Callable[[], object]) -> None:
        fired: list[bool] = []

        def hook(name: str) -> None:
            if name == point and not fired:
                fired.append(True)
                action()

        testpoints.install(hook)

    yield arm
    testpoints.install(before)


def _new_account(world: World) -> str | None:
    accounts = world.dump()["accounts"]
    made = [a["id"] for a in accounts if a["id"] not in ("C-1001", "C-1002", "R-301", "R-302")]
    return made[0] if made else None


def _assert_refused(world: World, result: Any, why: str) -> None:
    assert result.status == "failed"
    assert why in result.message
    direct = world.account("C-1001")
    assert direct["status"] == "active" and sorted(direct["domains"]) == ["acme.com", "acme.net"]
    new = _new_account(world)
    assert new is not None and world.account(new)["archive_messages"] == 0  # nothing imported
    dump = world.dump()
    assert dump["charges"] == [] and dump["credits"] == []


def test_a_message_planted_after_the_verification_is_refused_by_the_next_run(
    world: World, s3: Any
) -> None:
    _until_verified(world)
    _plant_a_message(s3)
    [result] = world.apply().transfers  # the export step compares its index with the source
    _assert_refused(world, result, "changed under the same id since it was exported")


@pytest.mark.parametrize(
    ("tamper", "why"),
    [(_plant_a_message, "is not the index that was verified"),
     (_recompress_a_part, "is not the object that was verified")],
)  # fmt: skip
def test_an_export_changed_between_the_imports_check_and_its_write_is_not_imported(
    world: World,
    s3: Any,
    at_point: Callable[[str, Callable[[], object]], None],
    tamper: Callable[[Any], str],
    why: str,
) -> None:
    from transfer_runner.playbook.loader import default_playbook_path

    tasks = yaml.safe_load(default_playbook_path().read_text())["tasks"]
    number = 1 + [t["name"] for t in tasks].index("Import the exports into the new account")
    at_point(f"before-step-{number}", lambda: tamper(s3))  # after verify, after import's check
    [result] = world.apply().transfers
    _assert_refused(world, result, why)
