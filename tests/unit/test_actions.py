"""`Action`: a write as data; `within` is how `apply plan.json` compares it with the plan."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transfer_runner.engine.planned import LIVE_KINDS, unplanned
from transfer_runner.modules.base import Action, Check, only_action

FEE = Action("billing.charge", "R-301", "charge 25.00", "transfer-fee:acme-com",
             {"amount": "25.00"})  # fmt: skip
MOVE = Action("domain.move", "acme.com", "move acme.com", "domain-move:acme-com:acme.com",
              {"from": "C-1001", "to": "A-1"})  # fmt: skip
PLANNED_MOVE = Action("domain.move", "acme.com", "move acme.com to the new account",
                      "domain-move:acme-com:acme.com", {"from": "C-1001", "to": None})  # fmt: skip


def test_an_action_is_within_itself_and_what_the_plan_could_not_know() -> None:
    assert FEE.within(FEE)
    assert MOVE.within(PLANNED_MOVE)  # the new account's id: known after apply
    assert not PLANNED_MOVE.within(MOVE)  # the other way round is not the same write


@pytest.mark.parametrize(
    "changed",
    [
        Action("billing.credit", "R-301", "x", "transfer-fee:acme-com", {"amount": "25.00"}),
        Action("billing.charge", "R-302", "x", "transfer-fee:acme-com", {"amount": "25.00"}),
        Action("billing.charge", "R-301", "x", "transfer-fee:other", {"amount": "25.00"}),
        Action("billing.charge", "R-301", "x", "transfer-fee:acme-com", {"amount": "25.01"}),
        Action("billing.charge", "R-301", "x", "transfer-fee:acme-com", {}),
        Action(
            "billing.charge",
            "R-301",
            "x",
            "transfer-fee:acme-com",
            {"amount": "25.00"},
            per_attempt=True,
        ),  # fmt: skip
    ],
    ids=["kind", "target", "key", "amount", "amount missing", "per attempt"],
)
def test_any_known_difference_is_outside_the_plan(changed: Action) -> None:
    assert not changed.within(FEE)
    assert unplanned([changed], [FEE]) == [changed]


def test_the_text_is_for_people_and_does_not_count() -> None:
    assert Action(FEE.kind, FEE.target, "charge the fee", FEE.key, FEE.params).within(FEE)


def test_copies_of_the_mail_follow_the_mailbox() -> None:
    export = Action("export.pass", "archive", "export pass 3", params={"account": "C-1001"})
    assert unplanned([export], []) == []
    assert "export.pass" in LIVE_KINDS and "billing.charge" not in LIVE_KINDS
    assert unplanned([FEE, export], []) == [FEE]


jsonish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@given(
    kind=st.text(min_size=1, max_size=12),
    target=st.none() | st.text(max_size=12),
    key=st.none() | st.text(max_size=12),
    params=st.dictionaries(st.text(max_size=6), jsonish, max_size=4),
    per_attempt=st.booleans(),
)
def test_to_dict_and_back(kind, target, key, params, per_attempt) -> None:
    action = Action(kind, target, "text", key, params, per_attempt)
    again = Action.from_dict(action.to_dict())
    assert again == action and again.within(action)


@pytest.mark.parametrize(
    "doc",
    [
        {"text": "t", "params": {}},
        {"kind": "k", "params": {}},
        {"kind": "k", "text": "t", "target": 3, "params": {}},
        {"kind": "k", "text": "t", "key": ["x"], "params": {}},
        {"kind": "k", "text": "t", "params": "amount=1"},
    ],
)
def test_from_dict_refuses_what_is_not_an_action(doc) -> None:
    with pytest.raises(ValueError):
        Action.from_dict(doc)


def test_only_action_finds_the_one_of_its_kind() -> None:
    assert only_action(Check(actions=(FEE, MOVE)), "billing.charge") is FEE
    with pytest.raises(ValueError, match="expected one billing.credit action, got 0"):
        only_action(Check(actions=(FEE,)), "billing.credit")
