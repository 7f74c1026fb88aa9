"""Playbook loading: the default playbook, and each kind of mistake as a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer_runner.errors import PlaybookError
from transfer_runner.modules.registry import load_modules
from transfer_runner.playbook.loader import load_playbook

MODULES = load_modules()


def test_default_playbook_loads_with_thirteen_tasks() -> None:
    playbook = load_playbook(None, MODULES)
    assert len(playbook.tasks) == 15
    assert playbook.defaults["transfer_fee"] == "25.00"
    assert [t.module for t in playbook.tasks][:3] == [
        "ticket.verify",
        "ticket.verify",
        "account.ensure",
    ]
    assert playbook.tasks[2].register == "new_account"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: []", "should be non-empty"),
        ("tasks:\n  - name: x\n    nope.module: {}\n", "unknown module 'nope.module'"),
        ("tasks:\n  - name: x\n", "does not have enough properties"),
        (
            "tasks:\n  - name: x\n    ticket.verify: {}\n    account.cancel: {}\n",
            "exactly one module",
        ),
        (
            "tasks:\n  - name: x\n    ticket.verify: {}\n  - name: x\n    account.cancel: {}\n",
            "used twice",
        ),
        ("tasks:\n  - name: x\n    ticket.verify: {}\n    loop: [1]\n", "loop"),
        ("tasks:\n  - name: x\n    ticket.verify: {}\n    register: 1bad\n", "register"),
        ("tasks: [\n", "not valid YAML"),
        ("other: 1\n", "tasks"),
    ],
)
def test_playbook_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as err:
        load_playbook(path, MODULES)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_playbook_file(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="cannot read playbook"):
        load_playbook(tmp_path / "missing.yml", MODULES)
