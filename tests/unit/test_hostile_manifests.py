"""Hostile manifests: whatever the bytes, `load_transfers` and `validate` answer with located
diagnostics (`path:line:col: ...`, one line each), never a traceback.

Manifests are generated valid from the schema's shape, then mutated (keys dropped or renamed,
wrong types, huge strings, any Unicode, control characters, YAML fragments, broken bytes); then
explicit cases: alias bombs, anchors, duplicate keys, deep nesting, oversized and special files,
YAML 1.1 surprises, homograph and malformed domains, path-like names, secrets, unsafe characters.
Every load is timed; the slowest of each group is printed at the end of the module (the issue
asks for each to stay under 100 ms: measured here, never asserted).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.hostile import (
    BASE,
    BUDGET_S,
    PARSERS,
    SLOWEST,
    TIMES,
    assert_located,
    assert_refused_at,
    at,
    case_of,
    diagnose,
    edit,
    hostile_manifests,
    hypothesis_settings,
    lines_of,
    load,
    manifests,
    timed,
    validate_cli,
)
from transfer_runner import yaml_positions
from transfer_runner.domains import normalize_domain
from transfer_runner.manifest.api import load_transfers
from transfer_runner.manifest.loader import MAX_BYTES


@pytest.fixture(scope="module", autouse=True)
def _print_slowest() -> Iterator[None]:
    yield
    over = sum(t > BUDGET_S for t in TIMES)
    print(f"\n[hostile manifests] {len(TIMES)} loads, {over} over {BUDGET_S * 1000:.0f} ms")
    for group, (seconds, case) in sorted(SLOWEST.items()):
        print(f"[hostile manifests] slowest {group}: {seconds * 1000:.1f} ms ({case[:100]!r})")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module (hypothesis runs many examples in one test call)."""
    return tmp_path_factory.mktemp("hostile")


@hypothesis_settings(100)
@given(manifests())
def test_generated_manifests_are_valid(
    workdir: Path, generated: tuple[dict[str, Any], bytes]
) -> None:
    doc, data = generated
    path = workdir / "valid.yml"
    transfers, found = load(path, data, "valid")
    assert found == [], data.decode()
    assert_located(path, data, transfers, found)
    [transfer] = transfers
    spec = doc["spec"]
    assert transfer.name == doc["metadata"]["name"]
    assert transfer.labels == doc["metadata"].get("labels", {})
    assert transfer.customer_domains == tuple(
        normalize_domain(d) for d in spec["customer"]["domains"]
    )
    assert transfer.reseller_name == spec["reseller"]["name"]
    assert (transfer.customer_ticket, transfer.reseller_ticket) == tuple(
        spec["authorization"].values()
    )
    assert transfer.users == spec["subscription"]["users"]


@hypothesis_settings(200)
@given(hostile_manifests())
def test_mutated_manifests_fail_cleanly_and_located(
    workdir: Path, hostile: tuple[bytes, list[str]]
) -> None:
    data, _mutations = hostile
    path = workdir / "mutated.yml"
    transfers, found = load(path, data, "mutated (load_transfers)")
    assert_located(path, data, transfers, found)


@hypothesis_settings(50)
@given(hostile_manifests(), st.sampled_from(["text", "json", "github"]))
def test_mutated_manifests_through_validate(
    workdir: Path, hostile: tuple[bytes, list[str]], fmt: str
) -> None:
    data, _mutations = hostile
    path = workdir / "cli.yml"
    path.write_bytes(data)
    _, found = load_transfers([str(path)])
    code, output = timed("mutated (validate CLI)", case_of(data), lambda: validate_cli(path, fmt))
    assert code == (1 if found else 0), output
    if fmt == "json":
        report = json.loads(output)
        assert report["valid"] == (not found)
        assert [(e["file"], e["line"], e["column"]) for e in report["errors"]] == [
            (d.path, d.line, d.col) for d in found
        ]
    elif fmt == "github":
        assert output.splitlines() == [
            line for line in output.splitlines() if line.startswith(f"::error file={path}")
        ]
        assert len(output.splitlines()) == len(found)
    else:
        expected = [str(d) for d in found] if found else ["1 manifest(s) valid"]
        assert output.splitlines() == expected


def _laughs(level: int) -> str:
    item = "lol" if level == 0 else f"*l{level - 1}"
    return f"x{level}: &l{level} [{', '.join([item] * 9)}]\n"


