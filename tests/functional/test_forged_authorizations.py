"""Forged or wrong authorizations (invariant I1): apply makes no platform write at all.

tests/functional/test_invariants.py already covers, with the same `writes() == 0` audit: a
customer ticket opened from the reseller's account and the reverse, a ticket that does not name
the customer domain, a customer ticket that names another reseller (Contoso), a ticket closed as
rejected and a customer ticket that does not exist. The cases here are the ones it leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import GLOBEX, World, manifest
from transfer_runner import commands
from transfer_runner.errors import ManifestError
from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
from transfer_runner.playbook.loader import default_playbook_path
from transfer_runner.state.open import open_state

CONTOSO = {"id": "R-302", "type": "reseller", "name": "Contoso"}
CUSTOMER_BODY = (
    "We, {domain}, authorize the transfer of our direct account to resold under {reseller}."
)
RESELLER_BODY = "We, Northwind IT, Authorize {domain} to be transferred to our account."


def _rebuild(
    world: World, tickets: dict[str, dict[str, Any]], accounts: Sequence[dict[str, Any]] = ()
) -> None:
    """Change tickets of the fixture (by id), add accounts, and re-create the sandbox."""
    fixture = world.root / "fixture.yml"
    data = yaml.safe_load(fixture.read_text(encoding="utf-8"))
    for ticket in data["tickets"]:
        ticket.update(tickets.get(ticket["id"], {}))
    data["accounts"].extend(accounts)
    fixture.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    init_sandbox(world.sandbox, fixture, force=True)


def _assert_untouched(world: World) -> None:
    """The platform audit shows no write, and the world looks as the fixture made it."""
    assert world.writes() == 0
    dump = world.dump()
    assert [a for a in dump["accounts"] if a["type"] == "resold"] == []
    direct = world.account("C-1001")
    assert direct["status"] == "active"
    assert sorted(direct["domains"]) == ["acme.com", "acme.net"]
    assert dump["charges"] == [] and dump["credits"] == []
    assert all(ticket["comments"] == [] for ticket in dump["tickets"])


def _apply(world: World, playbook: Path | None = None) -> Any:
    settings = world.settings(playbook=str(playbook)) if playbook else world.settings()
    [result] = commands.apply(settings, commands.Selection([str(world.manifests)])).transfers
    return result


def _fails_without_writes(world: World, *fragments: str, playbook: Path | None = None) -> None:
    result = _apply(world, playbook)
    assert result.status == "failed"
    for fragment in fragments:
        assert fragment in result.message, result.message
    _assert_untouched(world)


# (case, ticket edits, extra accounts, expected fragments of the failure)
FORGED: list[tuple[str, dict[str, dict[str, Any]], list[dict[str, Any]], tuple[str, ...]]] = [
    (
        "customer ticket opened from another customer's direct account",
        {"T-5001": {"account": "C-1002"}},
        [],
        ("customer ticket T-5001", "opened from account C-1002, not from customer account C-1001"),
    ),
    (
        "reseller ticket opened from another reseller's account",
        {"T-5002": {"account": "R-302"}},
        [CONTOSO],
        ("reseller ticket T-5002", "opened from account R-302, not from reseller account R-301"),
    ),
    *[
        (
            f"customer ticket names the look-alike {domain}",
            {"T-5001": {"body": CUSTOMER_BODY.format(domain=domain, reseller="Northwind IT")}},
            [],
            ("customer ticket T-5001", "does not name the customer domain"),
        )
        for domain in (
            "notacme.com",
            "acme.com.attacker.example",
            "mail.acme.com",
            "acme.co",
            "\u0430cme.com",  # Cyrillic а
            "acme-com.net",
        )
    ],
    *[
        (
            f"reseller ticket names the look-alike {domain}",
            {"T-5002": {"body": RESELLER_BODY.format(domain=domain)}},
            [],
            ("reseller ticket T-5002", "does not name the customer domain"),
        )
        for domain in ("acme.com.attacker.example", "xn--cme-8cd.com", "acme_com")
    ],
    (
        "customer ticket names a reseller that only shares a word",
        {"T-5001": {"body": CUSTOMER_BODY.format(domain="acme.com", reseller="Northwind Traders")}},
        [],
        ("customer ticket T-5001", "does not name the new reseller 'Northwind IT'"),
    ),
    (
        "reseller ticket closed as rejected (any case)",
        {"T-5002": {"status": "closed", "resolution": "REJECTED"}},
        [],
        ("reseller ticket T-5002", "is closed as rejected"),
    ),
    (
        "every problem of a ticket at once",
        {"T-5001": {"account": "R-302", "body": "We authorize the transfer."}},
        [CONTOSO],
        (
            "opened from account R-302",
            "does not name the customer domain",
            "does not name the new reseller",
        ),
    ),
]


@pytest.mark.parametrize(
    ("case", "tickets", "accounts", "expected"), FORGED, ids=[c[0] for c in FORGED]
)
def test_forged_ticket_means_no_platform_write(
    world: World,
    case: str,
    tickets: dict[str, dict[str, Any]],
    accounts: list[dict[str, Any]],
    expected: tuple[str, ...],
) -> None:
    _rebuild(world, tickets, accounts)
    _fails_without_writes(world, *expected)


def test_missing_reseller_ticket_means_no_platform_write(world: World) -> None:
    world.write("acme-com.yml", manifest(reseller_ticket="T-9998"))
    _fails_without_writes(world, "reseller ticket T-9998 does not exist")


# -- age: `max_age_days` of a playbook copy (the default playbook sets no maximum) ----------
def _playbook_with_max_age(world: World, days: int) -> Path:
    data = yaml.safe_load(default_playbook_path().read_text(encoding="utf-8"))
    verifies = [task for task in data["tasks"] if "ticket.verify" in task]
    assert len(verifies) == 2
    for task in verifies:
        task["ticket.verify"]["max_age_days"] = days
    path = world.root / "max-age.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_default_playbook_refuses_a_ticket_older_than_90_days(world: World) -> None:
    """A 2019 ticket no longer passes by default (issue 12): 90 days, set in the playbook's
    `defaults`, judged against the run's clock."""
    _rebuild(world, {"T-5001": {"created_at": "now-91d"}})
    _fails_without_writes(world, "customer ticket T-5001", "is older than 90 days")


