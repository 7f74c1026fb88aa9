"""load_transfers and discover: files in, Transfers and sorted diagnostics out."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from transfer_runner.manifest.api import display_path, load_transfers, normalize_document
from transfer_runner.manifest.discovery import discover

ACME = """\
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

BUCHER = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata: {name: buecher-de}
spec:
  customer: {account: C-7, domains: [Bücher.DE, xn--mnchen-3ya.de]}
  reseller: {account: R-301, name: Northwind IT}
  subscription: {users: 3, domains: 2}
  services: [spamstopshere]
  authorization: {customer_ticket: T-7, reseller_ticket: T-8}
  data: {archive: skip}
"""


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_manifest_becomes_a_transfer(cwd: Path) -> None:
    path = _write(cwd, "transfers/acme.yml", ACME)
    transfers, diagnostics = load_transfers(["transfers"])
    assert diagnostics == []
    [t] = transfers
    assert (t.name, t.labels, t.path) == ("acme-com", {"wave": "2026-12"}, "transfers/acme.yml")
    assert t.customer_domains == ("acme.com", "acme.net")
    assert (t.customer_account, t.reseller_account, t.reseller_name) == (
        "C-1001",
        "R-301",
        "Northwind IT",
    )
    assert (t.users, t.max_domains, t.temporary_domain) == (40, 2, "gdi.acme.com")
    assert t.services == ("spamstopshere", "hosted-email", "restoremail", "encryption")
    assert (t.customer_ticket, t.reseller_ticket) == ("T-5001", "T-5002")
    assert (t.quarantine, t.archive, t.prorate) == ("migrate", "migrate", True)
    assert t.transfer_fee == Decimal("25.00")
    assert t.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert t.document["spec"]["billing"] == {"transfer_fee": "25.00", "prorate": True}


def test_defaults_and_normalization(cwd: Path) -> None:
    _write(cwd, "b.yml", BUCHER)
    [t], diagnostics = load_transfers([str(cwd / "b.yml")])
    assert diagnostics == []
    assert t.path == "b.yml"
    assert t.customer_domains == ("xn--bcher-kva.de", "xn--mnchen-3ya.de")
    assert t.temporary_domain == "gdi.xn--bcher-kva.de"
    assert (t.quarantine, t.archive, t.transfer_fee, t.prorate) == ("migrate", "skip", None, True)
    assert t.labels == {}
    spec = t.document["spec"]
    assert t.document["metadata"]["labels"] == {}
    assert spec["customer"]["domains"] == ["xn--bcher-kva.de", "xn--mnchen-3ya.de"]
    assert spec["temporary_domain"] == "gdi.xn--bcher-kva.de"
    assert spec["data"] == {"quarantine": "migrate", "archive": "skip"}
    assert spec["billing"] == {"prorate": True}


def test_normalize_document_does_not_touch_its_input() -> None:
    from transfer_runner.manifest.loader import parse_yaml_bytes

    doc, _ = parse_yaml_bytes(BUCHER.encode(), "b.yml")
    before = repr(doc)
    normalize_document(doc)
    assert repr(doc) == before


def test_every_error_of_every_file_sorted_and_valid_files_kept(cwd: Path) -> None:
    _write(cwd, "t/b-bad.yml", ACME.replace("users: 40", "users: -3").replace("acme-com", "b"))
    _write(cwd, "t/a-dup.yml", ACME)
    _write(cwd, "t/c-yaml.yml", "a: [\n")
    _write(cwd, "t/d-ok.yml", BUCHER)
    transfers, diagnostics = load_transfers(["t"])
    assert [t.name for t in transfers] == ["acme-com", "buecher-de"]
    lines = [str(d) for d in diagnostics]
    assert lines[:-1] == [
        "t/b-bad.yml:7:41: spec.customer.domains[0]: domain acme.com is also in t/a-dup.yml "
        "(spec.customer.domains[0]); a domain belongs to one transfer only",
        "t/b-bad.yml:7:51: spec.customer.domains[1]: domain acme.net is also in t/a-dup.yml "
        "(spec.customer.domains[1]); a domain belongs to one transfer only",
        "t/b-bad.yml:9:25: spec.subscription.users: -3 is less than the minimum of 1",
        "t/b-bad.yml:11:21: spec.temporary_domain: domain gdi.acme.com is also in t/a-dup.yml "
        "(spec.temporary_domain); a domain belongs to one transfer only",
        "t/b-bad.yml:12:36: spec.authorization.customer_ticket: ticket T-5001 is also in "
        "t/a-dup.yml (spec.authorization.customer_ticket); a ticket belongs to one transfer "
        "only",
        "t/b-bad.yml:12:61: spec.authorization.reseller_ticket: ticket T-5002 is also in "
        "t/a-dup.yml (spec.authorization.reseller_ticket); a ticket belongs to one transfer "
        "only",
    ]
    # the parser's own wording differs between libyaml and pure Python
    assert lines[-1].startswith("t/c-yaml.yml:2:1: YAML syntax error: ")


def test_paths_outside_the_working_directory_are_shown_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    path = _write(tmp_path, "manifests/m.yml", ACME.replace("kind: Transfer", "kind: X"))
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert display_path(Path("../manifests/m.yml")) == "../manifests/m.yml"
    assert display_path(path) == str(path)
    transfers, diagnostics = load_transfers(["../manifests"])
    assert transfers == []
    assert [str(d) for d in diagnostics] == [
        "../manifests/m.yml:2:7: kind: must be 'Transfer', not 'X'"
    ]


def test_discover_searches_directories(cwd: Path) -> None:
    for name in [
        "t/b.yml",
        "t/a.yaml",
        "t/sub/c.yml",
        "t/notes.txt",
        "t/.hidden.yml",
        "t/.git/x.yml",
        "t/sub/.cache/y.yaml",
        "other.manifest",
    ]:
        _write(cwd, name, "x: 1\n")
    files, diagnostics = discover(["t", "other.manifest", "t/b.yml", "./t/sub/c.yml"])
    assert diagnostics == []
    assert [str(f) for f in files] == ["t/a.yaml", "t/b.yml", "t/sub/c.yml", "other.manifest"]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["missing.yml"], ["missing.yml:0:0: no such file or directory"]),
        (["empty"], ["empty:0:0: no manifests (*.yml, *.yaml) in this directory"]),
        ([], ["(arguments):0:0: no manifest files or directories given"]),
    ],
)
def test_discover_problems(cwd: Path, paths: list[str], expected: list[str]) -> None:
    (cwd / "empty").mkdir()
    (cwd / "empty" / "readme.md").write_text("no manifests here")
    files, diagnostics = discover(paths)
    assert files == []
    assert [str(d) for d in diagnostics] == expected


def test_load_transfers_reports_discovery_problems_alongside_files(cwd: Path) -> None:
    _write(cwd, "t/acme.yml", ACME)
    (cwd / "void").mkdir()
    transfers, diagnostics = load_transfers(["t", "nope", "void"])
    assert [t.name for t in transfers] == ["acme-com"]
    assert [str(d) for d in diagnostics] == [
        "nope:0:0: no such file or directory",
        "void:0:0: no manifests (*.yml, *.yaml) in this directory",
    ]
