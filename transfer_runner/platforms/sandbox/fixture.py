"""Sandbox fixtures: load and validate one (`load_fixture`), create a sandbox from it
(`init_sandbox`).

Dates may be relative to the clock (`transfer_runner.clock`): `period_start: today-10d`,
`period_end: today+20d`, `created_at: now-2d`, so a fixture describes the same world whatever
day it is loaded on. They are resolved once, when the fixture is loaded.

Validation follows the manifest's habits: the whole file is checked against
`schemas/fixture.schema.json` and then for consistency (unique ids, a domain on one account
only, parents that are resellers, tickets from known accounts, sane billing periods), and every
problem is reported at once as a located `ManifestError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from transfer_runner.clock import (
    Clock,
    clock_from_env,
    resolve_relative_date,
    resolve_relative_time,
)
from transfer_runner.domains import normalize_domain
from transfer_runner.errors import ConfigError, Diagnostic, ManifestError
from transfer_runner.platforms.sandbox.builder import build_database
from transfer_runner.platforms.sandbox.records import money
from transfer_runner.resources import load_json_schema
from transfer_runner.schema_errors import failed_instance, failed_schema, failed_value
from transfer_runner.yaml_positions import (
    NodePath,
    PositionMap,
    fail,
    format_path,
    parse_yaml_bytes,
)

__all__ = [
    "SCHEMA_NAME",
    "DEFAULT_SIZE",
    "DEFAULT_BODY",
    "load_fixture",
    "init_sandbox",
    "parse_size",
]

SCHEMA_NAME = "fixture.schema.json"
DEFAULT_SIZE = 4096
DEFAULT_BODY = "text"
MAX_SIZE = 64 * 1024 * 1024
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}
_SIZE = re.compile(r"([0-9]+) ?(B|KiB|MiB)")

_Found = tuple[NodePath, str]  # where, message


def load_fixture(path: str | Path, clock: Clock | None = None) -> dict[str, Any]:
    """The fixture at `path`, validated, with every default filled in.

    Returns `{"seed", "accounts", "tickets"}`; amounts and dates stay strings ("120.00",
    "2026-11-01"; relative dates resolved on `clock`), sizes become bytes, domains lowercase
    A-labels. Raises ManifestError.
    """
    display = str(path)
    doc, positions = parse_yaml_bytes(_read_bytes(Path(path), display), display)
    problems = _schema_problems(doc, positions, display)
    if not problems:
        _resolve_dates(doc, clock or clock_from_env())
        problems = [_at(positions, display, where, msg) for where, msg in _consistency(doc)]
    if problems:
        raise ManifestError(sorted(set(problems), key=lambda d: (d.line, d.col, d.where)))
    return _normalized(doc)


def _read_bytes(path: Path, display: str) -> bytes:
    """The fixture's bytes (no size cap: bulk-wave fixtures describe thousands of accounts)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(display, 0, 0, f"cannot read: {exc.strerror or exc}") from exc


def init_sandbox(
    db_path: str | Path,
    fixture_path: str | Path,
    *,
    force: bool = False,
    clock: Clock | None = None,
) -> dict[str, int]:
    """Create the sandbox file `db_path` from a fixture; returns counts of what it holds.

    The fixture is validated before anything is written; an existing file is replaced only
    with `force` (ConfigError otherwise), and only once the new one is complete. `clock`
    (default: `TRANSFER_RUNNER_NOW`, else the system clock) resolves relative dates.
    """
    clock = clock or clock_from_env()
    fixture = load_fixture(fixture_path, clock)
    target = Path(db_path)
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists: pass --force to replace it")
    if target.exists() and not target.is_file():
        raise ConfigError(f"{target} exists and is not a file")
    return build_database(target, fixture, clock.now())


