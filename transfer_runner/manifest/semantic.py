"""Semantic layer: the rules a schema cannot express, in one manifest and across all of them.
Checks read documents defensively (a node of the wrong type is the schema layer's to report),
so one run reports every problem of every file at once."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from transfer_runner.domains import normalize_domain
from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.loader import LoadedManifest, NodePath, PositionMap, format_path
from transfer_runner.shown import clipped, shown, shown_list

__all__ = [
    "TEMPORARY_PREFIX",
    "looks_like_secret",
    "unsafe_character",
    "default_temporary_domain",
    "customer_domains",
    "temporary_domain",
    "manifest_diagnostics",
    "cross_diagnostics",
]

TEMPORARY_PREFIX = "gdi."

_SECRET_WORDS = re.compile(
    r"password|passwd|passphrase|secret|token|apikey|accesskey|privatekey|credential"
)
# Characters that have no place in a one-line value: controls, lone surrogates (which only a
# `\ud800` escape can make, and which nothing can encode), line and paragraph separators, and
# the bidirectional embeddings, overrides and isolates that make text display as something
# else ("Trojan Source", CVE-2021-42574).
# One regex for all of them (categories Cc, Cs, Zl and Zp are exactly these ranges): a
# megabyte value is scanned at C speed.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KINDS = {
    "Cc": "a control character",
    "Cs": "a lone surrogate",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_CUSTOMER_DOMAINS: NodePath = ("spec", "customer", "domains")
_TEMPORARY: NodePath = ("spec", "temporary_domain")
_TICKETS: tuple[NodePath, ...] = (
    ("spec", "authorization", "customer_ticket"),
    ("spec", "authorization", "reseller_ticket"),
)


@dataclass(frozen=True)
class _Claim:
    """A value that only one transfer may hold (a domain or a ticket), and where it is."""

    value: str
    path: NodePath  # where to point (the default temporary domain points at domains[0])
    where: NodePath  # what the rule is about


@functools.lru_cache(maxsize=1 << 14)  # every manifest has the same few keys
def looks_like_secret(key: str) -> bool:
    """True for keys such as `password`, `api_key`, `AWS-Secret-Access-Key`, `token`."""
    squashed = re.sub(r"[\s_.-]+", "", key.lower())
    return bool(_SECRET_WORDS.search(squashed))


def default_temporary_domain(first_domain: str) -> str:
    """The temporary domain used when a manifest names none: `gdi.<first customer domain>`."""
    return TEMPORARY_PREFIX + first_domain


def customer_domains(doc: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, A-label) of each valid customer domain; invalid ones are left out."""
    out: list[tuple[int, str]] = []
    for index, raw in enumerate(_list(_get(doc, _CUSTOMER_DOMAINS))):
        try:
            out.append((index, normalize_domain(raw)))
        except ValueError:
            continue
    return out


def temporary_domain(doc: dict[str, Any]) -> str | None:
    """The A-label temporary domain, given or defaulted; None when it cannot be known."""
    claim = _temporary_claim(doc)
    return claim.value if claim else None


def unsafe_character(text: str) -> str | None:
    """What makes `text` unsafe to show as one line (e.g. "a control character (U+0000)"),
    or None."""
    found = _UNSAFE.search(text)
    if found is None:
        return None
    ch = found.group()
    kind = _UNSAFE_KINDS.get(unicodedata.category(ch))
    if kind is None:
        return (
            f"a bidirectional control character (U+{ord(ch):04X}), which makes text "
            "display as something other than what it is"
        )
    return f"{kind} (U+{ord(ch):04X})"


def manifest_diagnostics(
    doc: dict[str, Any], positions: PositionMap, display: str
) -> list[Diagnostic]:
    """Rules of one manifest: secrets, text, domains, temporary domain, counts, accounts,
    tickets."""
    customers = [domain for _, domain in customer_domains(doc)]  # once: thousands are allowed
    texts, keys = _texts(doc)  # walked again, with paths, only when something is to locate
    found = [
        *(_secret_keys(doc, ()) if any(map(looks_like_secret, keys)) else ()),
        *(_unsafe_characters(doc, ()) if _UNSAFE.search(" ".join(texts + keys)) else ()),
        *_domain_problems(doc),
        *_temporary_problems(doc, customers),
        *_count_problems(doc, customers),
        *_account_problems(doc),
        *_ticket_problems(doc),
        *_fee_problems(doc),
    ]
    return [_diagnostic(display, positions, path, message, key) for path, message, key in found]


