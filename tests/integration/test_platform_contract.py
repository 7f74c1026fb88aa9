"""The sandbox server against its contract, schemas/platform-api.yaml, with schemathesis.

schemathesis generates requests for every operation of the contract and sends them to a live
`SandboxServer` (loopback, token set, a throwaway sandbox per module). Every reply must be a
documented status, with the documented content type and a body valid against its schema, and
never a 5xx. Positive cases use realistic values where the contract leaves the rule to the
platform (the fixture's accounts, tickets, domains and messages, DNS-valid new names, the
sandbox's services, fresh idempotency keys), so every operation reaches its success reply and
a schema-valid request refused with a 400 is a finding; negative cases must all be refused.
(That the adapter calls only documented endpoints is in tests/unit/test_http_documented.py.)
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis

from tests.unit.test_sandbox_fixture import make_sandbox
from transfer_runner.platforms.base import STORES
from transfer_runner.platforms.http.server import SandboxServer
from transfer_runner.platforms.sandbox.operations import SERVICES
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "schemas" / "platform-api.yaml"
TOKEN = "contract-token-5b7e01c9"

CONTRACT_FIXTURE = textwrap.dedent(
    """\
    seed: 5
    accounts:
      - {id: R-301, type: reseller, name: Northwind IT}
      - id: C-1001
        type: direct
        name: Acme Inc
        domains: [acme.com, acme.net]
        users: 40
        services: [spamstopshere, restoremail]
        billing: {price: "120.00", period_start: today-10d, period_end: today+20d}
        quarantine: {messages: 3, size: 1KiB}
        archive: {messages: 3, size: 1KiB}
      - id: C-1002
        type: direct
        name: Globex
        domains: [globex.io]
        archive: {messages: 2, size: 1KiB}
      - {id: C-1003, type: direct, name: Initech, status: cancelled, domains: [initech.example]}
      - {id: X-9001, type: direct, name: Umbrella, domains: [umbrella.example]}
      - {id: X-9002, type: direct, name: Hooli, domains: [hooli.example]}
    tickets:
      - {id: T-5001, account: C-1001, subject: Authorize transfer of account, body: "We, Acme"}
      - id: T-5002
        account: R-301
        subject: Authorize Customer Transfer
        body: We, Northwind IT, Authorize acme.com to be transferred to our account.
        status: closed
        resolution: rejected
        comments: [first]
    """
)

# What the fixture holds. Only the X- accounts (and C-1003, already cancelled) are offered to
# cancel_account, so the writes that follow still find active accounts.
KNOWN: dict[str, list[Any]] = {
    "account": ["C-1001", "C-1002", "C-1003", "R-301"],
    "expendable": ["X-9001", "X-9002", "C-1003"],
    "ticket": ["T-5001", "T-5002"],
    "domain": ["acme.com", "acme.net", "globex.io", "initech.example", "umbrella.example"],
    "message": [],  # {account_id, store, message_id} of stored messages, read at start
}


def _load(mode: str, max_examples: int, phases: Iterable[str], **checks: bool) -> Any:
    """The contract as a schemathesis schema generating `mode` data, authenticated with TOKEN;
    `checks` turns built-in checks on or off by name."""
    config = schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
            "checks": {name: {"enabled": on} for name, on in checks.items()},
            "generation": {
                "mode": mode,
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {p: {"enabled": p in phases} for p in ("examples", "coverage", "fuzzing")},
        }
    )
    return schemathesis.openapi.from_path(SPEC_PATH, config=config)


schemathesis.serializer.alias("message/rfc822", "text/plain")  # raw bytes, as they are
# The coverage phase builds boundary values without the hooks below (one-label domains, the
# same account twice, unknown services), which the contract's descriptions say are 400s. For
# the same reason the negative run, which has no hooks, does not judge its few valid cases.
positive = _load("positive", 25, phases=("examples", "fuzzing"))
negative = _load(
    "negative", 15, phases=("examples", "coverage", "fuzzing"), positive_data_acceptance=False
).exclude(operation_id="health")  # no input at all, so nothing to make invalid


# -- realistic positive data ----------------------------------------------------------------------
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"  # reserved for xn-- labels
)
NEW_DOMAINS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


def _known(kind: str) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: st.sampled_from(KNOWN[kind]))  # read when drawn


def _or_known(value: Any, kind: str) -> st.SearchStrategy[Any]:
    """The generated value or, as often, one the sandbox holds."""
    return st.one_of(st.just(value), _known(kind))


def _key(value: str, label: str) -> st.SearchStrategy[str]:
    """Mostly a fresh key for this operation; sometimes the generated one, which other
    requests may have used (a replay, or a 409 idempotency-key-reused)."""
    fresh = st.uuids().map(lambda u: f"{re.sub(r'[^A-Za-z0-9]+', '-', label)}{u}")
    return st.integers(0, 3).flatmap(lambda i: st.just(value) if i == 0 else fresh)


def _realistic(context: Any, values: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if not values:
        return st.just(values)
    label = context.operation.label if context.operation is not None else ""
    accounts = "expendable" if label.endswith("/cancel") else "account"
    choices = {
        "account_id": lambda v: _or_known(v, accounts),
        "parent": lambda v: _or_known(v, "account"),
        "ticket_id": lambda v: _or_known(v, "ticket"),
        "domain": lambda v: st.one_of(_known("domain"), NEW_DOMAINS),
        "services": lambda v: st.lists(st.sampled_from(SERVICES), min_size=1, unique=True),
        "Idempotency-Key": lambda v: _key(v, label),
    }
    realistic = st.fixed_dictionaries(
        {k: choices[k](v) if k in choices else st.just(v) for k, v in values.items()}
    )
    if "message_id" in values:  # a stored message, or made-up names for one
        return st.one_of(realistic, _known("message"))
    return realistic


@positive.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    return _realistic(context, path_parameters)


@positive.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    return _realistic(context, query)


@positive.hook
def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    return _realistic(context, headers)


@positive.hook
def flatmap_body(context: Any, body: Any) -> Any:
    if not isinstance(body, dict):
        return st.just(body)
    if {"from_account", "to_account"} <= body.keys():  # the same account twice is a 400
        pool = st.sampled_from([*KNOWN["account"], body["from_account"], body["to_account"]])
        pair = st.lists(pool, min_size=2, max_size=2, unique=True)
        return pair.map(lambda p: {**body, "from_account": p[0], "to_account": p[1]})
    return _realistic(context, body)


# -- the server under test ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """`sandbox serve` in-process over a fresh sandbox of CONTRACT_FIXTURE."""
    sandbox = make_sandbox(tmp_path_factory.mktemp("contract"), CONTRACT_FIXTURE)
    with SandboxPlatform(sandbox) as platform, SandboxServer(platform, token=TOKEN) as server:
        KNOWN["message"] = [
            {"account_id": account, "store": store, "message_id": m.id}
            for account in ("C-1001", "C-1002")
            for store in STORES
            for m in platform.list_messages(account, store).messages
        ]
        yield server


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # loopback only: no proxy from the environment
        yield s


@positive.parametrize()
def test_valid_requests_get_documented_replies(
    case: Any, served: SandboxServer, session: requests.Session
) -> None:
    case.call_and_validate(base_url=served.url, session=session)


@negative.parametrize()
def test_invalid_requests_are_refused_with_documented_problems(
    case: Any, served: SandboxServer, session: requests.Session
) -> None:
    case.call_and_validate(base_url=served.url, session=session)


# Requests the runs above met, or that probing the contract's bounds found, which once came
# back as 500s or were accepted against the contract: each is now a 400 naming the problem,
# except the last, an integer written 4.0, which JSON Schema (so the contract) accepts.
_ACCOUNT = {"parent": "R-301", "name": "N", "max_domains": 1, "services": ["encryption"]}
_COMMENTS = "/v1/tickets/T-5001/comments"
_FEE = '{"amount": "%s", "reason": "fee"}'


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "detail"),
    [
        pytest.param(_COMMENTS, '{"body": "\\udab0"}', None, 400, "not valid JSON", id="surrogate"),
        pytest.param(_COMMENTS, "[" * 100_000, None, 400, "not valid JSON", id="deep-nesting"),
        pytest.param(_COMMENTS, '{"body": "b"}', "k" * 513, 400, "longer than 512", id="long-key"),
        pytest.param(
            "/v1/accounts",
            json.dumps({**_ACCOUNT, "domain": "big.example", "users": 10**20}),
            None,
            400,
            "body.users: must be at most 2147483647",
            id="users-past-int64",
        ),
        pytest.param(
            "/v1/accounts/C-1001/charges",
            _FEE % ("9" * 29 + ".00"),
            None,
            400,
            "body.amount: expected a positive amount",
            id="amount-past-decimal-precision",
        ),
        pytest.param(
            "/v1/accounts/C-1001/credits",
            _FEE % "1e1",
            None,
            400,
            "body.amount: expected a positive amount",
            id="amount-in-exponent-form",
        ),
        pytest.param(
            "/v1/accounts",
            json.dumps({**_ACCOUNT, "domain": "float.example", "users": 4.0}),
            None,
            201,
            "",
            id="integer-written-as-float",
        ),
    ],
)
def test_edge_inputs_get_clean_replies(
    served: SandboxServer,
    session: requests.Session,
    path: str,
    body: str,
    key: str | None,
    status: int,
    detail: str,
) -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Idempotency-Key": key or f"edge-{uuid.uuid4()}",
    }
    reply = session.post(served.url + path, data=body.encode(), headers=headers, timeout=10)
    assert reply.status_code == status, reply.text
    if status >= 400:
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert detail in reply.json()["detail"]
