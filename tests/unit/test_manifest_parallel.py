"""A large tree is checked on several processes with exactly the sequential path's outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer_runner.manifest import api, parallel
from transfer_runner.manifest.api import load_transfers
from transfer_runner.yaml_positions import parse_yaml_bytes


def _manifest(i: int, domain: str | None = None) -> str:
    domain = domain or f"cust{i:05d}.example"
    return f"""\
apiVersion: transfer-runner/v1
kind: Transfer
metadata: {{name: cust{i:05d}}}
spec:
  customer: {{account: C-{100000 + i}, domains: [{domain}]}}
  reseller: {{account: R-301, name: Northwind IT}}
  subscription: {{users: 5, domains: 1}}
  services: [spamstopshere]
  authorization: {{customer_ticket: T-{500000 + 2 * i}, reseller_ticket: T-{500001 + 2 * i}}}
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel") / "transfers"
    count = parallel.PARALLEL_FROM + 100
    for i in range(count):
        folder = root / f"batch-{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"cust{i:05d}.yml").write_text(_manifest(i), encoding="utf-8")
    (root / "batch-003" / "cust00300.yml").write_text(
        _manifest(300).replace("users: 5", "users: -1")
    )
    (root / "batch-007" / "cust00700.yml").write_text(_manifest(700) + "spec: again\n")
    (root / "batch-011" / "cust01100.yml").write_text(_manifest(1100, "cust00001.example"))
    return root


def _sequential(monkeypatch: pytest.MonkeyPatch, tree: Path) -> tuple[list, list]:
    with monkeypatch.context() as patched:
        patched.setattr(api, "workers_for", lambda count: 1)
        return load_transfers([str(tree)])


def test_the_parallel_path_finds_what_the_sequential_one_finds(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parallel.workers_for(parallel.PARALLEL_FROM + 100) > 1 or pytest.skip("one CPU")
    transfers, diagnostics = load_transfers([str(tree)])
    alone, alone_diagnostics = _sequential(monkeypatch, tree)
    assert diagnostics == alone_diagnostics
    assert [(t.name, t.sha256, t.document) for t in transfers] == [
        (t.name, t.sha256, t.document) for t in alone
    ]
    assert len(transfers) == parallel.PARALLEL_FROM + 100 - 3  # 2 broken, 1 domain taken
    messages = [d.message for d in diagnostics]
    assert any("duplicate key 'spec'" in m for m in messages)
    assert any("cust00001.example" in m for m in messages)  # across files, from two workers
    wrong = [d for d in diagnostics if "cust00300" in d.path]
    assert wrong and (wrong[0].line, wrong[0].col) == (7, 25)  # located in the worker


def test_positions_of_a_manifest_checked_in_a_worker_are_found_when_asked(tree: Path) -> None:
    transfers, _ = load_transfers([str(tree)])
    first = tree / "batch-000" / "cust00000.yml"
    eager = parse_yaml_bytes(first.read_bytes(), "m.yml")[1]
    where = ("spec", "customer", "domains", 0)
    assert transfers[0].locate(*where) == eager[where] != (1, 1)


def test_small_trees_are_checked_here() -> None:
    assert parallel.workers_for(parallel.PARALLEL_FROM - 1) == 1
    assert parallel.workers_for(10**6) <= 8
