"""schemas/platform-api.yaml: a valid OpenAPI 3.1 document that is exactly the contract.

The endpoint set is checked against the contract's table, the server's route table and the
operationIds against the Protocol's methods; the component schemas against the base.py
dataclasses, and real wire forms against the component schemas.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from transfer_runner.clock import clock_from_env
from transfer_runner.platforms import base
from transfer_runner.platforms.http.routes import ROUTES
from transfer_runner.platforms.http.server import MAX_KEY_LENGTH
from transfer_runner.platforms.http.wire import DOMAIN_PATTERN, MAX_DOMAIN, PROBLEM_TYPES, to_wire

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "schemas" / "platform-api.yaml"

# The contract's table: (method, path) -> the Protocol method it maps.
CONTRACT: dict[tuple[str, str], str] = {
    ("GET", "/v1/tickets/{ticket_id}"): "get_ticket",
    ("POST", "/v1/tickets/{ticket_id}/comments"): "add_ticket_comment",
    ("GET", "/v1/accounts/{account_id}"): "get_account",
    ("GET", "/v1/accounts"): "find_account_by_domain",
    ("POST", "/v1/accounts"): "create_account",
    ("POST", "/v1/accounts/{account_id}/cancel"): "cancel_account",
    ("PUT", "/v1/accounts/{account_id}/domains/{domain}"): "attach_domain",
    ("DELETE", "/v1/accounts/{account_id}/domains/{domain}"): "detach_domain",
    ("POST", "/v1/domains/{domain}/move"): "move_domain",
    ("GET", "/v1/accounts/{account_id}/stores/{store}/messages"): "list_messages",
    ("GET", "/v1/accounts/{account_id}/stores/{store}/summary"): "count_messages",
    ("POST", "/v1/accounts/{account_id}/stores/{store}/fetch"): "fetch_messages",
    ("GET", "/v1/accounts/{account_id}/stores/{store}/messages/{message_id}"): "fetch_message",
    ("PUT", "/v1/accounts/{account_id}/stores/{store}/messages/{message_id}"): "import_message",
    ("GET", "/v1/accounts/{account_id}/subscription"): "get_subscription",
    ("POST", "/v1/accounts/{account_id}/subscription"): "create_subscription",
    ("GET", "/v1/accounts/{account_id}/subscription-quote"): "quote_subscription",
    ("GET", "/v1/credits"): "find_credit",
    ("GET", "/v1/charges"): "find_charge",
    ("POST", "/v1/accounts/{account_id}/credits"): "credit",
    ("POST", "/v1/accounts/{account_id}/charges"): "charge",
    ("GET", "/v1/health"): "health",
}
WRITES = {"POST", "PUT", "DELETE"}
READS_AS_POST = {"fetch_messages"}  # a read whose query is a body: no Idempotency-Key
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_validator_would_catch_a_broken_document(spec: dict[str, Any]) -> None:
    broken = copy.deepcopy(spec)
    broken["paths"]["/v1/accounts"]["get"]["parameters"][0]["in"] = "body"
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_the_packaged_copy_is_the_same_file() -> None:
    packaged = ROOT / "transfer_runner" / "data" / "schemas" / "platform-api.yaml"
    assert packaged.read_bytes() == SPEC_PATH.read_bytes()


def test_endpoints_are_exactly_the_contract(spec: dict[str, Any]) -> None:
    assert set(_operations(spec)) == set(CONTRACT)


def test_operation_ids_are_the_protocol_methods(spec: dict[str, Any]) -> None:
    ids = {key: op["operationId"] for key, op in _operations(spec).items()}
    assert ids == CONTRACT
    protocol = {n for n in vars(base.Platform) if not n.startswith("_")} - {"close"}
    assert set(CONTRACT.values()) - {"health"} == protocol


def test_the_server_routes_are_exactly_the_contract() -> None:
    assert {(r.method, r.path): r.name for r in ROUTES} == CONTRACT
    assert {r.name for r in ROUTES if r.write} == {
        name for (method, _), name in CONTRACT.items() if method in WRITES
    } - READS_AS_POST


def test_writes_require_the_idempotency_key(spec: dict[str, Any]) -> None:
    for (method, path), op in _operations(spec).items():
        params = [_resolve(spec, p) for p in op.get("parameters", [])]
        keys = [p for p in params if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        if method in WRITES and op["operationId"] not in READS_AS_POST:
            assert keys and keys[0]["required"] is True, (method, path)
            assert "409" in op["responses"], (method, path)
        else:
            assert not keys, (method, path)


def test_security_is_bearer_except_health(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearer": []}]
    for (method, path), op in _operations(spec).items():
        if path == "/v1/health":
            assert op["security"] == []
        else:
            assert "security" not in op, (method, path)
            assert "401" in op["responses"], (method, path)


def test_errors_are_problems_and_429_has_retry_after(spec: dict[str, Any]) -> None:
    for (method, path), op in _operations(spec).items():
        if path == "/v1/health":
            continue
        for status in ("400", "429", "500", "503"):
            assert status in op["responses"], (method, path, status)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                content = _resolve(spec, response)["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
        rate_limited = _resolve(spec, op["responses"]["429"])
        assert rate_limited["headers"]["Retry-After"]
    types = spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert set(types) == set(PROBLEM_TYPES.values())


@pytest.mark.parametrize(
    "cls",
    [
        base.Comment,
        base.Ticket,
        base.Account,
        base.NewAccount,
        base.Subscription,
        base.MessageInfo,
        base.MessagePage,
        base.Charge,
        base.Credit,
    ],
    ids=lambda c: c.__name__,
)
def test_component_schemas_match_the_dataclasses(spec: dict[str, Any], cls: type) -> None:
    schema = spec["components"]["schemas"][cls.__name__]
    fields = dataclasses.fields(cls)
    assert set(schema["properties"]) == {f.name for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert set(schema["required"]) == required
    assert schema["additionalProperties"] is False


# A billing period around the session's clock (tests/conftest.py pins it): no literal date
# that a calendar could pass.
TODAY = clock_from_env().now().date()
PERIOD = (TODAY - timedelta(days=10), TODAY + timedelta(days=20))

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 6, 0, 1, 5, tzinfo=UTC)
WIRE_SAMPLES: list[tuple[str, Any]] = [
    (
        "Ticket",
        base.Ticket("T", "C", "s", "b", "closed", "rejected", T0, (base.Comment("c", "x", T1),)),
    ),
    ("Account", base.Account("A-1", "resold", "n", "active", "R-301", ("a.com",), 1, 1, ("s",))),
    ("NewAccount", base.NewAccount("R-301", "n", "a.com", 1, 1, ("spamstopshere",))),
    (
        "Subscription",
        base.Subscription("C", Decimal("120.00"), *PERIOD),
    ),
    ("MessagePage", base.MessagePage((base.MessageInfo("m", 1, T0, "ab"),), "m")),
    ("Charge", base.Charge("CH-1", "A-1", Decimal("25.00"), "fee", "k", T1)),
    ("Credit", base.Credit("CR-1", "C", Decimal("52.00"), "pro-ration", "k", T0)),
]


@pytest.mark.parametrize(("name", "obj"), WIRE_SAMPLES, ids=[n for n, _ in WIRE_SAMPLES])
def test_wire_forms_validate_against_their_schemas(
    spec: dict[str, Any], name: str, obj: Any
) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(to_wire(obj))
    bad = {**to_wire(obj), "surprise": 1}
    assert list(validator.iter_errors(bad))


def test_a_float_amount_does_not_validate(spec: dict[str, Any]) -> None:
    schema = {"$ref": "#/components/schemas/PaymentRequest", "components": spec["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"amount": "25.00", "reason": "fee"})
    assert list(validator.iter_errors({"amount": 25.0, "reason": "fee"}))


# -- what the server accepts, exactly (issue 19) -------------------------------------------------
def test_domain_names_are_the_servers_pattern(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["DomainName"]
    assert (schema["pattern"], schema["maxLength"]) == (DOMAIN_PATTERN, MAX_DOMAIN)
    path = _resolve(spec, spec["components"]["parameters"]["Domain"])["schema"]
    assert path == {"$ref": "#/components/schemas/DomainName"}
    assert spec["components"]["schemas"]["NewAccount"]["properties"]["domain"] == path


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("acme.com", True),
        ("ACME.com.", True),  # any case, a trailing dot: the same name
        ("xn--bcher-kva.de", True),
        ("a.b.c.example", True),
        ("00", False),  # one label (what schemathesis once sent)
        ("1.2.3.4", False),  # the last label starts with a letter
        ("ab--c.com", False),  # `--` in places 3-4 is for xn-- labels only
        ("-a.com", False),
        ("a-.com", False),
        ("a..com", False),
        ("bücher.de", False),  # an IDN travels as its A-label
        ("a_b.com", False),
        ("a" * 64 + ".com", False),
        ("acme.com\n", False),
    ],
)
def test_the_domain_pattern(name: str, matches: bool) -> None:
    assert bool(re.fullmatch(DOMAIN_PATTERN, name)) is matches


def test_not_blank_is_what_the_server_strips(spec: dict[str, Any]) -> None:
    """`Text` and `IdempotencyKey` refuse exactly the strings Python's `str.strip` empties,
    which is how the sandbox and the server tell a blank name, comment, reason or key."""
    schemas = spec["components"]["schemas"]
    pattern = schemas["Text"]["pattern"]
    assert schemas["IdempotencyKey"]["pattern"] == pattern
    blank = re.compile(pattern)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(blank.search(char)) is not char.isspace(), hex(code)
    key = _resolve(spec, spec["components"]["parameters"]["IdempotencyKey"])["schema"]
    assert key == {"$ref": "#/components/schemas/IdempotencyKey"}
    assert schemas["IdempotencyKey"]["maxLength"] == MAX_KEY_LENGTH


def test_what_only_a_rule_refuses_is_documented_not_a_400(spec: dict[str, Any]) -> None:
    ops = {op["operationId"]: op for op in _operations(spec).values()}
    taking_a_domain = {"create_account", "attach_domain", "detach_domain", "move_domain"}
    assert {name for name, op in ops.items() if "422" in op["responses"]} == taking_a_domain
    assert "409" in ops["move_domain"]["responses"]
    assert "409" in spec["components"]["schemas"]["MoveRequest"]["description"]
    assert "422" in spec["components"]["schemas"]["DomainName"]["description"]


def test_raw_messages_are_binary_with_an_example(spec: dict[str, Any]) -> None:
    path = "/v1/accounts/{account_id}/stores/{store}/messages/{message_id}"
    body = spec["paths"][path]["put"]["requestBody"]["content"]["message/rfc822"]
    assert body["schema"]["format"] == "binary"
    assert body["example"].startswith("From: ")
    reply = spec["paths"][path]["get"]["responses"]["200"]["content"]["message/rfc822"]
    assert reply["schema"] == {"type": "string", "format": "binary"}


_EXPRESSION = re.compile(r"\$(response\.body#/[\w/]+|request\.(path\.\w+|body#/\w+))")


def _links(spec: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any], str]]:
    for key, op in _operations(spec).items():
        for status, response in op["responses"].items():
            for name, link in response.get("links", {}).items():
                yield key, link, f"{op['operationId']} {status} {name}"


def _expressions(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def test_links_lead_from_creations_to_their_uses(spec: dict[str, Any]) -> None:
    """Every link names an operation and only parameters it has, with a runtime expression the
    source can resolve; the workflows the stateful tests walk are there."""
    ops = {op["operationId"]: (key, op) for key, op in _operations(spec).items()}
    found = set()
    for (_, source_path), link, where in _links(spec):
        target_path, target = ops[link["operationId"]]
        params = [
            _resolve(spec, p)
            for p in [
                *spec["paths"][target_path[1]].get("parameters", []),
                *target.get("parameters", []),
            ]
        ]
        names = {p["name"] for p in params}
        assert set(link.get("parameters", {})) <= names, where
        if "requestBody" in link:
            assert "requestBody" in target, where
        for expression in _expressions([link.get("parameters"), link.get("requestBody")]):
            assert _EXPRESSION.fullmatch(expression), (where, expression)
            if expression.startswith("$request.path."):
                assert "{" + expression.removeprefix("$request.path.") + "}" in source_path
        found.add((where.split()[0], link["operationId"]))
    assert {
        ("create_account", "get_account"),
        ("create_account", "import_message"),
        ("get_account", "list_messages"),
        ("list_messages", "fetch_message"),
        ("get_ticket", "add_ticket_comment"),
        ("add_ticket_comment", "get_ticket"),
        ("credit", "find_credit"),
    } <= found