BILLION_LAUGHS = edit("kind: Transfer\n", "kind: Transfer\n" + "".join(map(_laughs, range(9))))


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
def test_alias_bomb_is_refused_unexpanded(
    workdir: Path, parser: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_positions, "_EventLoader", parser)
    found = diagnose(workdir, BILLION_LAUGHS, "alias bomb")
    assert lines_of(found)[:2] == [
        "3:5: x0: YAML anchors (&l0) are not allowed: repeat the value instead",
        "4:5: x1: YAML anchors (&l1) are not allowed: repeat the value instead",
    ]
    assert found[-1].message == "too many problems; stopped reading here"
    assert len(found) == yaml_positions.MAX_PROBLEMS + 1
    code, output = timed("alias bomb", "validate", lambda: validate_cli(workdir / "m.yml"))
    assert code == 1 and output.splitlines() == [str(d) for d in found]


def test_anchors_aliases_and_merge_keys_are_refused(workdir: Path) -> None:
    text = edit("  customer:\n", "  customer: &who\n")
    text = edit("reseller_ticket: T-5002", "reseller_ticket: *who", text)
    text = edit("  data: {", "  billing_base: &b {prorate: true}\n  data: {", text)
    text = edit("  billing: {", "  billing: {<<: *b, ", text)
    found = diagnose(workdir, text)
    assert_refused_at(found, "spec.customer", at(text, "&who"), "anchors (&who)")
    assert_refused_at(found, "spec.authorization.reseller_ticket", at(text, "*who"), "aliases")
    assert_refused_at(found, "spec.billing_base", at(text, "&b"), "anchors (&b)")
    assert_refused_at(found, "spec.billing['<<']", at(text, "*b"), "aliases (*b)")


def test_duplicate_keys_are_refused(workdir: Path) -> None:
    text = edit("    domains: 2\n", "    domains: 2\n    users: 4000\n")
    text = text + "spec: {}\n"
    found = diagnose(workdir, text)
    assert lines_of(found) == [
        "16:5: spec.subscription.users: duplicate key 'users' (first at line 14)",
        "24:1: spec: duplicate key 'spec' (first at line 6)",
    ]


NESTING = {
    "10,000 [": "[" * 10_000,
    "10,000 [ and ]": "[" * 10_000 + "]" * 10_000,
    "10,000 {": "{a: " * 10_000,
    "10,000 block -": "- " * 10_000 + "x",
    "10,000 [ as a key": "[" * 10_000 + "]" * 10_000 + ": 1",
}


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("case", NESTING)
def test_deep_nesting_is_refused(
    workdir: Path, parser: type, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_positions, "_EventLoader", parser)
    text = edit("  services:", f"  services:\n    {NESTING[case]}\n  old_services:")
    found = diagnose(workdir, text, "deep nesting")
    first = found[0]
    assert first.line == 17 and first.col > 5, str(first)
    assert "nested deeper than" in first.message or "nesting depth" in first.message, str(first)


def test_a_file_over_the_limit_is_refused_without_reading_it(workdir: Path) -> None:
    path = workdir / "huge.yml"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB that would take seconds to read
    transfers, found = timed("size limit", "2 GiB", lambda: load_transfers([str(path)]))
    assert transfers == [] and [str(d) for d in found] == [
        f"{path}:0:0: file is {2 * 1024**3} bytes; a manifest may be at most 1 MiB ({MAX_BYTES} "
        "bytes)"
    ]
    code, output = validate_cli(path)
    assert code == 1 and output.splitlines() == [str(found[0])]


def test_a_file_growing_after_the_size_check_is_read_no_further_than_the_limit(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workdir / "growing.yml"
    path.write_bytes(BASE.encode() + b"#" * (3 * MAX_BYTES))
    real_stat, real_open, read = Path.stat, Path.open, []

    def small_stat(self: Path, **kwargs: Any) -> os.stat_result:
        info = real_stat(self, **kwargs)
        if self != path:
            return info
        return os.stat_result((info.st_mode, *info[1:6], 1000, *info[7:]))

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        if self == path:
            real_read = handle.read
            handle.read = lambda size=-1: read.append(size) or real_read(size)  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "stat", small_stat)
    monkeypatch.setattr(Path, "open", counting_open)
    _, found = load_transfers([str(path)])
    assert [d.message for d in found] == [
        f"file is {MAX_BYTES + 1} bytes; a manifest may be at most 1 MiB ({MAX_BYTES} bytes)"
    ]
    assert read and all(0 < size <= MAX_BYTES + 1 for size in read)


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "/dev/zero"])
def test_special_files_are_refused_without_blocking(workdir: Path, kind: str) -> None:
    folder = workdir / kind.replace("/", "_").replace(" ", "-")
    folder.mkdir()
    target = folder / "m.yml"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink to /dev/zero":
        target.symlink_to("/dev/zero")
    given = "/dev/zero" if kind == "/dev/zero" else str(folder)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(load_transfers([given])), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the reader so the process can end, then fail
        os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading a special file blocked")
    [(transfers, found)] = result
    shown = "/dev/zero" if kind == "/dev/zero" else str(target)
    assert transfers == [] and [str(d) for d in found] == [f"{shown}:0:0: not a regular file"]