def cross_diagnostics(manifests: Sequence[LoadedManifest]) -> list[Diagnostic]:
    """Rules across manifests: unique names, a domain in one transfer only, a ticket in one
    transfer only. The later file (in the order given) is the one reported."""
    out: list[Diagnostic] = []
    names: dict[str, LoadedManifest] = {}
    domains: dict[str, tuple[LoadedManifest, _Claim]] = {}
    tickets: dict[str, tuple[LoadedManifest, _Claim]] = {}
    for manifest in manifests:
        doc = manifest.document
        name = _get(doc, ("metadata", "name"))
        if isinstance(name, str):
            if name in names:
                first = names[name]
                out.append(
                    _cross(
                        manifest,
                        ("metadata", "name"),
                        f"name {shown(name)} is also used by {first.display}",
                    )
                )
            else:
                names[name] = manifest
        out.extend(_claims(manifest, _domain_claims(doc), domains, "domain"))
        out.extend(_claims(manifest, _ticket_claims(doc), tickets, "ticket"))
    return out


# -- one manifest ---------------------------------------------------------------------------
_Found = tuple[NodePath, str, bool]  # path, message, point at the key?


def _texts(doc: Any) -> tuple[list[str], list[str]]:
    """Every string value and every string key of a document (no paths: the quick look)."""
    texts: list[str] = []
    keys: list[str] = []
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, dict):
            keys.extend(k for k in node if isinstance(k, str))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return texts, keys


def _secret_keys(node: Any, path: NodePath) -> Iterator[_Found]:
    for child_path, key, value in _children(node, path):
        if isinstance(key, str) and looks_like_secret(key):
            yield (
                child_path,
                f"key {shown(key)} looks like a secret: secrets never go in a manifest (it is "
                "committed to git); the runner takes credentials from its environment",
                True,
            )
        yield from _secret_keys(value, child_path)


def _unsafe_characters(node: Any, path: NodePath) -> Iterator[_Found]:
    if isinstance(node, str):
        bad = unsafe_character(node)
        if bad is not None:
            yield path, f"contains {bad}; use one line of text", False
        return
    for child_path, key, value in _children(node, path):
        bad = unsafe_character(key) if isinstance(key, str) else None
        if bad is not None:
            yield child_path, f"the key contains {bad}", True
        yield from _unsafe_characters(value, child_path)


def _domain_problems(doc: dict[str, Any]) -> Iterator[_Found]:
    seen: dict[str, int] = {}
    raws = _list(_get(doc, _CUSTOMER_DOMAINS))
    for index, raw in enumerate(raws):
        if not isinstance(raw, str):
            continue
        path = (*_CUSTOMER_DOMAINS, index)
        try:
            domain = normalize_domain(raw)
        except ValueError as exc:
            yield path, f"{shown(raw)} is not a valid domain name: {exc}", False
            continue
        first = seen.setdefault(domain, index)
        if first != index and raws[first] != raw:  # identical text is the schema's to report
            yield path, f"{shown(raw)} is the same domain as [{first}] ({domain})", False


def _temporary_problems(doc: dict[str, Any], customers: list[str]) -> Iterator[_Found]:
    given = _get(doc, _TEMPORARY)
    first = _first_domain(doc)
    if isinstance(given, str):
        path, what, text = _TEMPORARY, "temporary domain", given
    elif given is None and first is not None:
        path, what = (*_CUSTOMER_DOMAINS, 0), "the default temporary domain"
        text = default_temporary_domain(first)
    else:
        return
    try:
        temporary = normalize_domain(text)
    except ValueError as exc:
        fix = "; set spec.temporary_domain" if given is None else ""
        yield path, f"{what} {shown(text)} is not a valid domain name: {exc}{fix}", False
        return
    if temporary in customers:
        yield (
            path,
            f"{what} {temporary} is a customer domain: two accounts never hold the same "
            f"domain; use a subdomain such as {default_temporary_domain(temporary)}",
            False,
        )
    elif customers and not any(temporary.endswith("." + c) for c in customers):
        yield (
            path,
            f"{what} {temporary} must be a subdomain of a customer domain "
            f"({shown_list(customers)})",
            False,
        )


def _count_problems(doc: dict[str, Any], customers: list[str]) -> Iterator[_Found]:
    allowed = _get(doc, ("spec", "subscription", "domains"))
    if not isinstance(allowed, int) or isinstance(allowed, bool):
        return
    count = len(set(customers))
    if allowed < count:
        yield (
            ("spec", "subscription", "domains"),
            f"{allowed} is less than the number of customer domains ({count}): "
            "the new account must hold them all",
            False,
        )