def test_the_default_maximum_age_lets_a_89_day_old_ticket_pass(world: World) -> None:
    _rebuild(world, {"T-5001": {"created_at": "now-89d"}, "T-5002": {"created_at": "now-89d"}})
    result = _apply(world)
    assert result.status == "succeeded", result.message


def test_a_claimed_ticket_does_not_age_out_of_its_transfer(world: World) -> None:
    """Age is judged when the ticket is claimed: a transfer resumed after the ticket passed
    90 days goes on."""
    _rebuild(world, {"T-5001": {"created_at": "now-89d"}})
    [staged] = world.apply(tags=["authorize"]).transfers  # claims both tickets, on the state
    assert staged.status == "succeeded", staged.message
    _rebuild(world, {"T-5001": {"created_at": "now-200d"}})  # the platform: nothing written yet
    result = _apply(world)
    assert result.status == "succeeded", result.message


@pytest.mark.parametrize(("ticket", "role"), [("T-5001", "customer"), ("T-5002", "reseller")])
def test_ticket_older_than_the_maximum_age(world: World, ticket: str, role: str) -> None:
    _rebuild(world, {ticket: {"created_at": "2020-01-01T00:00:00Z"}})
    playbook = _playbook_with_max_age(world, 30)
    _fails_without_writes(
        world, f"{role} ticket {ticket}", "is older than 30 days", playbook=playbook
    )