# -- YAML 1.1 surprises: refused where they land, or kept as the literal text ---------------
SURPRISES = ["no", "on", "yes", "off", "y", "n", "0755", "2026-11-29", "1e3", ".inf", "-.inf",
             ".nan", "~", "null", "0x1F", "0o17", "1_000", "12:30:00", "true", "False", "+1",
             "40.0", "2026-11-29T10:00:00Z"]  # fmt: skip
# field -> (its text in BASE, its path in the document, the type it holds)
FIELDS: dict[str, tuple[str, tuple[str | int, ...], str]] = {
    "metadata.name": ("name: acme-com", ("metadata", "name"), "str"),
    "metadata.labels.wave": ('wave: "2026-12"', ("metadata", "labels", "wave"), "str"),
    "spec.customer.account": ("account: C-1001", ("spec", "customer", "account"), "str"),
    "spec.customer.domains[1]": ("acme.net]", ("spec", "customer", "domains", 1), "str"),
    "spec.reseller.name": ("name: Northwind IT", ("spec", "reseller", "name"), "str"),
    "spec.subscription.users": ("users: 40", ("spec", "subscription", "users"), "int"),
    "spec.temporary_domain": ("temporary_domain: gdi.acme.com", ("spec", "temporary_domain"),
                              "str"),
    "spec.authorization.reseller_ticket": ("reseller_ticket: T-5002",
                                           ("spec", "authorization", "reseller_ticket"), "str"),
    "spec.billing.transfer_fee": ('transfer_fee: "25.00"', ("spec", "billing", "transfer_fee"),
                                  "str"),
    "spec.billing.prorate": ("prorate: true", ("spec", "billing", "prorate"), "bool"),
}  # fmt: skip


def _literal(token: str, kind: str) -> Any:
    """What `token` may be read as without surprise, or None if it must be refused."""
    if kind == "str":
        return token
    if kind == "int":
        return int(token) if re.fullmatch(r"[-+]?(?:0|[1-9][0-9]*)", token) else None
    return {"true": True, "false": False}.get(token.lower())


@pytest.mark.parametrize("token", SURPRISES)
@pytest.mark.parametrize("field", FIELDS)
def test_yaml_1_1_surprises_are_refused_or_literal(workdir: Path, field: str, token: str) -> None:
    old, path, kind = FIELDS[field]
    key = old.split(": ")[0] + ": " if ": " in old else ""
    new = f"{key}{token}" + ("]" if old.endswith("]") else "")
    text = edit(old, new)
    found = diagnose(workdir, text, "YAML 1.1 surprises")
    position = at(text, new) if not key else (at(text, new)[0], at(text, new)[1] + len(key))
    if not [d for d in found if d.where.startswith(field)]:
        transfers = load_transfers([str(workdir / "m.yml")])[0]
        expected = _literal(token, kind)
        assert expected is not None, f"{token!r} was accepted in {field}"
        if transfers:  # other rules may refuse the manifest; the value itself passed
            node: Any = transfers[0].document
            for part in path:
                node = node[part]
            assert node == expected and type(node) is type(expected)
        return
    assert_refused_at(found, field, position, "")


# -- domain names: look-alikes and malformed names, wherever a domain is given --------------
BAD_DOMAINS = [
    ("\u0430cme.org", "mixes scripts (Cyrillic, Latin)"),  # Cyrillic а
    ("xn--cme-8cd.org", "mixes scripts (Cyrillic, Latin)"),  # the same, as punycode
    ("g\u03bfogle.org", "homograph"),  # Greek ο
    ("acme..org", "empty label"),
    (".acme.org", "empty label"),
    ("acme.org..", "empty label"),
    ("a" * 64 + ".org", "64 characters"),
    ("_dmarc.acme.org", "contains '_'"),
    ("acme_corp.org", "contains '_'"),
    ("192.0.2.10", "IP address"),
    ("[2001:db8::1]", "IP address"),
    ("xn--acme.org", "not a valid punycode"),
    ("xn--ls8h.org", "not a valid punycode"),  # an emoji, outside IDNA 2008
    ("xn--bcher-kva-.org", "starts or ends with a hyphen"),
    ("ab--cd.org", "positions 3-4"),
    ("acme.123", "all digits"),
    ("a\u200db.org", "IDNA 2008"),
    ("acme.org/../etc", "contains '/'"),
    ("x" * 100_000 + ".org", "100004 characters long"),
    ("\u4e00" * 200_000 + ".org", "characters long"),
]