def _account_problems(doc: dict[str, Any]) -> Iterator[_Found]:
    customer = _get(doc, ("spec", "customer", "account"))
    reseller = _get(doc, ("spec", "reseller", "account"))
    if isinstance(customer, str) and customer == reseller:
        yield (
            ("spec", "reseller", "account"),
            f"{clipped(reseller)} is also the customer's direct account: the customer moves "
            "under a reseller's account, which authorizes on its own ticket",
            False,
        )


def _ticket_problems(doc: dict[str, Any]) -> Iterator[_Found]:
    customer, reseller = (_get(doc, path) for path in _TICKETS)
    if isinstance(customer, str) and customer == reseller:
        yield (
            _TICKETS[1],
            f"{clipped(reseller)} is also the customer ticket: the customer and the reseller "
            "each authorize on their own ticket",
            False,
        )


def _fee_problems(doc: dict[str, Any]) -> Iterator[_Found]:
    fee = _get(doc, ("spec", "billing", "transfer_fee"))
    if isinstance(fee, str) and re.fullmatch(r"[0.]+", fee):
        yield (
            ("spec", "billing", "transfer_fee"),
            f"{fee!r} is no fee: the transfer fee must be more than 0.00 (leave it out for "
            "the playbook's default)",
            False,
        )


# -- across manifests -----------------------------------------------------------------------
def _domain_claims(doc: dict[str, Any]) -> list[_Claim]:
    domains = customer_domains(doc)
    claims = [
        _Claim(domain, (*_CUSTOMER_DOMAINS, i), (*_CUSTOMER_DOMAINS, i)) for i, domain in domains
    ]
    temporary = _temporary_claim(doc)
    if temporary is not None and temporary.value not in {c.value for c in claims}:
        claims.append(temporary)
    return claims


def _temporary_claim(doc: dict[str, Any]) -> _Claim | None:
    given = _get(doc, _TEMPORARY)
    first = _first_domain(doc)
    try:
        if isinstance(given, str):
            return _Claim(normalize_domain(given), _TEMPORARY, _TEMPORARY)
        if given is None and first is not None:
            value = normalize_domain(default_temporary_domain(first))
            return _Claim(value, (*_CUSTOMER_DOMAINS, 0), _TEMPORARY)
    except ValueError:
        return None
    return None


def _first_domain(doc: dict[str, Any]) -> str | None:
    """The A-label of the first customer domain, the base of the default temporary domain."""
    first = _get(doc, (*_CUSTOMER_DOMAINS, 0))
    try:
        return normalize_domain(first) if isinstance(first, str) else None
    except ValueError:
        return None


def _ticket_claims(doc: dict[str, Any]) -> list[_Claim]:
    values = [(_get(doc, path), path) for path in _TICKETS]
    return [_Claim(value, path, path) for value, path in values if isinstance(value, str)]


def _claims(
    manifest: LoadedManifest,
    claims: list[_Claim],
    holders: dict[str, tuple[LoadedManifest, _Claim]],
    what: str,
) -> Iterator[Diagnostic]:
    for claim in claims:
        holder = holders.get(claim.value)
        if holder is None:
            holders[claim.value] = (manifest, claim)
        elif holder[0] is not manifest:
            other, first = holder
            yield _cross(
                manifest,
                claim.path,
                f"{what} {clipped(claim.value)} is also in {other.display} "
                f"({format_path(first.where)}); "
                f"a {what} belongs to one transfer only",
                where=claim.where,
            )


def _cross(
    manifest: LoadedManifest, path: NodePath, message: str, where: NodePath | None = None
) -> Diagnostic:
    line, col = manifest.positions.locate(path)
    return Diagnostic(manifest.display, line, col, message, format_path(where or path))


# -- helpers --------------------------------------------------------------------------------
def _diagnostic(
    display: str, positions: PositionMap, path: NodePath, message: str, at_key: bool
) -> Diagnostic:
    line, col = positions.locate(path, key=at_key)
    return Diagnostic(display, line, col, message, format_path(path))


def _get(doc: Any, path: NodePath) -> Any:
    node = doc
    for part in path:
        if isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        elif isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _children(node: Any, path: NodePath) -> Iterator[tuple[NodePath, str | int, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), key, value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index), index, value
