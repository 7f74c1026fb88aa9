"""Schema layer: errors located at file:line:col with readable messages; bundled resources."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from transfer_runner.errors import ConfigError
from transfer_runner.manifest.loader import parse_yaml_bytes
from transfer_runner.manifest.schema import SCHEMA_NAME, schema_diagnostics
from transfer_runner.resources import load_json_schema, resource_path

VALID = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata:
  name: acme-com
  labels: {wave: "2026-12"}
spec:
  customer:
    account: C-1001
    domains: [acme.com, acme.net]
  reseller:
    account: R-301
    name: Northwind IT
  subscription:
    users: 40
    domains: 2
  services: [spamstopshere, hosted-email, restoremail, encryption]
  temporary_domain: gdi.acme.com
  authorization:
    customer_ticket: T-5001
    reseller_ticket: T-5002
  data:
    quarantine: migrate
    archive: migrate
  billing:
    transfer_fee: "25.00"
    prorate: true
"""

BRIEF_EXAMPLE = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata:
  name: acme-com
  labels: {wave: "2026-12"}
spec:
  customer: {account: C-1001, domains: [acme.com, acme.net]}
  reseller: {account: R-301, name: Northwind IT}
  subscription: {users: 40, domains: 2}
  services: [spamstopshere, hosted-email, restoremail, encryption]
  temporary_domain: gdi.acme.com
  authorization: {customer_ticket: T-5001, reseller_ticket: T-5002}
  data: {quarantine: migrate, archive: migrate}
  billing: {transfer_fee: "25.00", prorate: true}
"""

MINIMAL = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata: {name: a}
spec:
  customer: {account: C-1, domains: [a.com]}
  reseller: {account: R-1, name: R}
  subscription: {users: 1, domains: 1}
  services: [encryption]
  authorization: {customer_ticket: T-1, reseller_ticket: T-2}
"""


def _diagnose(text: str) -> list[str]:
    doc, positions = parse_yaml_bytes(text.encode(), "transfers/acme.yml")
    return [str(d) for d in schema_diagnostics(doc, positions, "transfers/acme.yml")]


def _edit(*replacements: tuple[str, str]) -> str:
    text = VALID
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("text", [VALID, BRIEF_EXAMPLE, MINIMAL])
def test_valid_manifests_have_no_schema_errors(text: str) -> None:
    assert _diagnose(text) == []