@pytest.mark.parametrize(("domain", "reason"), BAD_DOMAINS, ids=[b[0][:30] for b in BAD_DOMAINS])
@pytest.mark.parametrize("where", ["spec.customer.domains[1]", "spec.temporary_domain"])
def test_bad_domains_are_refused_where_they_are(
    workdir: Path, where: str, domain: str, reason: str
) -> None:
    old = "acme.net]" if where.endswith("]") else "temporary_domain: gdi.acme.com"
    new = f'"{domain}"]' if where.endswith("]") else f'temporary_domain: "{domain}"'
    text = edit(old, new)
    found = diagnose(workdir, text, "bad domains")
    position = at(text, f'"{domain[:50]}')
    assert_refused_at(found, where, position, "not a valid domain name", reason)


def test_a_trailing_dot_is_the_same_name(workdir: Path) -> None:
    """One trailing dot is DNS's absolute form of the same name: stored without it."""
    text = edit("acme.net]", "acme.net.]")
    assert diagnose(workdir, text) == []
    [transfer] = load_transfers([str(workdir / "m.yml")])[0]
    assert transfer.customer_domains == ("acme.com", "acme.net")


# -- names that become S3 keys, file names or URL segments ----------------------------------
PATH_LIKE = ["../etc", "..", ".", "a/b", "/abs", "a\\\\b", "%2e%2e", "%2F", "a\\x00b",
             "C:\\\\x", "~root", "a/../../b", "x" * 300, "acme-com/", " acme"]  # fmt: skip
NAMED_FIELDS = {
    "metadata.name": "name: acme-com",
    "spec.customer.account": "account: C-1001",
    "spec.reseller.account": "account: R-301",
    "spec.authorization.customer_ticket": "customer_ticket: T-5001",
    "spec.authorization.reseller_ticket": "reseller_ticket: T-5002",
    "metadata.labels.wave": 'wave: "2026-12"',
}


@pytest.mark.parametrize("value", PATH_LIKE, ids=[v[:12] for v in PATH_LIKE])
@pytest.mark.parametrize("field", NAMED_FIELDS)
def test_path_like_names_are_refused(workdir: Path, field: str, value: str) -> None:
    key = NAMED_FIELDS[field].split(": ")[0]
    text = edit(NAMED_FIELDS[field], f'{key}: "{value}"')
    found = diagnose(workdir, text, "path-like names")
    assert_refused_at(found, field, at(text, f'"{value[:50]}'), "")


# -- secrets never belong in a manifest ------------------------------------------------------
SECRET = "hunter2 S3cr3t/Value+with spaces"
SECRET_KEYS = [
    ("password", "top level", "kind: Transfer\n", 'kind: Transfer\npassword: "{}"\n'),
    ("api_key", "spec.customer", "    account: C-1001\n",
     '    account: C-1001\n    api_key: "{}"\n'),
    ("token", "a label", "{wave: ", '{token: "{}", wave: '),
    ("PRIVATE_KEY", "spec.billing", "{transfer_fee", '{PRIVATE_KEY: "{}", transfer_fee'),
    ("Credentials", "spec.reseller, nested", "    name: Northwind IT\n",
     '    name: Northwind IT\n    Credentials: {user: admin, pass: "{}"}\n'),
    ("secret_access_key", "under an unknown key", "  services:",
     '  aws:\n    secret_access_key: "{}"\n  services:'),
    ("apiKey", "in a list", "services: [spamstopshere, restoremail]",
     'services: [spamstopshere, {apiKey: "{}"}]'),
    ("client-secret", "spec.data", "{quarantine: export",
     '{client-secret: ["{}"], quarantine: export'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "case", "old", "new"), SECRET_KEYS, ids=[f"{k} ({c})" for k, c, *_ in SECRET_KEYS]
)
def test_secret_keys_are_refused_and_their_values_never_shown(
    workdir: Path, key: str, case: str, old: str, new: str
) -> None:
    text = edit(old, new.replace("{}", SECRET))
    found = diagnose(workdir, text, "secrets")
    line, col = at(text, key)
    hits = [d for d in found if (d.line, d.col) == (line, col) and d.where.endswith(key)]
    assert hits and "secrets never go in a manifest" in hits[0].message, [str(d) for d in found]
    for fmt in ("text", "json", "github"):
        code, output = validate_cli(workdir / "m.yml", fmt)
        assert code == 1 and key in output
        assert "S3cr3t" not in output, output