def test_fresh_tickets_pass_the_maximum_age(world: World) -> None:
    """The control for the case above: the same playbook copy accepts today's tickets."""
    result = _apply(world, _playbook_with_max_age(world, 30))
    assert result.status == "succeeded", result.message


# -- a ticket authorizes one transfer only ---------------------------------------------------
def test_ticket_claimed_by_another_transfer_that_wrote_nothing(world: World) -> None:
    """Another transfer verified (and so claimed) the reseller ticket, then stopped before
    any platform write: this one must not go ahead on it."""
    state = open_state(f"sqlite:{world.state}")
    try:
        assert state.claim_ticket("T-5002", "other-transfer") == "other-transfer"
    finally:
        state.close()
    _fails_without_writes(world, "reseller ticket T-5002 is already used by other-transfer")


def test_one_ticket_in_two_manifests_of_one_run(world: World) -> None:
    world.write("globex-io.yml", manifest("globex-io", **{**GLOBEX, "reseller_ticket": "T-5002"}))
    with pytest.raises(ManifestError) as caught:
        world.apply()
    message = str(caught.value)
    assert "ticket T-5002 is also in" in message and "one transfer only" in message
    _assert_untouched(world)


# -- one ticket for both roles, one account on both sides ------------------------------------
def test_same_ticket_for_both_roles_is_refused_before_any_write(world: World) -> None:
    world.write("acme-com.yml", manifest(reseller_ticket="T-5001"))
    with pytest.raises(ManifestError) as caught:
        world.apply()
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.where == "spec.authorization.reseller_ticket"
    assert (diagnostic.line, diagnostic.col) == (14, 22)
    assert "T-5001 is also the customer ticket" in diagnostic.message
    _assert_untouched(world)


def test_same_account_on_both_sides_is_refused_before_any_write(world: World) -> None:
    """With one account as customer and reseller, both tickets can come 'from the right
    account'; the manifest layer refuses it before the tickets are even read."""
    _rebuild(world, {"T-5002": {"account": "C-1001"}})
    world.write("acme-com.yml", manifest(reseller="C-1001"))
    with pytest.raises(ManifestError) as caught:
        world.apply()
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.where == "spec.reseller.account"
    assert "C-1001 is also the customer's direct account" in diagnostic.message
    _assert_untouched(world)


# -- a withdrawal between the export and the cut-over stops it ---------------------------------
@pytest.mark.parametrize(
    ("ticket", "comment"),
    [
        ("T-5001", "We have changed our mind and withdraw the authorization."),
        ("T-5002", "Northwind IT here: we do not want to take acme.com after all."),
    ],
)
def test_a_withdrawal_after_the_export_stops_the_cut_over(
    world: World, ticket: str, comment: str
) -> None:
    staged = world.apply(tags=("data",)).transfers[0]
    assert staged.status == "succeeded", staged.message
    with SandboxPlatform(world.sandbox) as platform:
        platform.add_ticket_comment(ticket, comment, "control-panel:comment-1")
        writes = platform.write_calls()
    [result] = world.apply().transfers  # the tickets are read again first
    assert result.status == "failed"
    assert f"ticket {ticket} is refused" in result.message
    # ... and right before the move: a playbook without the ticket steps (as if the
    # withdrawal came during a long export) is stopped by the cut-over's own gate
    data = yaml.safe_load(default_playbook_path().read_text(encoding="utf-8"))
    data["tasks"] = [t for t in data["tasks"] if "ticket.verify" not in t]
    playbook = world.root / "no-ticket-steps.yml"
    playbook.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    settings = world.settings(playbook=str(playbook))
    [gated] = commands.apply(settings, commands.Selection([str(world.manifests)])).transfers
    assert gated.status == "failed"
    assert f"ticket {ticket} no longer authorizes the transfer" in gated.message
    assert world.writes() == writes  # nothing moved, nothing cancelled
    assert world.account("C-1001")["domains"] == ["acme.com", "acme.net"]