F = "transfers/acme.yml"
CASES: list[tuple[str, tuple[tuple[str, str], ...], list[str]]] = [
    (
        "minimum",
        (("users: 40", "users: -3"),),
        [f"{F}:14:12: spec.subscription.users: -3 is less than the minimum of 1"],
    ),
    (
        "maximum (the platform's integers overflow past it)",
        (("users: 40", "users: 100000000000000000000"),),
        [
            f"{F}:14:12: spec.subscription.users: 100000000000000000000 is greater than "
            "the maximum of 10000000"
        ],
    ),
    (
        "unknown key with a suggestion",
        (("  temporary_domain:", "  tempoary_domain:"),),
        [
            f"{F}:17:3: spec.tempoary_domain: unknown key 'tempoary_domain'; did you mean "
            "'temporary_domain'?"
        ],
    ),
    (
        "unknown key without a close match",
        (("    prorate: true\n", "    prorate: true\n    discount: 5\n"),),
        [
            f"{F}:27:5: spec.billing.discount: unknown key 'discount'; expected one of: "
            "prorate, transfer_fee"
        ],
    ),
    (
        "missing required key at the parent",
        (("  reseller:\n    account: R-301\n    name: Northwind IT\n", ""),),
        [f"{F}:6:1: spec: missing required key 'reseller'"],
    ),
    (
        "missing required top-level keys",
        (("kind: Transfer\n", ""),),
        [f"{F}:1:1: missing required key 'kind'"],
    ),
    (
        "name pattern",
        (("name: acme-com", "name: Acme_Com"),),
        [
            f"{F}:4:9: metadata.name: 'Acme_Com' must be a lowercase DNS label: a-z, 0-9 and "
            "'-', starting and ending with a letter or digit"
        ],
    ),
    (
        "name too long",
        (("name: acme-com", "name: " + "a" * 64),),
        [f"{F}:4:9: metadata.name: '{'a' * 64}' is longer than 63 characters"],
    ),
    (
        "apiVersion const",
        (("transfer-runner/v1", "transfer-runner/v2"),),
        [f"{F}:1:13: apiVersion: must be 'transfer-runner/v1', not 'transfer-runner/v2'"],
    ),
    (
        "services enum",
        (("[spamstopshere, hosted-email,", "[spamstopshere, spam,"),),
        [
            f"{F}:16:29: spec.services[1]: 'spam' is not one of: spamstopshere, hosted-email, "
            "restoremail, encryption"
        ],
    ),
    (
        "services repeated",
        (("restoremail, encryption]", "restoremail, spamstopshere]"),),
        [f"{F}:16:56: spec.services[3]: 'spamstopshere' is repeated (first at [0])"],
    ),
    (
        "empty domains",
        (("domains: [acme.com, acme.net]", "domains: []"),),
        [f"{F}:9:14: spec.customer.domains: must not be empty"],
    ),
    (
        "unquoted fee",
        (('transfer_fee: "25.00"', "transfer_fee: 25.00"),),
        [
            f"{F}:25:19: spec.billing.transfer_fee: must be a string, not the number 25.0 "
            "(put the value in quotes)"
        ],
    ),
    (
        "fee pattern",
        (('transfer_fee: "25.00"', 'transfer_fee: "25.001"'),),
        [
            f"{F}:25:19: spec.billing.transfer_fee: '25.001' must be an amount such as \"25.00\": "
            "up to 6 digits, then up to 2 decimals"
        ],
    ),
    (
        "YAML 1.1 yes is a string, not a boolean",
        (("prorate: true", "prorate: yes"),),
        [f"{F}:26:14: spec.billing.prorate: must be true or false, not the string 'yes'"],
    ),
    (
        "octal-looking number is a string",
        (("users: 40", "users: 0755"),),
        [f"{F}:14:12: spec.subscription.users: must be an integer, not the string '0755'"],
    ),
    (
        "data mode enum",
        (("quarantine: migrate", "quarantine: keep"),),
        [f"{F}:22:17: spec.data.quarantine: 'keep' is not one of: migrate, export, skip"],
    ),
    (
        "label key syntax, at the key",
        (('labels: {wave: "2026-12"}', 'labels: {"bad key": x}'),),
        [
            f"{F}:5:12: metadata.labels['bad key']: key 'bad key' must be a label key: an "
            "optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        ],
    ),
    (
        "label value must be a string",
        (('labels: {wave: "2026-12"}', "labels: {wave: 12}"),),
        [
            f"{F}:5:18: metadata.labels.wave: must be a string, not the number 12 "
            "(put the value in quotes)"
        ],
    ),
    (
        "ticket id pattern",
        (("customer_ticket: T-5001", "customer_ticket: ''"),),
        [
            f"{F}:19:22: spec.authorization.customer_ticket: '' must be an id of letters, "
            "digits, '.', '_' and '-' (at most 64, starting with a letter or digit)"
        ],
    ),
    (
        "several errors, sorted by position",
        (("users: 40", "users: 0"), ("kind: Transfer", "kind: Transfers")),
        [
            f"{F}:2:7: kind: must be 'Transfer', not 'Transfers'",
            f"{F}:14:12: spec.subscription.users: 0 is less than the minimum of 1",
        ],
    ),
]


@pytest.mark.parametrize(("case", "edits", "expected"), CASES, ids=[c[0] for c in CASES])
def test_schema_errors_are_located(
    case: str, edits: tuple[tuple[str, str], ...], expected: list[str]
) -> None:
    assert _diagnose(_edit(*edits)) == expected


def test_secret_keys_are_left_to_the_semantic_layer() -> None:
    text = _edit(("    prorate: true\n", "    prorate: true\n    api_key: abc\n    tip: 1\n"))
    assert _diagnose(text) == [
        f"{F}:28:5: spec.billing.tip: unknown key 'tip'; expected one of: prorate, transfer_fee"
    ]


def _patterns(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if "pattern" in node else []
        return own + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_schema_is_valid_2020_12_and_documents_every_pattern() -> None:
    schema = load_json_schema(SCHEMA_NAME)
    Draft202012Validator.check_schema(schema)
    patterns = _patterns(schema)
    assert len(patterns) >= 5
    assert all(p.get("x-pattern-message") for p in patterns)


def test_resource_path_prefers_the_source_tree() -> None:
    path = resource_path("schemas", SCHEMA_NAME)
    assert path.is_file() and path.parent.name == "schemas"
    assert load_json_schema(SCHEMA_NAME) is load_json_schema(SCHEMA_NAME)


@pytest.mark.parametrize(
    ("kind", "name", "error"),
    [
        ("schemas", "missing.schema.json", ConfigError),
        ("schemas", "../setup.cfg", ValueError),
        ("..", "setup.cfg", ValueError),
    ],
)
def test_resource_path_refuses(kind: str, name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        resource_path(kind, name)
