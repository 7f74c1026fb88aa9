"""The sandbox server against its contract, schemas/platform-api.yaml, with schemathesis: the
examples, coverage and fuzzing phases (the stateful one is test_platform_stateful.py).

schemathesis generates requests for every operation of the contract and sends them to a live
`SandboxServer` (loopback, token set, a throwaway sandbox per module), with a fixed seed and a
bounded number of examples. Every reply must be a documented status, with the documented content
type and headers and a body valid against its schema, and never a 5xx (`contract_support.CHECKS`).
Positive cases must not be refused as malformed: the contract's schemas are exactly what the
server accepts, and a 400 to a request they allow is a finding (a rule they cannot express is a
409, or the documented 422 for a domain that is not IDNA). Half the positive data is what the
sandbox holds (`contract_support.realistic`), so operations reach their success replies.
Negative cases must all be refused. (That the adapter calls only documented endpoints is in
tests/unit/test_http_documented.py.)
"""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from tests.integration.contract_support import (
    ACCEPTED,
    DOMAIN_OPERATIONS,
    SEED,
    TOKEN,
    contract,
    realistic,
    served,
)
from transfer_runner.platforms.http.server import SandboxServer

pytestmark = [pytest.mark.integration]

PHASES = ("examples", "coverage", "fuzzing")
positive = realistic(contract("positive", 25, PHASES))
negative = contract("negative", 15, PHASES).exclude(
    operation_id="health"  # no input at all, so nothing to make invalid
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with served(tmp_path_factory.mktemp("contract")) as running:
        yield running


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # loopback only: no proxy from the environment
        yield s


@positive.parametrize()
def test_valid_requests_get_documented_replies(
    case: Any, server: SandboxServer, session: requests.Session
) -> None:
    case.call_and_validate(base_url=server.url, session=session)


@negative.parametrize()
def test_invalid_requests_are_refused_with_documented_problems(
    case: Any, server: SandboxServer, session: requests.Session
) -> None:
    case.call_and_validate(base_url=server.url, session=session)


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
    server: SandboxServer,
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
    reply = session.post(server.url + path, data=body.encode(), headers=headers, timeout=10)
    assert reply.status_code == status, reply.text
    if status >= 400:
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert detail in reply.json()["detail"]


# What `schemathesis run` once found (issue 19): schema-valid requests the server refused with a
# 400. The schema now refuses the first two, so they stay 400s; the rules it cannot express are a
# 409 (a move from an account to itself) or the documented 422 (an `xn--` label that is not IDNA).
_MOVE_TO_ITSELF = json.dumps({"from_account": "C-1001", "to_account": "C-1001"})
_QUOTE = "/v1/accounts/R-301/subscription-quote?users=1&domains=1&services=encryption&start="


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "problem", "detail"),
    [
        ("PUT", "/v1/accounts/R-301/domains/00", None, 400, "bad-request", "not a domain name"),
        ("DELETE", "/v1/accounts/C-1001/domains/00", None, 400, "bad-request", "not a domain"),
        ("PUT", "/v1/accounts/R-301/domains/b%C3%BCcher.de", None, 400, "bad-request", "xn--bcher"),
        ("PUT", "/v1/accounts/R-301/domains/xn--0.example", None, 422, "unprocessable", "punycode"),
        ("POST", "/v1/domains/acme.com/move", _MOVE_TO_ITSELF, 409, "conflict", "to itself"),
        ("GET", _QUOTE + "20261201", None, 400, "bad-request", "a date such as"),
        ("PUT", "/v1/accounts/R-301/domains/Any-Case.Example.", None, 204, None, ""),
    ],
    ids=[
        "one-label",
        "one-label-detach",
        "u-label",
        "bad-a-label",
        "move-to-itself",
        "date-form",
        "case-and-dot",
    ],
)
def test_what_the_schema_cannot_say_is_not_a_400(
    server: SandboxServer,
    session: requests.Session,
    method: str,
    path: str,
    body: str | None,
    status: int,
    problem: str | None,
    detail: str,
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if method != "GET":
        headers["Idempotency-Key"] = f"issue-19-{uuid.uuid4()}"
    reply = session.request(
        method, server.url + path, data=body and body.encode(), headers=headers, timeout=10
    )
    assert reply.status_code == status, reply.text
    if problem is not None:
        assert reply.json()["type"] == f"/problems/{problem}"
        assert detail in reply.json()["detail"]
    else:
        found = session.get(
            server.url + "/v1/accounts?domain=any-case.example", headers=headers, timeout=10
        )
        assert [a["id"] for a in found.json()["accounts"]] == ["R-301"]
        assert "any-case.example" in found.json()["accounts"][0]["domains"]


def test_the_by_hand_configuration_is_the_tests() -> None:
    """tests/integration/schemathesis.toml (for `schemathesis run`) loads, with the tests' seed,
    the message/rfc822 serializer and the same allowance of the contract's 422."""
    path = Path(__file__).with_name("schemathesis.toml")
    schemathesis.Config.from_path(path)
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    assert (config["seed"], config["hooks"]) == (SEED, "tests.integration.contract_support")
    allowed = config["operations"][0]
    assert allowed["include-operation-id"] == list(DOMAIN_OPERATIONS)
    statuses = allowed["checks"]["positive_data_acceptance"]["expected-statuses"]
    assert sorted(statuses) == sorted([*ACCEPTED, "422"])
