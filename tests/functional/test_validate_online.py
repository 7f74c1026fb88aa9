"""`validate --online`: the manifests against the platform and the state store."""

from __future__ import annotations

from tests.builders import GLOBEX, World, manifest
from transfer_runner import commands


def _messages(world: World) -> list[str]:
    result = commands.validate(
        world.settings(), commands.Selection([str(world.manifests)]), online=True
    )
    return [str(d) for d in result.diagnostics]


def test_online_validation_passes_for_a_consistent_world(world: World) -> None:
    assert _messages(world) == []
    assert world.writes() == 0
    assert not world.state.exists()


def test_online_validation_finds_platform_mismatches(world: World) -> None:
    world.write(
        "acme-com.yml",
        manifest(account="C-1002", reseller="C-1001", customer_ticket="T-9999"),
    )
    found = _messages(world)
    text = "\n".join(found)
    assert "spec.reseller.account: C-1001 is direct, not a reseller" in text
    assert "spec.customer.domains[0]: acme.com is not on C-1002" in text
    assert "spec.authorization.customer_ticket: ticket T-9999 does not exist" in text
    assert all(line.split(":")[1] != "0" for line in found), found  # located lines


def test_online_validation_reports_drift(world: World) -> None:
    world.apply()
    world.write("acme-com.yml", manifest(users=41))
    assert any("drift" in m for m in _messages(world))


def test_online_validation_reports_a_ticket_used_elsewhere(world: World) -> None:
    world.apply()
    (world.manifests / "acme-com.yml").unlink()
    world.write("globex-io.yml", manifest("globex-io", **{**GLOBEX, "customer_ticket": "T-5001"}))
    assert any("ticket T-5001 is used by acme-com" in m for m in _messages(world))