# -- characters that make text display as something other than what it is ------------------
UNSAFE = [
    ("raw bidi override in a value", "name: Northwind IT", "name: Northwind \u202eTI", "U+202E"),
    ("raw bidi isolate in a comment", "  services:", "  # ok \u2066x\u2069\n  services:", "U+2066"),
    ("escaped bidi override", "name: Northwind IT", 'name: "Northwind \\u202eTI"', "U+202E"),
    ("escaped line separator", "name: Northwind IT", 'name: "Northwind\\LIT"', "U+2028"),
    ("escaped next line", "name: Northwind IT", 'name: "Northwind\\NIT"', "U+0085"),
    ("escaped NUL in a key", "  services:", '  "serv\\0ices":', "U+0000"),
    ("raw NUL", "name: Northwind IT", "name: North\x00wind", "U+0000"),
    ("escaped lone surrogate", "name: Northwind IT", 'name: "North\\ud800wind"', "U+D800"),
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize(("case", "old", "new", "code"), UNSAFE, ids=[u[0] for u in UNSAFE])
def test_unsafe_characters_are_refused(
    workdir: Path,
    parser: type,
    case: str,
    old: str,
    new: str,
    code: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yaml_positions, "_EventLoader", parser)
    text = edit(old, new)
    found = diagnose(workdir, text, "unsafe characters")
    line = at(text, new.splitlines()[0].strip())[0]
    if case == "escaped lone surrogate" and parser is not yaml.SafeLoader:
        assert [d.line for d in found] == [line] and "YAML syntax error" in found[0].message
        return
    assert [d.line for d in found if code in d.message] == [line], [str(d) for d in found]


# -- size: megabyte values, numbers too long to convert, lists that were quadratic -----------
def test_megabyte_values_give_short_located_messages(workdir: Path) -> None:
    huge = "x" * (MAX_BYTES - len(BASE) - 100)
    for old, new in [
        ("name: acme-com", f"name: {huge}"),
        ("name: Northwind IT", f"name: {huge}"),
        ("account: C-1001", f"account: {huge}"),
        ("temporary_domain: gdi.acme.com", f"temporary_domain: {huge}.com"),
        ('wave: "2026-12"', f"{huge}: x"),
        ("  services:", f"  {huge}: 1\n  services:"),
        ("reseller_ticket: T-5002", f"reseller_ticket: *{huge}"),
    ]:
        found = diagnose(workdir, edit(old, new), "megabyte values")
        assert found and all(len(str(d)) < 1000 for d in found), [str(d)[:200] for d in found]


def test_an_integer_too_long_to_convert_is_refused(workdir: Path) -> None:
    text = edit("users: 40", "users: " + "9" * 5000)
    found = diagnose(workdir, text, "long integer")
    assert lines_of(found) == [
        f"14:12: spec.subscription.users: an integer of 5000 digits is too large (at most "
        f"{yaml_positions.MAX_INT_DIGITS})"
    ]


def test_many_repeated_domains_are_reported_in_linear_time(workdir: Path) -> None:
    """Finding repeats was quadratic: this list took 20 s, a 1 MiB one over a minute."""
    many = [f"d{i}.acme.com" for i in range(30_000)]
    text = edit("[acme.com, acme.net]", "[" + ", ".join([*many, "d7.acme.com"]) + "]")
    found = diagnose(workdir, text, "30,000 domains")
    assert any("'d7.acme.com' is repeated (first at [7])" in d.message for d in found)


@pytest.mark.parametrize(("size", "reason"), [
    (1000, "1000 characters long; at most 63"),
    (300_000, "300009 characters long; a domain name has at most 253"),
])  # fmt: skip
def test_a_long_unicode_label_is_refused_before_punycode(
    workdir: Path, size: int, reason: str
) -> None:
    """Punycode is quadratic in a label's length: 10,000 distinct characters took 15 s."""
    label = "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(size))
    text = edit("temporary_domain: gdi.acme.com", f"temporary_domain: {label}.acme.com")
    found = diagnose(workdir, text, f"{size}-character label")
    assert_refused_at(found, "spec.temporary_domain", (17, 21), reason)
