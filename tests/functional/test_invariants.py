"""Invariants I1, I2, I3 and I5 against the sandbox and moto S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import BUCKET, GLOBEX, World, both_platform_paths, manifest
from transfer_runner import commands
from transfer_runner.errors import PlatformError
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

pytestmark = both_platform_paths  # the embedded sandbox, and over HTTP


def _edit_ticket(world: World, ticket_id: str, **changes: Any) -> None:
    """Rewrite a ticket in the fixture and re-create the sandbox."""
    fixture = world.root / "fixture.yml"
    data = yaml.safe_load(fixture.read_text())
    for ticket in data["tickets"]:
        if ticket["id"] == ticket_id:
            ticket.update(changes)
    fixture.write_text(yaml.safe_dump(data))
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    init_sandbox(world.sandbox, fixture, force=True)


# -- I1: nothing is written before both tickets are verified ---------------------------------
@pytest.mark.parametrize(
    ("ticket", "changes", "why"),
    [
        ("T-5001", {"account": "R-301"}, "opened from account R-301"),
        ("T-5002", {"account": "C-1001"}, "opened from account C-1001"),
        ("T-5001", {"body": "We, other.com, authorize ... under Northwind IT."}, "customer domain"),
        (
            "T-5002",
            {"body": "We, Northwind IT, Authorize other.com to be transferred."},
            "customer domain",
        ),
        ("T-5001", {"body": "We, acme.com, authorize the transfer to Contoso."}, "new reseller"),
        ("T-5001", {"status": "closed", "resolution": "rejected"}, "rejected"),
    ],
)
def test_i1_bad_ticket_means_no_platform_write(world: World, ticket, changes, why) -> None:
    _edit_ticket(world, ticket, **changes)
    [result] = world.apply().transfers
    assert result.status == "failed"
    assert why in result.message
    assert world.writes() == 0
    assert world.account("C-1001")["status"] == "active"


def test_i1_missing_ticket_means_no_platform_write(world: World) -> None:
    world.write("acme-com.yml", manifest(customer_ticket="T-9999"))
    [result] = world.apply().transfers
    assert result.status == "failed" and "does not exist" in result.message
    assert world.writes() == 0


def test_i1_ticket_reused_by_another_transfer(world: World, tmp_path: Path) -> None:
    both = "We, Northwind IT, Authorize acme.com and globex.io to be transferred to our account."
    _edit_ticket(world, "T-5002", body=both)  # one ticket that would fit both transfers
    assert world.apply().transfers[0].status == "succeeded"
    before = world.writes()
    other = tmp_path / "other"
    other.mkdir()
    (other / "globex-io.yml").write_text(
        manifest("globex-io", **{**GLOBEX, "reseller_ticket": "T-5002"})
    )
    [result] = commands.apply(world.settings(), commands.Selection([str(other)])).transfers
    assert result.status == "failed"
    assert "claimed on the platform by transfer acme-com" in result.message
    assert world.writes() == before
    assert world.account("C-1002")["status"] == "active"


# -- I2: the direct account is untouched until the exports verify ---------------------------
def _flip_a_byte(s3: Any, key: str) -> None:
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))


def test_i2_flipped_byte_fails_verify_and_blocks_cancel(world: World, s3) -> None:
    playbook = _playbook_until(world, "Export archive to S3")
    commands.apply(
        world.settings(playbook=str(playbook)), commands.Selection([str(world.manifests)])
    )
    _flip_a_byte(s3, "runs/acme-com/archive/part-00001.tar.zst")
    [result] = world.apply().transfers
    assert result.status == "failed"
    assert "does not verify" in result.message
    direct = world.account("C-1001")
    assert direct["status"] == "active" and sorted(direct["domains"]) == ["acme.com", "acme.net"]
    dump = world.dump()
    assert dump["charges"] == [] and dump["credits"] == []


def test_i2_gate_holds_even_if_the_playbook_drops_verify(world: World) -> None:
    playbook = _playbook_without(world, "Verify both exports against the source")
    [result] = commands.apply(
        world.settings(playbook=str(playbook)), commands.Selection([str(world.manifests)])
    ).transfers
    # data.import refuses an export nothing verified, before the cancel gate would
    assert result.status == "failed" and "has no recorded verification" in result.message
    assert world.account("C-1001")["status"] == "active"


def _playbook_until(world: World, last: str) -> Path:
    from transfer_runner.playbook.loader import default_playbook_path

    data = yaml.safe_load(default_playbook_path().read_text())
    names = [t["name"] for t in data["tasks"]]
    data["tasks"] = data["tasks"][: names.index(last) + 1]
    path = world.root / "partial.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _playbook_without(world: World, name: str) -> Path:
    from transfer_runner.playbook.loader import default_playbook_path

    data = yaml.safe_load(default_playbook_path().read_text())
    data["tasks"] = [t for t in data["tasks"] if t["name"] != name]
    path = world.root / "without.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- I3: exactly one account, one fee, one credit, whatever fails ----------------------------
class LostAck:
    """Wraps the sandbox: the named write happens, then its reply is 'lost' (raises) once."""

    def __init__(self, inner: SandboxPlatform, operation: str) -> None:
        self.inner, self.operation, self.fired = inner, operation, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.operation or self.fired:
            return attr

        def lost(*args: Any, **kwargs: Any) -> Any:
            attr(*args, **kwargs)
            self.fired = True
            raise PlatformError(name, "connection reset before the reply", 503)

        return lost


@pytest.mark.parametrize(
    "operation",
    [
        "create_account",
        "import_message",
        "cancel_account",
        "move_domain",
        "detach_domain",
        "credit",
        "charge",
        "add_ticket_comment",
    ],
)
def test_i3_lost_acknowledgement_then_rerun(world: World, monkeypatch, operation) -> None:
    import transfer_runner.platforms as opener  # what commands.session opens

    real_open = opener.open_platform
    monkeypatch.setattr(opener, "open_platform", lambda url: LostAck(real_open(url), operation))
    [first] = world.apply().transfers
    assert first.status == "failed" and "connection reset" in first.message
    monkeypatch.setattr(opener, "open_platform", real_open)
    [second] = world.apply().transfers
    assert second.status == "succeeded", second.message
    _assert_exactly_once(world)
    [third] = world.apply().transfers
    assert third.status == "unchanged"
    _assert_exactly_once(world)


def _assert_exactly_once(world: World) -> None:
    dump = world.dump()
    resold = [a for a in dump["accounts"] if a["type"] == "resold"]
    assert len(resold) == 1
    assert sorted(resold[0]["domains"]) == ["acme.com", "acme.net"]
    assert resold[0]["archive_messages"] == 80
    assert len(dump["charges"]) == 1 and dump["charges"][0]["amount"] == "25.00"
    assert len(dump["credits"]) == 1
    for ticket in dump["tickets"][:2]:  # its claim, then the outcome
        claim, outcome = ticket["comments"]
        assert claim.startswith("Claimed by transfer-runner for transfer acme-com.")
        assert outcome.startswith("Transfer acme-com completed")
