"""Semantic layer: rules within one manifest and across all manifests, each located."""

from __future__ import annotations

import pytest

from transfer_runner.manifest.loader import LoadedManifest, parse_yaml_bytes
from transfer_runner.manifest.semantic import (
    cross_diagnostics,
    default_temporary_domain,
    looks_like_secret,
    manifest_diagnostics,
    temporary_domain,
)

TEMPLATE = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata:
  name: {name}
  labels: {{wave: w1}}
spec:
  customer:
    account: {account}
    domains: {domains}
  reseller: {{account: R-301, name: Northwind IT}}
  subscription: {{users: 10, domains: {count}}}
  services: [spamstopshere]
{temporary}  authorization:
    customer_ticket: {customer_ticket}
    reseller_ticket: {reseller_ticket}
"""


def manifest(
    name: str = "acme-com",
    account: str = "C-1001",
    domains: str = "[acme.com, acme.net]",
    count: int = 2,
    temporary: str | None = "gdi.acme.com",
    customer_ticket: str = "T-5001",
    reseller_ticket: str = "T-5002",
) -> str:
    return TEMPLATE.format(
        name=name,
        account=account,
        domains=domains,
        count=count,
        temporary=f"  temporary_domain: {temporary}\n" if temporary is not None else "",
        customer_ticket=customer_ticket,
        reseller_ticket=reseller_ticket,
    )


def _loaded(text: str, display: str) -> LoadedManifest:
    doc, positions = parse_yaml_bytes(text.encode(), display)
    return LoadedManifest(display, "0" * 64, doc, positions)


def _single(text: str) -> list[str]:
    m = _loaded(text, "a.yml")
    return [str(d) for d in manifest_diagnostics(m.document, m.positions, m.display)]


SINGLE: list[tuple[str, str, list[str]]] = [
    ("valid", manifest(), []),
    ("valid without temporary domain", manifest(temporary=None), []),
    ("valid IDN", manifest(domains="[bücher.de]", count=1, temporary="gdi.bücher.de"), []),
    (
        "invalid domain, at its item",
        manifest(domains="[acme.com, acme_mail.com]"),
        [
            "a.yml:9:25: spec.customer.domains[1]: 'acme_mail.com' is not a valid domain "
            "name: label 'acme_mail' contains '_': only letters, digits and hyphens are allowed"
        ],
    ),
    (
        "homograph",
        manifest(domains="[acme.com, аcme.net]"),
        [
            "a.yml:9:25: spec.customer.domains[1]: 'аcme.net' is not a valid domain name: "
            "label 'аcme' mixes scripts (Cyrillic, Latin): a look-alike (homograph) of "
            "another name"
        ],
    ),
    (
        "same domain in two spellings",
        manifest(domains="[acme.com, ACME.com.]"),
        ["a.yml:9:25: spec.customer.domains[1]: 'ACME.com.' is the same domain as [0] (acme.com)"],
    ),
    (
        "temporary domain outside the customer's domains",
        manifest(temporary="gdi.other.com"),
        [
            "a.yml:13:21: spec.temporary_domain: temporary domain gdi.other.com must be a "
            "subdomain of a customer domain (acme.com, acme.net)"
        ],
    ),
    (
        "temporary domain is a customer domain",
        manifest(temporary="ACME.net"),
        [
            "a.yml:13:21: spec.temporary_domain: temporary domain acme.net is a customer "
            "domain: two accounts never hold the same domain; use a subdomain such as "
            "gdi.acme.net"
        ],
    ),
    (
        "temporary domain invalid",
        manifest(temporary="gdi..acme.com"),
        [
            "a.yml:13:21: spec.temporary_domain: temporary domain 'gdi..acme.com' is not a "
            "valid domain name: has an empty label (a leading dot or two dots in a row)"
        ],
    ),
    (
        "default temporary domain too long",
        manifest(
            domains="[" + ".".join(["a" * 63] * 3) + "." + "b" * 59 + "]", count=1, temporary=None
        ),
        [
            "a.yml:9:15: spec.customer.domains[0]: the default temporary domain 'gdi."
            + ".".join(["a" * 63] * 3)
            + "."
            + "b" * 59
            + "' is not a valid domain name: is 255 characters long as an A-label; "
            "at most 253; set spec.temporary_domain"
        ],
    ),
    (
        "default temporary domain taken by a customer domain",
        manifest(domains="[acme.com, gdi.acme.com]", temporary=None),
        [
            "a.yml:9:15: spec.customer.domains[0]: the default temporary domain gdi.acme.com "
            "is a customer domain: two accounts never hold the same domain; use a subdomain "
            "such as gdi.gdi.acme.com"
        ],
    ),
    (
        "fewer subscription domains than customer domains",
        manifest(domains="[acme.com, acme.net, acme.org]", count=2),
        [
            "a.yml:11:38: spec.subscription.domains: 2 is less than the number of customer "
            "domains (3): the new account must hold them all"
        ],
    ),
    (
        "one ticket for both roles",
        manifest(reseller_ticket="T-5001"),
        [
            "a.yml:16:22: spec.authorization.reseller_ticket: T-5001 is also the customer "
            "ticket: the customer and the reseller each authorize on their own ticket"
        ],
    ),
    (
        "a secret in the manifest, at its key",
        manifest().replace("  reseller: {", "  password: hunter2\n  reseller: {"),
        [
            "a.yml:10:3: spec.password: key 'password' looks like a secret: secrets never go "
            "in a manifest (it is committed to git); the runner takes credentials from its "
            "environment"
        ],
    ),
    (
        "a secret-looking label key",
        manifest().replace("{wave: w1}", "{wave: w1, API-Token: x}"),
        [
            "a.yml:5:22: metadata.labels.API-Token: key 'API-Token' looks like a secret: "
            "secrets never go in a manifest (it is committed to git); the runner takes "
            "credentials from its environment"
        ],
    ),
    (
        "a multi-line value",
        manifest().replace("name: Northwind IT}", 'name: "Northwind\\nIT"}'),
        [
            "a.yml:10:36: spec.reseller.name: contains a control character (U+000A); use one "
            "line of text"
        ],
    ),
    (
        "values of the wrong type are the schema's to report",
        manifest(domains="[acme.com, 42]", count=1).replace("T-5001", "[x]"),
        [],
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), SINGLE, ids=[c[0] for c in SINGLE])
def test_single_manifest_rules(case: str, text: str, expected: list[str]) -> None:
    assert _single(text) == expected


ACME = manifest()
GLOBEX = manifest(
    "globex-io",
    "C-1002",
    "[globex.io]",
    1,
    None,
    "T-5003",
    "T-5004",
)

CROSS: list[tuple[str, list[str], list[str]]] = [
    ("distinct transfers", [ACME, GLOBEX], []),
    (
        "same name",
        [ACME, GLOBEX.replace("name: globex-io", "name: acme-com")],
        ["f1.yml:4:9: metadata.name: name 'acme-com' is also used by f0.yml"],
    ),
    (
        "customer domain in two transfers (after normalization)",
        [ACME, GLOBEX.replace("[globex.io]", "[globex.io, ACME.NET]").replace("1}}", "2}}")],
        [
            "f1.yml:9:26: spec.customer.domains[1]: domain acme.net is also in f0.yml "
            "(spec.customer.domains[1]); a domain belongs to one transfer only"
        ],
    ),
    (
        "explicit temporary domain is another's default",
        [
            GLOBEX,
            ACME.replace("domains: [acme.com, acme.net]", "domains: [acme.com, globex.io]"),
        ],
        [
            "f1.yml:9:25: spec.customer.domains[1]: domain globex.io is also in f0.yml "
            "(spec.customer.domains[0]); a domain belongs to one transfer only"
        ],
    ),
    (
        "a customer domain equal to another transfer's default temporary domain",
        [GLOBEX, ACME.replace("[acme.com, acme.net]", "[acme.com, gdi.globex.io]")],
        [
            "f1.yml:9:25: spec.customer.domains[1]: domain gdi.globex.io is also in f0.yml "
            "(spec.temporary_domain); a domain belongs to one transfer only"
        ],
    ),
    (
        "the same temporary domain",
        [
            manifest(temporary="gdi.acme.com"),
            manifest("other", "C-2", "[x.com, acme.com]", 2, "gdi.acme.com", "T-1", "T-2"),
        ],
        [
            "f1.yml:9:22: spec.customer.domains[1]: domain acme.com is also in f0.yml "
            "(spec.customer.domains[0]); a domain belongs to one transfer only",
            "f1.yml:13:21: spec.temporary_domain: domain gdi.acme.com is also in f0.yml "
            "(spec.temporary_domain); a domain belongs to one transfer only",
        ],
    ),
    (
        "a ticket reused in another role",
        [ACME, GLOBEX.replace("reseller_ticket: T-5004", "reseller_ticket: T-5001")],
        [
            "f1.yml:15:22: spec.authorization.reseller_ticket: ticket T-5001 is also in "
            "f0.yml (spec.authorization.customer_ticket); a ticket belongs to one transfer "
            "only"
        ],
    ),
    (
        "reports name the first holder, in the order given",
        [ACME, GLOBEX, GLOBEX.replace("name: globex-io", "name: third")],
        [
            "f2.yml:9:15: spec.customer.domains[0]: domain globex.io is also in f1.yml "
            "(spec.customer.domains[0]); a domain belongs to one transfer only",
            "f2.yml:9:15: spec.temporary_domain: domain gdi.globex.io is also in f1.yml "
            "(spec.temporary_domain); a domain belongs to one transfer only",
            "f2.yml:14:22: spec.authorization.customer_ticket: ticket T-5003 is also in "
            "f1.yml (spec.authorization.customer_ticket); a ticket belongs to one transfer "
            "only",
            "f2.yml:15:22: spec.authorization.reseller_ticket: ticket T-5004 is also in "
            "f1.yml (spec.authorization.reseller_ticket); a ticket belongs to one transfer "
            "only",
        ],
    ),
]


@pytest.mark.parametrize(("case", "texts", "expected"), CROSS, ids=[c[0] for c in CROSS])
def test_cross_manifest_rules(case: str, texts: list[str], expected: list[str]) -> None:
    loaded = [_loaded(text, f"f{i}.yml") for i, text in enumerate(texts)]
    assert [str(d) for d in cross_diagnostics(loaded)] == expected


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("Passwd", True),
        ("secret", True),
        ("client-secret", True),
        ("token", True),
        ("api_key", True),
        ("apiKey", True),
        ("AWS-Secret-Access-Key", True),
        ("access_key", True),
        ("private.key", True),
        ("credentials", True),
        ("customer_ticket", False),
        ("account", False),
        ("keyword", False),
        ("wave", False),
    ],
)
def test_looks_like_secret(key: str, secret: bool) -> None:
    assert looks_like_secret(key) is secret


def test_temporary_domain_default_and_normalization() -> None:
    assert default_temporary_domain("acme.com") == "gdi.acme.com"
    assert temporary_domain(_loaded(manifest(temporary=None), "a.yml").document) == ("gdi.acme.com")
    idn = manifest(domains="[Bücher.de]", count=1, temporary="GDI.bücher.de")
    assert temporary_domain(_loaded(idn, "a.yml").document) == "gdi.xn--bcher-kva.de"