def parse_size(value: int | str) -> int:
    """Bytes from `8192`, `"512B"`, `"8KiB"` or `"1MiB"` (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size such as 512B, 8KiB or 1MiB")
    return int(match.group(1)) * _UNITS[match.group(2)]


# -- schema ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = load_json_schema(SCHEMA_NAME)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _schema_problems(doc: Any, positions: PositionMap, display: str) -> list[Diagnostic]:
    found = []
    for error in _validator().iter_errors(doc):
        for where, at_key, message in _explain(error):
            line, col = positions.locate(where, key=at_key)
            found.append(Diagnostic(display, line, col, message, format_path(where)))
    return found


def _explain(error: ValidationError) -> Iterator[tuple[NodePath, bool, str]]:
    path: NodePath = tuple(error.absolute_path)
    instance, schema = failed_instance(error), failed_schema(error)
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = ", ".join(sorted(schema.get("properties", {})))
        for key in sorted(set(instance) - set(schema.get("properties", {}))):
            yield (*path, key), True, f"unknown key {key!r}; expected one of: {allowed}"
    elif error.validator == "required" and isinstance(instance, dict):
        for name in failed_value(error):
            if name not in instance:
                yield path, False, f"missing required key {name!r}"
    elif error.validator == "type":
        yield path, False, _type_message(failed_value(error), instance)
    elif error.validator == "pattern" and "x-pattern-message" in schema:
        yield path, False, f"{instance!r} {schema['x-pattern-message']}"
    elif error.validator == "oneOf" and "description" in schema:
        yield path, False, f"{instance!r} is not valid: {schema['description']}"
    else:
        yield path, False, error.message


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _type_message(expected: str | list[str], instance: Any) -> str:
    names = [expected] if isinstance(expected, str) else expected
    wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    if isinstance(instance, bool):
        found = f"the boolean {str(instance).lower()}"
    elif isinstance(instance, (int, float)):
        found = f"the number {instance}"
    elif isinstance(instance, str):
        found = f"the string {instance!r}"
    elif isinstance(instance, dict):
        found = "a mapping"
    elif isinstance(instance, list):
        found = "a list"
    else:
        found = "null (an empty value)"
    hint = " (put it in quotes)" if "string" in names and isinstance(instance, (int, float)) else ""
    return f"must be {wanted}, not {found}{hint}"


def _at(positions: PositionMap, display: str, where: NodePath, message: str) -> Diagnostic:
    line, col = positions.locate(where)
    return Diagnostic(display, line, col, message, format_path(where))


# -- relative dates -------------------------------------------------------------------------
def _resolve_dates(doc: dict[str, Any], clock: Clock) -> None:
    """Replace `today±Nd` and `now±N[dhm]` by absolute values, in place (schema-valid doc)."""
    for account in doc["accounts"]:
        billing = account.get("billing")
        for key in ("period_start", "period_end"):
            if billing is not None:
                billing[key] = resolve_relative_date(billing[key], clock) or billing[key]
    for ticket in doc.get("tickets", []):
        if "created_at" in ticket:
            created = ticket["created_at"]
            ticket["created_at"] = resolve_relative_time(created, clock) or created


# -- consistency ----------------------------------------------------------------------------
def _consistency(doc: dict[str, Any]) -> Iterator[_Found]:
    accounts = doc["accounts"]
    yield from _duplicates(accounts, "accounts")
    yield from _duplicates(doc.get("tickets", []), "tickets")
    types = {a["id"]: a["type"] for a in accounts}
    holders: dict[str, str] = {}
    for i, account in enumerate(accounts):
        yield from _account_problems(account, ("accounts", i), types, holders)
    for i, ticket in enumerate(doc.get("tickets", [])):
        yield from _ticket_problems(ticket, ("tickets", i), types)


def _duplicates(items: list[dict[str, Any]], kind: str) -> Iterator[_Found]:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["id"] in first:
            yield (
                (kind, i, "id"),
                f"{item['id']!r} is repeated (first at {kind}[{first[item['id']]}])",
            )
        first.setdefault(item["id"], i)


def _account_problems(
    account: dict[str, Any], at: NodePath, types: dict[str, str], holders: dict[str, str]
) -> Iterator[_Found]:
    parent = account.get("parent")
    if account["type"] == "resold" and parent is None:
        yield (*at, "type"), "a resold account needs a parent (its reseller's id)"
    if account["type"] != "resold" and parent is not None:
        yield (*at, "parent"), f"only a resold account has a parent, not a {account['type']} one"
    if parent is not None and types.get(parent) != "reseller":
        what = f"a {types[parent]} account" if parent in types else "not an account here"
        yield (*at, "parent"), f"parent {parent!r} must be a reseller account; it is {what}"
    for j, domain in enumerate(account.get("domains", [])):
        try:
            name = normalize_domain(domain)
        except ValueError as exc:
            yield (*at, "domains", j), f"{domain!r} {exc}"
            continue
        if name in holders:
            yield (*at, "domains", j), f"{name} is already on account {holders[name]}"
        holders.setdefault(name, account["id"])
    yield from _billing_problems(account.get("billing"), (*at, "billing"))
    for store in ("quarantine", "archive"):
        mail = account.get(store)
        if mail is not None and not 1 <= parse_size(mail.get("size", DEFAULT_SIZE)) <= MAX_SIZE:
            yield (*at, store, "size"), f"must be between 1 byte and 64 MiB, not {mail['size']!r}"


def _billing_problems(billing: dict[str, Any] | None, at: NodePath) -> Iterator[_Found]:
    if billing is None:
        return
    days: list[date] = []
    for key in ("period_start", "period_end"):
        try:
            days.append(date.fromisoformat(billing[key]))
        except ValueError:
            yield (*at, key), f"{billing[key]!r} is not a calendar date"
    if len(days) == 2 and days[1] <= days[0]:
        yield (*at, "period_end"), f"must be after period_start ({billing['period_start']})"


def _ticket_problems(
    ticket: dict[str, Any], at: NodePath, types: dict[str, str]
) -> Iterator[_Found]:
    if ticket["account"] not in types:
        yield (*at, "account"), f"account {ticket['account']!r} is not in the fixture"
    if ticket.get("resolution") and ticket.get("status", "open") == "open":
        yield (*at, "resolution"), "only a closed ticket has a resolution"
    if "created_at" in ticket:
        try:
            _moment(ticket["created_at"])
        except ValueError:
            yield (*at, "created_at"), f"{ticket['created_at']!r} is not a valid time"


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- defaults -------------------------------------------------------------------------------
def _normalized(doc: dict[str, Any]) -> dict[str, Any]:
    seed = doc.get("seed", 0)
    return {
        "seed": seed,
        "accounts": [_account(a, seed) for a in doc["accounts"]],
        "tickets": [_ticket(t) for t in doc.get("tickets", [])],
    }


def _account(raw: dict[str, Any], seed: int) -> dict[str, Any]:
    domains = [normalize_domain(d) for d in raw.get("domains", [])]
    billing = raw.get("billing")
    derived = int(hashlib.sha256(f"{seed}:{raw['id']}".encode()).hexdigest()[:12], 16)
    return {
        "id": raw["id"],
        "type": raw["type"],
        "name": raw["name"],
        "status": raw.get("status", "active"),
        "parent": raw.get("parent"),
        "domains": domains,
        "users": raw.get("users", 1),
        "max_domains": raw.get("max_domains", max(len(domains), 1)),
        "services": list(raw.get("services", [])),
        "seed": raw.get("seed", derived),
        "billing": None if billing is None else _billing(billing),
        "quarantine": _mail(raw.get("quarantine")),
        "archive": _mail(raw.get("archive")),
    }


def _billing(raw: dict[str, str]) -> dict[str, str]:
    return {**raw, "price": str(money(Decimal(raw["price"])))}


def _mail(raw: dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        return {"messages": 0, "size": DEFAULT_SIZE, "body": DEFAULT_BODY}
    return {
        "messages": raw["messages"],
        "size": parse_size(raw.get("size", DEFAULT_SIZE)),
        "body": raw.get("body", DEFAULT_BODY),
    }


def _ticket(raw: dict[str, Any]) -> dict[str, Any]:
    status = raw.get("status", "open")
    created = raw.get("created_at")
    return {
        "id": raw["id"],
        "account": raw["account"],
        "subject": raw["subject"],
        "body": raw["body"],
        "status": status,
        "resolution": raw.get("resolution") or ("resolved" if status == "closed" else None),
        "created_at": None if created is None else _moment(created).isoformat(),
        "comments": list(raw.get("comments", [])),
    }
